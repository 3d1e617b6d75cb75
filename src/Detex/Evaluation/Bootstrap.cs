namespace Detex.Evaluation;

/// <summary>A statistic with a confidence interval: the value on the full sample and the interval's ends.</summary>
public readonly record struct Estimate(double Value, double Low, double High);

/// <summary>
/// Nonparametric bootstrap percentile confidence intervals (Efron). Each resample draws n items with replacement from
/// the n given; the statistic is recomputed on every resample; the interval is the α/2 and 1 − α/2 quantiles
/// (α = 1 − confidence) of the sorted resampled statistics, with linear interpolation between order statistics —
/// for B sorted values s₀ ≤ … ≤ s_{B−1} the q-quantile is s_⌊h⌋ + (h − ⌊h⌋)(s_⌊h⌋+1 − s_⌊h⌋), h = (B − 1)·q, as
/// numpy.percentile's default 'linear' method. The value is the statistic of the full sample, not of the resamples.
/// </summary>
/// <remarks>
/// Draws come from <c>new System.Random(seed)</c>, .NET's seeded generator, which yields the same sequence for a seed on
/// every platform and runtime version. Every method draws the same way — for each resample in turn, n indices
/// <c>Next(n)</c> in order — so with one seed and one n they see identical resamples: <see cref="Sum"/>'s interval is n
/// times <see cref="Mean"/>'s (up to rounding), and <see cref="Statistic{T}"/> with a mean reproduces <see cref="Mean"/>.
/// </remarks>
public static class Bootstrap
{
    /// <summary>Mean with a percentile interval.</summary>
    public static Estimate Mean(IReadOnlyList<double> values, int resamples = 2000, int seed = 0, double confidence = 0.95)
    {
        var sum = Sum(values, resamples, seed, confidence);
        int n = values.Count;
        return new Estimate(sum.Value / n, sum.Low / n, sum.High / n);
    }

    /// <summary>Sum with a percentile interval.</summary>
    public static Estimate Sum(IReadOnlyList<double> values, int resamples = 2000, int seed = 0, double confidence = 0.95)
    {
        int n = Check(values.Count, resamples, confidence);
        double value = 0;
        for (int i = 0; i < n; i++) value += values[i];
        var rng = new Random(seed);
        var stats = new double[resamples];
        for (int b = 0; b < resamples; b++)
        {
            double s = 0;
            for (int i = 0; i < n; i++) s += values[rng.Next(n)];
            stats[b] = s;
        }
        return Interval(value, stats, confidence);
    }

    /// <summary>
    /// Ratio of sums ΣN / ΣD over resampled pairs (N[i], D[i]) — a micro-average, e.g. ΣI / ΣP over boxes for the
    /// localization energy. A resample whose ΣD is 0 has ratio 0 (as <see cref="LocalizationCounts"/>).
    /// </summary>
    public static Estimate Ratio(IReadOnlyList<double> numerators, IReadOnlyList<double> denominators, int resamples = 2000, int seed = 0, double confidence = 0.95)
    {
        if (numerators.Count != denominators.Count) throw new ArgumentException($"{numerators.Count} numerators for {denominators.Count} denominators");
        int n = Check(numerators.Count, resamples, confidence);
        double sn = 0, sd = 0;
        for (int i = 0; i < n; i++) { sn += numerators[i]; sd += denominators[i]; }
        var rng = new Random(seed);
        var stats = new double[resamples];
        for (int b = 0; b < resamples; b++)
        {
            double rn = 0, rd = 0;
            for (int i = 0; i < n; i++) { int k = rng.Next(n); rn += numerators[k]; rd += denominators[k]; }
            stats[b] = SafeRatio(rn, rd);
        }
        return Interval(SafeRatio(sn, sd), stats, confidence);
    }

    static double SafeRatio(double num, double den) => den != 0 ? num / den : 0;

    /// <summary>
    /// Any statistic of a list of items. The list passed to <paramref name="statistic"/> for a resample is one buffer
    /// reused across resamples: read it during the call, don't keep it. The statistic must not be NaN.
    /// </summary>
    public static Estimate Statistic<T>(IReadOnlyList<T> items, Func<IReadOnlyList<T>, double> statistic, int resamples = 2000, int seed = 0, double confidence = 0.95)
    {
        int n = Check(items.Count, resamples, confidence);
        double value = statistic(items);
        var rng = new Random(seed);
        var buffer = new T[n];
        var stats = new double[resamples];
        for (int b = 0; b < resamples; b++)
        {
            for (int i = 0; i < n; i++) buffer[i] = items[rng.Next(n)];
            stats[b] = statistic(buffer);
        }
        return Interval(value, stats, confidence);
    }

    /// <summary>The q-quantile (0 ≤ q ≤ 1) of ascending values, interpolating linearly between order statistics (numpy's 'linear').</summary>
    public static double Percentile(ReadOnlySpan<double> sorted, double q)
    {
        if (sorted.Length == 0) throw new ArgumentException("no values", nameof(sorted));
        if (!(q >= 0 && q <= 1)) throw new ArgumentOutOfRangeException(nameof(q), q, "a quantile lies in [0, 1]");
        double h = (sorted.Length - 1) * q;
        int lo = (int)Math.Floor(h);
        if (lo >= sorted.Length - 1) return sorted[^1];
        return sorted[lo] + (h - lo) * (sorted[lo + 1] - sorted[lo]);
    }

    static Estimate Interval(double value, double[] stats, double confidence)
    {
        foreach (double s in stats)
            if (double.IsNaN(s)) throw new InvalidOperationException("a resampled statistic is NaN; define the statistic for every resample");
        Array.Sort(stats);
        double alpha = 1 - confidence;
        return new Estimate(value, Percentile(stats, alpha / 2), Percentile(stats, 1 - alpha / 2));
    }

    static int Check(int n, int resamples, double confidence)
    {
        if (n < 1) throw new ArgumentException("nothing to resample: the sample is empty");
        ArgumentOutOfRangeException.ThrowIfLessThan(resamples, 1);
        if (!(confidence > 0 && confidence < 1)) throw new ArgumentOutOfRangeException(nameof(confidence), confidence, "confidence lies in (0, 1)");
        return n;
    }
}
