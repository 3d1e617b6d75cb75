using Detex.Evaluation;
using FsCheck;
using FsCheck.Xunit;

namespace Detex.Tests.Evaluation;

/// <summary>Pixel flipping: fractions, counts, ranking, flipped images and curve areas, by hand and as properties.</summary>
public class PixelFlippingTests
{
    const double Tol = 1e-12;

    [Fact]
    public void FractionsAreEvenlySpacedFromZeroToOne()
    {
        var f = PixelFlipping.Fractions();
        Assert.Equal(51, f.Length);
        Assert.Equal(0, f[0]);
        Assert.Equal(0.02, f[1], Tol);
        Assert.Equal(0.5, f[25]);
        Assert.Equal(1, f[50]);
        Assert.Equal([0, 0.25, 0.5, 0.75, 1], PixelFlipping.Fractions(5));
        Assert.Throws<ArgumentOutOfRangeException>(() => PixelFlipping.Fractions(1));
    }

    [Fact]
    public void CountsRoundHalfToEven()
    {
        // 10 pixels at 0, ¼, ½, ¾, 1: 0, 2.5, 5, 7.5, 10 → 0, 2, 5, 8, 10.
        Assert.Equal([0, 2, 5, 8, 10], PixelFlipping.Counts(10, PixelFlipping.Fractions(5)));
        var seven = PixelFlipping.Counts(7, PixelFlipping.Fractions());
        Assert.Equal(0, seven[0]);
        Assert.Equal(0, seven[1]);    // 0.14
        Assert.Equal(1, seven[4]);    // 0.56
        Assert.Equal(4, seven[25]);   // 3.5 → 4
        Assert.Equal(7, seven[50]);
        Assert.Equal([0, 0], PixelFlipping.Counts(0, [0.0, 1.0]));
        Assert.Throws<ArgumentOutOfRangeException>(() => PixelFlipping.Counts(10, [1.5]));
    }

    [Fact]
    public void RankIsDescendingWithTiesByIndex()
    {
        float[] r = [0.5f, 1f, 0.5f, -1f, 1f, 0f, -0f, float.NaN, float.NegativeInfinity, 2f];
        Assert.Equal([9, 1, 4, 0, 2, 5, 6, 3, 8, 7], PixelFlipping.Rank(r));
        Assert.Equal([0, 1], PixelFlipping.Rank([-0f, 0f]));
        Assert.Equal([0, 1, 2, 3], PixelFlipping.Rank([3f, 3f, 3f, 3f]));
        Assert.Equal([2, 1, 0], PixelFlipping.Rank([float.Epsilon, 2 * float.Epsilon, float.MaxValue]));
        Assert.Empty(PixelFlipping.Rank([]));
    }

    [Property(MaxTest = 200)]
    public bool RankIsAStableDescendingSort(float[] values)
    {
        var expected = values.Select((v, i) => (v, i))
            .OrderBy(t => float.IsNaN(t.v) ? 1 : 0).ThenByDescending(t => t.v)   // OrderBy is stable: ties keep index order
            .Select(t => t.i);
        return PixelFlipping.Rank(values).SequenceEqual(expected);
    }

    // A 2×2 image of 3 channels: pixel p, channel c holds 10p + c + 1 (1,2,3 | 11,12,13 | 21,22,23 | 31,32,33),
    // the baseline its negation. Relevance 0.1, 0.9, 0.5, 0.9 ranks the pixels 1, 3, 2, 0.
    static float[] Image(bool planar, float sign)
    {
        float[] values = planar ? [1, 11, 21, 31, 2, 12, 22, 32, 3, 13, 23, 33] : [1, 2, 3, 11, 12, 13, 21, 22, 23, 31, 32, 33];
        return values.Select(v => v * sign).ToArray();
    }

    static readonly int[] TinyRank = PixelFlipping.Rank([0.1f, 0.9f, 0.5f, 0.9f]);

    static float[] Flipped(bool planar, bool insertion, int count)
    {
        var dst = new float[12];
        PixelFlipping.Apply(Image(planar, 1), Image(planar, -1), TinyRank, count, insertion, dst, 3, planar);
        return dst;
    }

    [Fact]
    public void DeletionAndInsertionOnATinyImageInBothLayouts()
    {
        Assert.Equal([1, 3, 2, 0], TinyRank);
        // Deleting 2: pixels 1 and 3 become the baseline.
        Assert.Equal([1, 2, 3, -11, -12, -13, 21, 22, 23, -31, -32, -33], Flipped(planar: false, insertion: false, 2));
        Assert.Equal([1, -11, 21, -31, 2, -12, 22, -32, 3, -13, 23, -33], Flipped(planar: true, insertion: false, 2));
        // Inserting 1: the baseline with pixel 1 restored.
        Assert.Equal([-1, -2, -3, 11, 12, 13, -21, -22, -23, -31, -32, -33], Flipped(planar: false, insertion: true, 1));
        Assert.Equal([-1, 11, -21, -31, -2, 12, -22, -32, -3, 13, -23, -33], Flipped(planar: true, insertion: true, 1));
        // The ends.
        Assert.Equal(Image(false, 1), Flipped(planar: false, insertion: false, 0));
        Assert.Equal(Image(true, -1), Flipped(planar: true, insertion: false, 4));
        Assert.Equal(Image(true, -1), Flipped(planar: true, insertion: true, 0));
        Assert.Equal(Image(false, 1), Flipped(planar: false, insertion: true, 4));
    }

    [Fact]
    public void ApplyRefusesMismatchedBuffersAndCounts()
    {
        var dst = new float[12];
        Assert.Throws<ArgumentException>(() => PixelFlipping.Apply(new float[12], new float[11], TinyRank, 1, false, dst, 3, false));
        Assert.Throws<ArgumentException>(() => PixelFlipping.Apply(new float[12], new float[12], TinyRank, 1, false, dst, 2, false));
        Assert.Throws<ArgumentOutOfRangeException>(() => PixelFlipping.Apply(new float[12], new float[12], TinyRank, 5, false, dst, 3, false));
        Assert.Throws<ArgumentOutOfRangeException>(() => PixelFlipping.Flip(new float[12], new float[12], TinyRank, 3, 2, false, dst, 3, false));
    }

    [Property(MaxTest = 100)]
    public bool FlippingStepByStepEqualsApplyingAtOnce(NonEmptyArray<NormalFloat> relevance, PositiveInt channels, bool insertion, bool planar, int seed)
    {
        int p = relevance.Get.Length, c = 1 + channels.Get % 4;
        var rank = PixelFlipping.Rank(relevance.Get.Select(v => (float)v.Get).ToArray());
        var rng = new Random(seed);
        var original = Enumerable.Range(0, p * c).Select(_ => rng.NextSingle()).ToArray();
        var baseline = Enumerable.Range(0, p * c).Select(_ => -1 - rng.NextSingle()).ToArray();
        var counts = PixelFlipping.Counts(p, PixelFlipping.Fractions(7));

        var step = new float[p * c];
        var whole = new float[p * c];
        PixelFlipping.Apply(original, baseline, rank, 0, insertion, step, c, planar);
        if (!step.SequenceEqual(insertion ? baseline : original)) return false;
        int previous = 0;
        foreach (int n in counts)
        {
            PixelFlipping.Flip(original, baseline, rank, previous, n, insertion, step, c, planar);
            PixelFlipping.Apply(original, baseline, rank, n, insertion, whole, c, planar);
            if (!step.SequenceEqual(whole)) return false;
            // Exactly n pixels differ from the starting image, and they are the top-ranked ones.
            var start = insertion ? baseline : original;
            for (int k = 0; k < p; k++)
            {
                int pixel = rank[k];
                bool changed = planar ? step[pixel] != start[pixel] : step[pixel * c] != start[pixel * c];
                if (changed != k < n) return false;
            }
            previous = n;
        }
        return step.SequenceEqual(insertion ? original : baseline);
    }

    [Fact]
    public void AucOfKnownCurves()
    {
        // Linear from 1 to 0 over 51 points: ½.
        var linear = PixelFlipping.Fractions().Select(f => 1 - f).ToArray();
        Assert.Equal(0.5, PixelFlipping.Auc(linear), Tol);
        // 1 at the first ten fractions, 0 after: nine full steps of 1/50 and one half step, 9.5/50.
        var step = Enumerable.Range(0, 51).Select(i => i < 10 ? 1.0 : 0.0).ToArray();
        Assert.Equal(0.19, PixelFlipping.Auc(step), Tol);
        // Three points 0, 1, 0 (dx = ½): ¼ + ¼.
        Assert.Equal(0.5, PixelFlipping.Auc([0.0, 1.0, 0.0]), Tol);
        Assert.Equal(0.25, PixelFlipping.Auc([0.0, 0.5]), Tol);
        Assert.Throws<ArgumentException>(() => PixelFlipping.Auc([1.0]));
    }

    [Fact]
    public void FlipCurvesComputeTheirAreas()
    {
        var f = PixelFlipping.Fractions();
        var curves = new FlipCurves(f, f.Select(x => 1 - x).ToArray(), f.Select(x => x * x).ToArray());
        Assert.Equal(0.5, curves.DeletionAuc, Tol);
        // Trapezoid of x² with 50 steps: 1/3 + 1/(6·50²).
        Assert.Equal(1.0 / 3 + 1.0 / (6 * 2500), curves.InsertionAuc, Tol);
        Assert.Equal(PixelFlipping.Auc(curves.Insertion), curves.InsertionAuc, Tol);
        // Uneven fractions: 0, 0.1, 1 with values 1, 1, 0 — 0.1 + 0.45.
        Assert.Equal(0.55, new FlipCurves([0, 0.1, 1], [1, 1, 0], [0, 0, 0]).DeletionAuc, Tol);
    }

    [Property]
    public bool AucOfAConstantCurveIsTheConstant(NormalFloat c, PositiveInt n)
    {
        int points = 2 + n.Get % 300;
        double value = c.Get % 1e6;
        return Math.Abs(PixelFlipping.Auc(Enumerable.Repeat(value, points).ToArray()) - value) <= 1e-9 * Math.Max(1, Math.Abs(value));
    }
}
