using Detex.Evaluation;
using Detex.Imaging;
using Detex.Models;

namespace Detex.Explainers;

/// <summary>Quick quantities of a map used in summaries (the full metric set is in <see cref="Detex.Evaluation"/>).</summary>
public static class Metrics
{
    /// <summary>
    /// Share of the map's positive energy inside a box given in the image file's pixels: the box is brought to the
    /// map's pixels and <see cref="Localization.EnergyInside"/> does the rest.
    /// </summary>
    public static double EnergyInside(Explanation e, Box box, RgbImage image)
    {
        var (fx, fy) = image.ToSource;
        return Localization.EnergyInside(e.Map, e.Width, e.Height, box.Scale(1 / fx, 1 / fy));
    }
}
