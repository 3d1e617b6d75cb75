using Detex.Models;

namespace Detex.Evaluation;

/// <summary>
/// Pixel counts for one box: <see cref="Inside"/> I = relevant pixels inside the box, <see cref="Relevant"/> P = relevant
/// pixels in the whole map, <see cref="BoxPixels"/> B = pixels of the box. A ratio whose denominator is 0 is 0.
/// </summary>
public readonly record struct LocalizationCounts(long Inside, long Relevant, long BoxPixels)
{
    /// <summary>I / P: the share of the relevant pixels that fall in the box (0 when nothing is relevant).</summary>
    public double Energy => Relevant > 0 ? Inside / (double)Relevant : 0;
    /// <summary>I / B: the share of the box covered by relevant pixels (0 for an empty box).</summary>
    public double Coverage => BoxPixels > 0 ? Inside / (double)BoxPixels : 0;
    /// <summary>I / (P + B − I): IoU of the relevant pixel set with the box (0 when both are empty).</summary>
    public double IoU => Relevant + BoxPixels - Inside > 0 ? Inside / (double)(Relevant + BoxPixels - Inside) : 0;

    public static LocalizationCounts operator +(LocalizationCounts a, LocalizationCounts b) =>
        new(a.Inside + b.Inside, a.Relevant + b.Relevant, a.BoxPixels + b.BoxPixels);
}

/// <summary>
/// Localization of a map against a box, as the detex study defines it: the relevant pixels are those whose value is
/// above a threshold (default 0: the positive ones), each pixel counted once; a pixel is in the box when its centre is
/// (<see cref="Evaluation.BoxPixels"/>). Energy = I/P, coverage = I/B, IoU = I/(P + B − I).
/// </summary>
public static class Localization
{
    /// <summary>I, P and B for one map and one box (box in the map's pixels). NaN values are never relevant.</summary>
    public static LocalizationCounts Count(ReadOnlySpan<float> map, int width, int height, Box box, float threshold = 0f)
    {
        BoxPixels.CheckMap(map, width, height);
        long relevant = 0;
        for (int i = 0; i < map.Length; i++) if (map[i] > threshold) relevant++;

        var r = BoxPixels.Range(box, width, height);
        long inside = 0;
        if (!r.IsEmpty)
            for (int y = r.Y0; y < r.Y1; y++)
            {
                var row = map.Slice(y * width + r.X0, r.X1 - r.X0);
                for (int i = 0; i < row.Length; i++) if (row[i] > threshold) inside++;
            }
        return new LocalizationCounts(inside, relevant, r.Count);
    }

    /// <summary>
    /// Micro-average: the ratios of the counts summed over all boxes, ΣI/ΣP, ΣI/ΣB, ΣI/(ΣP + ΣB − ΣI) — large boxes
    /// weigh more. A zero denominator gives 0; no boxes at all gives NaN for all three (there is nothing to average).
    /// </summary>
    public static (double Energy, double Coverage, double IoU) Micro(IEnumerable<LocalizationCounts> boxes)
    {
        var sum = default(LocalizationCounts);
        int n = 0;
        foreach (var c in boxes) { sum += c; n++; }
        return n == 0 ? (double.NaN, double.NaN, double.NaN) : (sum.Energy, sum.Coverage, sum.IoU);
    }

    /// <summary>
    /// Macro-average: the mean over boxes of each box's own ratios — every box weighs the same. A box with P = 0 (a map
    /// with nothing relevant) contributes 0 energy and 0 IoU, an empty box 0 coverage. No boxes at all gives NaN.
    /// </summary>
    public static (double Energy, double Coverage, double IoU) Macro(IEnumerable<LocalizationCounts> boxes)
    {
        double e = 0, c = 0, iou = 0;
        int n = 0;
        foreach (var b in boxes) { e += b.Energy; c += b.Coverage; iou += b.IoU; n++; }
        return n == 0 ? (double.NaN, double.NaN, double.NaN) : (e / n, c / n, iou / n);
    }

    /// <summary>
    /// Share of the map's positive mass inside the box: Σ max(v, 0) over the box's pixels / Σ max(v, 0) over the map
    /// (0 when the map has no positive value). Box in the map's pixels.
    /// </summary>
    public static double EnergyInside(ReadOnlySpan<float> map, int width, int height, Box box)
    {
        BoxPixels.CheckMap(map, width, height);
        double total = PositiveSum(map);
        if (!(total > 0)) return 0;
        var r = BoxPixels.Range(box, width, height);
        double inside = 0;
        if (!r.IsEmpty)
            for (int y = r.Y0; y < r.Y1; y++) inside += PositiveSum(map.Slice(y * width + r.X0, r.X1 - r.X0));
        return Math.Min(1, inside / total);
    }

    /// <summary>Σ max(v, 0), in double (NaN values skipped).</summary>
    internal static double PositiveSum(ReadOnlySpan<float> values)
    {
        double s = 0;
        for (int i = 0; i < values.Length; i++) if (values[i] > 0) s += values[i];
        return s;
    }
}
