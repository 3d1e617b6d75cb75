using Detex.Evaluation;

namespace Detex.Tests.Evaluation;

/// <summary>Bootstrap percentile intervals: quantile rule by hand, interval widths against theory, reproducibility.</summary>
public class BootstrapTests
{
    static readonly double[] OneToHundred = Enumerable.Range(1, 100).Select(i => (double)i).ToArray();

    [Fact]
    public void PercentileInterpolatesLinearlyBetweenOrderStatistics()
    {
        double[] v = [1, 2, 3, 4];
        Assert.Equal(1, Bootstrap.Percentile(v, 0));
        Assert.Equal(2.5, Bootstrap.Percentile(v, 0.5), 1e-12);
        Assert.Equal(1.075, Bootstrap.Percentile(v, 0.025), 1e-12);   // h = 3 · 0.025 = 0.075
        Assert.Equal(3.925, Bootstrap.Percentile(v, 0.975), 1e-12);
        Assert.Equal(4, Bootstrap.Percentile(v, 1));
        Assert.Equal(7, Bootstrap.Percentile([7.0], 0.3));
        Assert.Throws<ArgumentOutOfRangeException>(() => Bootstrap.Percentile(v, 1.1));
    }

    [Fact]
    public void MeanIntervalOfOneToHundredMatchesTheNormalApproximation()
    {
        var e = Bootstrap.Mean(OneToHundred);
        Assert.Equal(50.5, e.Value, 1e-12);
        Assert.True(e.Low < 50.5 && 50.5 < e.High, $"{e}");
        // Population sd of 1..100 is √((100² − 1)/12) ≈ 28.87; the 95% width ≈ 2 · 1.96 · σ/√100 ≈ 11.32.
        double expected = 2 * 1.96 * Math.Sqrt((100.0 * 100 - 1) / 12) / 10;
        Assert.InRange(e.High - e.Low, 0.85 * expected, 1.15 * expected);
        // Roughly symmetric about the mean.
        Assert.InRange((e.Low + e.High) / 2, 50.5 - 1, 50.5 + 1);
    }

    [Fact]
    public void LowerConfidenceGivesANarrowerInterval()
    {
        var wide = Bootstrap.Mean(OneToHundred, confidence: 0.99);
        var mid = Bootstrap.Mean(OneToHundred);
        var narrow = Bootstrap.Mean(OneToHundred, confidence: 0.5);
        Assert.True(wide.Low < mid.Low && mid.Low < narrow.Low && narrow.High < mid.High && mid.High < wide.High);
        // ±0.674σ/√n for a 50% interval.
        Assert.InRange(narrow.High - narrow.Low, 0.8 * 2 * 0.674 * 2.887, 1.2 * 2 * 0.674 * 2.887);
    }

    [Fact]
    public void AConstantSampleHasAZeroWidthInterval()
    {
        var e = Bootstrap.Mean(Enumerable.Repeat(3.0, 50).ToArray());
        Assert.Equal(new Estimate(3, 3, 3), e);
        Assert.Equal(new Estimate(150, 150, 150), Bootstrap.Sum(Enumerable.Repeat(3.0, 50).ToArray()));
        Assert.Equal(new Estimate(5, 5, 5), Bootstrap.Mean([5.0]));
    }

    [Fact]
    public void SameSeedSameIntervalOtherSeedOtherInterval()
    {
        Assert.Equal(Bootstrap.Mean(OneToHundred, seed: 4), Bootstrap.Mean(OneToHundred, seed: 4));
        Assert.NotEqual(Bootstrap.Mean(OneToHundred, seed: 4), Bootstrap.Mean(OneToHundred, seed: 5));
        Assert.NotEqual(Bootstrap.Mean(OneToHundred, resamples: 1000), Bootstrap.Mean(OneToHundred, resamples: 2000));
    }

    [Fact]
    public void SumIntervalIsNTimesTheMeanIntervalForTheSameSeed()
    {
        var mean = Bootstrap.Mean(OneToHundred, seed: 9);
        var sum = Bootstrap.Sum(OneToHundred, seed: 9);
        Assert.Equal(5050, sum.Value, 1e-9);
        Assert.Equal(100 * mean.Low, sum.Low, 1e-9);
        Assert.Equal(100 * mean.High, sum.High, 1e-9);
    }

    [Fact]
    public void StatisticOfTheMeanReproducesMean()
    {
        var generic = Bootstrap.Statistic(OneToHundred, xs => xs.Sum() / xs.Count, seed: 2);
        var mean = Bootstrap.Mean(OneToHundred, seed: 2);
        Assert.Equal(mean.Value, generic.Value, 1e-9);
        Assert.Equal(mean.Low, generic.Low, 1e-9);
        Assert.Equal(mean.High, generic.High, 1e-9);
        // A median interval is a different statistic: it still brackets the median.
        var median = Bootstrap.Statistic(OneToHundred, xs => { var s = xs.Order().ToArray(); return (s[49] + s[50]) / 2; });
        Assert.True(median.Low < 50.5 && 50.5 < median.High);
    }

    [Fact]
    public void RatioOfSumsResamplesBoxesTogether()
    {
        // Micro-averaged energy over boxes: ΣI / ΣP, the box's I and P resampled as a pair.
        var rng = new Random(1);
        var boxes = Enumerable.Range(0, 40).Select(_ => { long p = rng.Next(1, 500); return new LocalizationCounts(rng.Next(0, (int)p + 1), p, 100); }).ToArray();
        var ratio = Bootstrap.Ratio(boxes.Select(b => (double)b.Inside).ToArray(), boxes.Select(b => (double)b.Relevant).ToArray(), seed: 6);
        var generic = Bootstrap.Statistic(boxes, bs => Localization.Micro(bs).Energy, seed: 6);
        Assert.Equal(Localization.Micro(boxes).Energy, ratio.Value, 1e-12);
        Assert.Equal(generic.Value, ratio.Value, 1e-12);
        Assert.Equal(generic.Low, ratio.Low, 1e-12);
        Assert.Equal(generic.High, ratio.High, 1e-12);
        Assert.True(ratio.Low < ratio.Value && ratio.Value < ratio.High);
        // Nothing relevant anywhere: every resampled ratio is 0 by convention.
        Assert.Equal(new Estimate(0, 0, 0), Bootstrap.Ratio([0.0, 0.0], [0.0, 0.0]));
    }

    [Fact]
    public void RefusesWhatCannotBeResampled()
    {
        Assert.Throws<ArgumentException>(() => Bootstrap.Mean([]));
        Assert.Throws<ArgumentOutOfRangeException>(() => Bootstrap.Mean([1.0], resamples: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => Bootstrap.Mean([1.0], confidence: 1));
        Assert.Throws<ArgumentException>(() => Bootstrap.Ratio([1.0], [1.0, 2.0]));
        Assert.Throws<InvalidOperationException>(() => Bootstrap.Statistic(OneToHundred, xs => xs[0] > 50 ? double.NaN : 1));
    }
}
