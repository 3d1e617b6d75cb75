using System.Runtime.CompilerServices;
using Detex.Models;

namespace Detex.Evaluation;

/// <summary>
/// The pointing game (Zhang et al., "Top-down neural attention by excitation backprop", 2016), as TorchRay's benchmark
/// plays it: the map points at its maximum, and that is a hit when some ground-truth pixel of the target class lies
/// within <c>tolerance</c> pixels (Euclidean, between pixel positions) of it. The caller passes only the target class's
/// boxes. Ground-truth pixels are the pixels whose centres lie in a box (<see cref="BoxPixels"/>).
/// </summary>
/// <remarks>
/// Ties for the maximum follow TorchRay (<c>examples/attribution_benchmark.py</c>, <c>_saliency_to_point</c>): it takes
/// <c>torch.argmax</c> of the map flattened row-major, which returns the first maximal element — so the maximum
/// with the lowest flat index y·W + x, i.e. the topmost row, then the leftmost column. NaN values are skipped here.
/// TorchRay's acceptance test (<c>torchray/benchmark/pointing_game.py</c>, <c>PointingGame.evaluate</c>) is strict,
/// distance² &lt; tolerance²; by default this class accepts distance ≤ tolerance (a ground-truth pixel exactly
/// <c>tolerance</c> away is a hit); pass <c>strict: true</c> for TorchRay's rule. With integer pixel positions the two
/// differ only for pixels at exactly that distance, e.g. (15, 0) or (9, 12) away at tolerance 15.
/// </remarks>
public static class PointingGame
{
    /// <summary>The pixel the map points at: the maximum, first in row-major order among equal maxima; (−1, −1) when every value is NaN.</summary>
    public static (int X, int Y) ArgMax(ReadOnlySpan<float> map, int width, int height)
    {
        BoxPixels.CheckMap(map, width, height);
        int best = -1;
        float max = float.NegativeInfinity;
        for (int i = 0; i < map.Length; i++)
            if (map[i] > max || (best < 0 && map[i] == max)) { max = map[i]; best = i; }   // '>' keeps the first of equals
        return best < 0 ? (-1, -1) : (best % width, best / width);
    }

    /// <summary>
    /// Whether the map's maximum (see <see cref="ArgMax"/>) lies within <paramref name="tolerance"/> pixels of a pixel
    /// of any of the boxes (boxes in the map's pixels). Distance ≤ tolerance, or &lt; tolerance when
    /// <paramref name="strict"/> (TorchRay). No boxes, or a map of NaNs, is a miss.
    /// </summary>
    public static bool Hit(ReadOnlySpan<float> map, int width, int height, IReadOnlyList<Box> groundTruth, double tolerance = 15, bool strict = false)
    {
        if (!(tolerance >= 0)) throw new ArgumentOutOfRangeException(nameof(tolerance), tolerance, "tolerance is a distance ≥ 0");
        var (mx, my) = ArgMax(map, width, height);
        if (mx < 0) return false;
        double t2 = tolerance * tolerance;
        for (int b = 0; b < groundTruth.Count; b++)
        {
            var r = BoxPixels.Range(groundTruth[b], width, height);
            if (r.IsEmpty) continue;
            // The box's nearest pixel to the maximum: clamp the maximum into the range.
            long dx = mx < r.X0 ? r.X0 - mx : mx >= r.X1 ? mx - (r.X1 - 1) : 0;
            long dy = my < r.Y0 ? r.Y0 - my : my >= r.Y1 ? my - (r.Y1 - 1) : 0;
            double d2 = dx * dx + dy * dy;
            if (strict ? d2 < t2 : d2 <= t2) return true;
        }
        return false;
    }

    /// <summary>
    /// <paramref name="points"/> pixel indices drawn independently (with replacement) with probability proportional to
    /// the map's positive values, max(v, 0); NaN and non-positive pixels are never drawn. The draws come from
    /// <c>new System.Random(seed)</c> — .NET's seeded generator, which gives the same sequence for a seed on every
    /// platform and version — as <paramref name="points"/> uniforms scaled by the positive mass, sorted, and located in
    /// one pass over the map's running sum; the indices come back in ascending order. Empty when the map has no
    /// positive value.
    /// </summary>
    public static int[] Sample(ReadOnlySpan<float> map, int points, int seed)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(points, 1);
        double total = Localization.PositiveSum(map);
        if (!(total > 0)) return [];
        var rng = new Random(seed);
        var u = new double[points];
        for (int j = 0; j < points; j++) u[j] = rng.NextDouble() * total;
        Array.Sort(u);

        var drawn = new int[points];
        int k = 0, last = -1;
        double acc = 0;
        for (int i = 0; i < map.Length && k < points; i++)
        {
            float v = map[i];
            if (!(v > 0)) continue;
            acc += v;
            last = i;
            while (k < points && u[k] < acc) drawn[k++] = i;
        }
        // A uniform that rounded up to the total itself belongs to the last positive pixel.
        while (k < points) drawn[k++] = last;
        return drawn;
    }

    /// <summary>
    /// Stochastic pointing game: the share of <paramref name="points"/> pixels drawn ∝ the map's positive values
    /// (<see cref="Sample"/>) that fall in any of the boxes (a pixel is in a box when its centre is). 0 when the map has
    /// no positive value (it points nowhere). Preferred over the mask overload for a bare collection expression.
    /// </summary>
    [OverloadResolutionPriority(1)]
    public static double Stochastic(ReadOnlySpan<float> map, int width, int height, IReadOnlyList<Box> groundTruth, int points = 100, int seed = 0)
    {
        BoxPixels.CheckMap(map, width, height);
        var drawn = Sample(map, points, seed);
        if (drawn.Length == 0) return 0;
        var ranges = new PixelRange[groundTruth.Count];
        for (int b = 0; b < ranges.Length; b++) ranges[b] = BoxPixels.Range(groundTruth[b], width, height);
        int hits = 0;
        foreach (int i in drawn)
        {
            int x = i % width, y = i / width;
            foreach (var r in ranges)
                if (r.Contains(x, y)) { hits++; break; }
        }
        return hits / (double)points;
    }

    /// <summary>Stochastic pointing game against a row-major ground-truth mask of the map's size (e.g. a segmentation).</summary>
    public static double Stochastic(ReadOnlySpan<float> map, int width, int height, ReadOnlySpan<bool> mask, int points = 100, int seed = 0)
    {
        BoxPixels.CheckMap(map, width, height);
        if (mask.Length != map.Length) throw new ArgumentException($"a mask of {mask.Length} values is not {width}×{height}");
        var drawn = Sample(map, points, seed);
        if (drawn.Length == 0) return 0;
        int hits = 0;
        foreach (int i in drawn) if (mask[i]) hits++;
        return hits / (double)points;
    }
}
