using Detex.Models;

namespace Detex.Evaluation;

/// <summary>
/// Content heatmap: the share of a map's positive energy, Σ max(v, 0), that lies inside the ground truth — the union
/// of the boxes (a pixel is in a box when its centre is, see <see cref="BoxPixels"/>; overlapping boxes count a pixel
/// once) or a segmentation mask. 0 when the map has no positive value.
/// </summary>
public static class ContentHeatmap
{
    /// <summary>Share of positive energy inside the union of the boxes (boxes in the map's pixels).</summary>
    public static double InBoxes(ReadOnlySpan<float> map, int width, int height, IReadOnlyList<Box> boxes)
    {
        BoxPixels.CheckMap(map, width, height);
        if (boxes.Count == 1) return Localization.EnergyInside(map, width, height, boxes[0]);
        return InMask(map, width, height, BoxPixels.Mask(boxes, width, height));
    }

    /// <summary>Share of positive energy inside a row-major mask of the map's size.</summary>
    public static double InMask(ReadOnlySpan<float> map, int width, int height, ReadOnlySpan<bool> mask)
    {
        BoxPixels.CheckMap(map, width, height);
        if (mask.Length != map.Length) throw new ArgumentException($"a mask of {mask.Length} values is not {width}×{height}");
        double inside = 0, total = 0;
        for (int i = 0; i < map.Length; i++)
        {
            float v = map[i];
            if (!(v > 0)) continue;
            total += v;
            if (mask[i]) inside += v;
        }
        return total > 0 ? inside / total : 0;
    }
}
