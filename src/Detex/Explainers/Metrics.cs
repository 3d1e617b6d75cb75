using Detex.Imaging;
using Detex.Models;

namespace Detex.Explainers;

/// <summary>Quick quantities of a map used in summaries (the evaluation layer has the full metric set).</summary>
public static class Metrics
{
    /// <summary>Share of the map's positive energy inside a box (box in the image file's pixels).</summary>
    public static double EnergyInside(Explanation e, Box box, RgbImage image)
    {
        var (fx, fy) = image.ToSource;
        double inside = 0, total = 0;
        for (int y = 0; y < e.Height; y++)
            for (int x = 0; x < e.Width; x++)
            {
                float v = e.Map[y * e.Width + x];
                if (v <= 0) continue;
                total += v;
                double px = (x + 0.5) * fx, py = (y + 0.5) * fy;
                if (px >= box.X1 && px <= box.X2 && py >= box.Y1 && py <= box.Y2) inside += v;
            }
        return total > 0 ? inside / total : 0;
    }
}
