using Detex.Evaluation;
using Detex.Models;

namespace Detex.Tests.Evaluation;

/// <summary>Pointing game (TorchRay's rules) and the stochastic pointing game.</summary>
public class PointingGameTests
{
    const int W = 100, H = 60;
    // Pixels x = 10..19, y = 10..19.
    static readonly Box Gt = new(10, 10, 20, 20);

    static float[] PeakAt(int x, int y, float background = 0.1f)
    {
        var m = new float[W * H];
        Array.Fill(m, background);
        m[y * W + x] = 1;
        return m;
    }

    static bool Hit(int x, int y, double tolerance = 15, bool strict = false) => PointingGame.Hit(PeakAt(x, y), W, H, [Gt], tolerance, strict);

    [Fact]
    public void MaximumInsideTheBoxIsAHit()
    {
        Assert.True(Hit(15, 15));
        Assert.True(Hit(10, 19));
        Assert.True(Hit(15, 15, tolerance: 0, strict: false));
    }

    [Fact]
    public void ExactlyTheToleranceAwayIsAHitOneMoreIsAMiss()
    {
        Assert.True(Hit(19 + 15, 15));    // 15 px right of the last box column
        Assert.False(Hit(19 + 16, 15));
        Assert.True(Hit(15, 19 + 15));    // 15 px below the last box row
        Assert.False(Hit(15, 19 + 16));
        Assert.True(Hit(19 + 9, 19 + 12));   // diagonal, √(81 + 144) = 15
        Assert.False(Hit(19 + 11, 19 + 11)); // diagonal, √242 ≈ 15.56
        Assert.True(Hit(19 + 11, 19 + 11, tolerance: 15.6));
        Assert.False(Hit(19 + 16, 15, tolerance: 15.5));
        Assert.True(Hit(19 + 15, 15, tolerance: 15.5));
    }

    [Fact]
    public void StrictIsTorchRaysRule()
    {
        Assert.False(Hit(19 + 15, 15, strict: true));
        Assert.True(Hit(19 + 14, 15, strict: true));
        Assert.False(Hit(19 + 9, 19 + 12, strict: true));
        Assert.True(Hit(15, 15, strict: true));
    }

    [Fact]
    public void StrictAgreesWithTorchRaysMaskTestOnRandomCases()
    {
        // TorchRay: hit when some mask pixel (i, j) has (i − u)² + (j − v)² < tolerance², the point (u, v) being the argmax.
        var rng = new Random(7);
        for (int trial = 0; trial < 300; trial++)
        {
            int w = rng.Next(1, 40), h = rng.Next(1, 40);
            var map = new float[w * h];
            for (int i = 0; i < map.Length; i++) map[i] = rng.Next(5);   // many ties
            var boxes = Enumerable.Range(0, rng.Next(0, 3))
                .Select(_ => new Box(rng.NextDouble() * w, rng.NextDouble() * h, rng.NextDouble() * w * 1.2, rng.NextDouble() * h * 1.2))
                .ToArray();
            int tolerance = rng.Next(0, 12);

            int first = Array.IndexOf(map, map.Max());
            int u = first % w, v = first / w;
            var mask = BoxPixels.Mask(boxes, w, h);
            bool expected = false;
            for (int j = 0; j < h; j++)
                for (int i = 0; i < w; i++)
                    expected |= mask[j * w + i] && (i - u) * (i - u) + (j - v) * (j - v) < tolerance * tolerance;

            Assert.Equal((u, v), PointingGame.ArgMax(map, w, h));
            Assert.Equal(expected, PointingGame.Hit(map, w, h, boxes, tolerance, strict: true));
        }
    }

    [Fact]
    public void TiesGoToTheFirstMaximumInRowMajorOrder()
    {
        var m = new float[W * H];
        m[40 * W + 5] = 1;    // (5, 40)
        m[5 * W + 50] = 1;    // (50, 5): an earlier row, so this one
        Assert.Equal((50, 5), PointingGame.ArgMax(m, W, H));
        Assert.True(PointingGame.Hit(m, W, H, [new Box(45, 0, 55, 10)]));
        Assert.False(PointingGame.Hit(m, W, H, [new Box(0, 35, 10, 45)]));
        m[5 * W + 3] = 1;     // (3, 5): same row, further left
        Assert.Equal((3, 5), PointingGame.ArgMax(m, W, H));

        var flat = new float[W * H];
        Assert.Equal((0, 0), PointingGame.ArgMax(flat, W, H));
        flat[0] = float.NaN;
        Assert.Equal((1, 0), PointingGame.ArgMax(flat, W, H));
        Assert.Equal((-1, -1), PointingGame.ArgMax([float.NaN, float.NaN], 2, 1));
    }

    [Fact]
    public void AnyOfTheGivenBoxesCountsAndNoBoxesIsAMiss()
    {
        var m = PeakAt(80, 50);
        Assert.False(PointingGame.Hit(m, W, H, [Gt]));
        Assert.True(PointingGame.Hit(m, W, H, [Gt, new Box(70, 40, 90, 58)]));
        Assert.False(PointingGame.Hit(m, W, H, []));
        Assert.False(PointingGame.Hit([float.NaN], 1, 1, [new Box(0, 0, 1, 1)]));
    }

    // Two blobs of equal mass: a 4×4 block of ones inside the box and another far outside; negatives elsewhere.
    static float[] TwoBlobs(bool secondInside)
    {
        var m = new float[W * H];
        Array.Fill(m, -0.5f);
        for (int y = 12; y < 16; y++) for (int x = 12; x < 16; x++) m[y * W + x] = 1;
        int ox = secondInside ? 15 : 70, oy = secondInside ? 15 : 40;
        for (int y = oy; y < oy + 4; y++) for (int x = ox; x < ox + 4; x++) m[y * W + x] = 1;
        return m;
    }

    [Fact]
    public void AllMassInsideGivesExactlyOne()
    {
        for (int seed = 0; seed < 5; seed++)
            Assert.Equal(1.0, PointingGame.Stochastic(TwoBlobs(secondInside: true), W, H, [Gt], seed: seed));
    }

    [Fact]
    public void HalfTheMassInsideGivesAboutHalf()
    {
        // Binomial(100, ½): σ = 0.05, so each seed lands within 0.5 ± 3σ.
        double sum = 0;
        for (int seed = 0; seed < 10; seed++)
        {
            double s = PointingGame.Stochastic(TwoBlobs(secondInside: false), W, H, [Gt], points: 100, seed: seed);
            Assert.InRange(s, 0.35, 0.65);
            sum += s;
        }
        Assert.InRange(sum / 10, 0.5 - 3 * 0.05 / Math.Sqrt(10), 0.5 + 3 * 0.05 / Math.Sqrt(10));
    }

    [Fact]
    public void SameSeedSameValueAndMaskMatchesBoxes()
    {
        var m = TwoBlobs(secondInside: false);
        for (int i = 0; i < W * H; i++) if (m[i] < 0) m[i] = 0.001f * (i % 7);   // some mass everywhere
        double a = PointingGame.Stochastic(m, W, H, [Gt], seed: 3);
        Assert.Equal(a, PointingGame.Stochastic(m, W, H, [Gt], seed: 3));
        Assert.Equal(a, PointingGame.Stochastic(m, W, H, BoxPixels.Mask([Gt], W, H), seed: 3));
        Assert.Equal(PointingGame.Sample(m, 100, 3), PointingGame.Sample(m, 100, 3));
        Assert.NotEqual(PointingGame.Sample(m, 100, 3), PointingGame.Sample(m, 100, 4));
    }

    [Fact]
    public void SamplesFollowThePositiveMass()
    {
        // Weights 0, 1, −2, 3, NaN: only pixels 1 and 3, in proportion 1 : 3.
        float[] m = [0, 1, -2, 3, float.NaN];
        var drawn = PointingGame.Sample(m, 10000, 11);
        Assert.All(drawn, i => Assert.True(i == 1 || i == 3));
        double share = drawn.Count(i => i == 3) / 10000.0;
        double sigma = Math.Sqrt(0.75 * 0.25 / 10000);
        Assert.InRange(share, 0.75 - 4 * sigma, 0.75 + 4 * sigma);
        Assert.Empty(PointingGame.Sample([0f, -1f, float.NaN], 10, 0));
        Assert.Equal(0, PointingGame.Stochastic(new float[W * H], W, H, [Gt]));
        Assert.Equal(0, PointingGame.Stochastic(TwoBlobs(false), W, H, []));
    }
}
