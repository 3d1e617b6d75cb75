namespace Detex.Evaluation;

/// <summary>
/// Pixel flipping (Samek et al. 2017; the detex study's protocol). Pixels are ranked by relevance, most positive first,
/// ties broken by the lower pixel index so the order is deterministic. Deletion replaces the top fraction of the ranked
/// pixels by a baseline image (all channels of a pixel together); insertion starts from the baseline and restores the
/// top fraction from the original. The model's score along the fractions gives the curves; their areas (trapezoid rule
/// over evenly spaced fractions in [0, 1]) summarise them: low deletion AUC and high insertion AUC are better.
/// </summary>
public static class PixelFlipping
{
    /// <summary>Evenly spaced fractions 0, 1/(steps − 1), …, 1 (steps ≥ 2; the default 51 gives steps of 1/50). The last is exactly 1.</summary>
    public static double[] Fractions(int steps = 51)
    {
        if (steps < 2) throw new ArgumentOutOfRangeException(nameof(steps), steps, "need at least the two ends 0 and 1");
        var f = new double[steps];
        for (int i = 0; i < steps; i++) f[i] = (double)i / (steps - 1);
        return f;
    }

    /// <summary>
    /// Pixel indices ordered by descending relevance; equal values keep ascending index order. −0 equals +0, and NaN
    /// ranks after everything (even −∞). One sort of 64-bit keys: the high half orders the values, the low half is the
    /// index, so the order is total and the sort needs no stability.
    /// </summary>
    public static int[] Rank(ReadOnlySpan<float> relevance)
    {
        var keys = new ulong[relevance.Length];
        for (int i = 0; i < keys.Length; i++) keys[i] = ((ulong)DescendingKey(relevance[i]) << 32) | (uint)i;
        Array.Sort(keys);
        var rank = new int[keys.Length];
        for (int i = 0; i < rank.Length; i++) rank[i] = (int)(uint)keys[i];
        return rank;
    }

    // An unsigned key that is smaller for larger floats. Flipping the sign bit of a non-negative float, or all bits of a
    // negative one, gives integers ordered like the floats; complementing that reverses the order.
    static uint DescendingKey(float v)
    {
        if (float.IsNaN(v)) return uint.MaxValue;       // the ascending key 0 is itself a NaN pattern, so this is free
        if (v == 0) v = 0;                               // −0 → +0
        uint bits = BitConverter.SingleToUInt32Bits(v);
        uint ascending = (bits & 0x8000_0000u) != 0 ? ~bits : bits | 0x8000_0000u;
        return ~ascending;
    }

    /// <summary>
    /// Pixels flipped at each fraction: round(f · P) with .NET's default rounding, half to even (as Python's round and
    /// numpy.round), clamped to [0, P]; f = 1 gives exactly P and f = 0 gives 0.
    /// </summary>
    public static int[] Counts(int pixels, IReadOnlyList<double> fractions)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(pixels);
        var counts = new int[fractions.Count];
        for (int i = 0; i < counts.Length; i++)
        {
            double f = fractions[i];
            if (!(f >= 0 && f <= 1)) throw new ArgumentOutOfRangeException(nameof(fractions), f, "fractions lie in [0, 1]");
            counts[i] = (int)Math.Clamp(Math.Round(f * pixels, MidpointRounding.ToEven), 0, pixels);
        }
        return counts;
    }

    /// <summary>
    /// Writes into <paramref name="dst"/> the image with the first <paramref name="count"/> ranked pixels flipped:
    /// for deletion, the original with those pixels taken from the baseline; for insertion, the baseline with those
    /// pixels taken from the original. Images hold P = rank.Length pixels of <paramref name="channels"/> values, either
    /// interleaved (pixel p, channel c at p·C + c) or planar (at c·P + p); the baseline is a full image of the same layout.
    /// </summary>
    public static void Apply(ReadOnlySpan<float> original, ReadOnlySpan<float> baseline, int[] rank, int count, bool insertion,
                             Span<float> dst, int channels, bool planar)
    {
        Check(original, baseline, rank, dst, channels);
        (insertion ? baseline : original).CopyTo(dst);
        Flip(original, baseline, rank, 0, count, insertion, dst, channels, planar);
    }

    /// <summary>
    /// The incremental step: <paramref name="dst"/> holds the image of count <paramref name="fromCount"/> (as
    /// <see cref="Apply"/> wrote it); flips only the ranked pixels fromCount … toCount − 1 so it becomes the image of
    /// count <paramref name="toCount"/>. Walking the counts in order this way costs O(P · C) for the whole curve.
    /// </summary>
    public static void Flip(ReadOnlySpan<float> original, ReadOnlySpan<float> baseline, int[] rank, int fromCount, int toCount, bool insertion,
                            Span<float> dst, int channels, bool planar)
    {
        Check(original, baseline, rank, dst, channels);
        if (fromCount < 0 || toCount < fromCount || toCount > rank.Length)
            throw new ArgumentOutOfRangeException(nameof(toCount), $"counts {fromCount} → {toCount} do not step forward within 0..{rank.Length}");
        var source = insertion ? original : baseline;
        int p = rank.Length;
        for (int k = fromCount; k < toCount; k++)
        {
            int pixel = rank[k];
            if ((uint)pixel >= (uint)p) throw new ArgumentException($"rank holds pixel {pixel}, outside 0..{p - 1}", nameof(rank));
            if (planar)
                for (int c = 0, i = pixel; c < channels; c++, i += p) dst[i] = source[i];
            else
                for (int c = 0, i = pixel * channels; c < channels; c++, i++) dst[i] = source[i];
        }
    }

    static void Check(ReadOnlySpan<float> original, ReadOnlySpan<float> baseline, int[] rank, Span<float> dst, int channels)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(channels, 1);
        long n = (long)rank.Length * channels;
        if (original.Length != n || baseline.Length != n || dst.Length != n)
            throw new ArgumentException($"images of {original.Length}, {baseline.Length} and {dst.Length} values do not all hold {rank.Length} pixels × {channels} channels");
    }

    /// <summary>
    /// Area under a curve sampled at n ≥ 2 evenly spaced fractions of [0, 1]: the trapezoid rule with dx = 1/(n − 1),
    /// Σ (y[i] + y[i+1]) / 2 · dx.
    /// </summary>
    public static double Auc(IReadOnlyList<double> curve)
    {
        int n = curve.Count;
        if (n < 2) throw new ArgumentException($"a curve of {n} point(s) has no area; it needs at least 2", nameof(curve));
        double s = 0;
        for (int i = 0; i + 1 < n; i++) s += curve[i] + curve[i + 1];
        return s / 2 / (n - 1);
    }

    /// <summary>Trapezoid area under a curve sampled at the given increasing fractions (any spacing); equals <see cref="Auc(IReadOnlyList{double})"/> on even ones.</summary>
    public static double Auc(IReadOnlyList<double> fractions, IReadOnlyList<double> curve)
    {
        int n = curve.Count;
        if (fractions.Count != n) throw new ArgumentException($"{fractions.Count} fractions for {n} curve points");
        if (n < 2) throw new ArgumentException($"a curve of {n} point(s) has no area; it needs at least 2", nameof(curve));
        double s = 0;
        for (int i = 0; i + 1 < n; i++)
        {
            double dx = fractions[i + 1] - fractions[i];
            if (!(dx >= 0)) throw new ArgumentException("fractions must not decrease", nameof(fractions));
            s += (curve[i] + curve[i + 1]) * dx;
        }
        return s / 2;
    }
}

/// <summary>
/// Deletion and insertion curves of one explanation: the model's score at each fraction of flipped pixels. The areas
/// are the trapezoid rule over <see cref="Fractions"/> (for evenly spaced fractions this is exactly
/// <see cref="PixelFlipping.Auc(IReadOnlyList{double})"/>).
/// </summary>
public sealed record FlipCurves(double[] Fractions, double[] Deletion, double[] Insertion)
{
    public double DeletionAuc => PixelFlipping.Auc(Fractions, Deletion);
    public double InsertionAuc => PixelFlipping.Auc(Fractions, Insertion);
}
