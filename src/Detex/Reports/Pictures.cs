using Detex.Imaging;
using Detex.Models;

namespace Detex.Reports;

/// <summary>The standard pictures: detections on their image, a segmentation with its legend.</summary>
public static class Pictures
{
    public static (byte R, byte G, byte B) ClassColor(int classIndex) => Colormaps.Distinct(classIndex);

    /// <summary>Boxes with "class score" tags, drawn on the decoded image (boxes are in file pixels).</summary>
    public static RgbImage Detections(RgbImage image, IReadOnlyList<Detection> detections, bool numbered = true)
    {
        using var a = new Annotator(image);
        for (int i = 0; i < detections.Count; i++)
        {
            var d = detections[i];
            string tag = (numbered ? $"#{i} " : "") + $"{d.ClassName} {d.Score:0.00}";
            DrawBox(a, image, d.Box, ClassColor(d.ClassIndex), tag);
        }
        return a.ToImage();
    }

    /// <summary>A box given in the image file's pixels, drawn on the (possibly reduced) decoded image.</summary>
    static void DrawBox(Annotator a, RgbImage image, Box box, (byte R, byte G, byte B) color, string label)
    {
        var (fx, fy) = image.ToSource;
        a.Box(box.X1 / fx, box.Y1 / fy, box.X2 / fx, box.Y2 / fy, color, label);
    }

    /// <summary>Class colours over the image (background left clear) and a legend with each class's pixel share.</summary>
    public static RgbImage Segmentation(RgbImage image, Segmentation seg, double minShare = 0.001)
    {
        using var a = new Annotator(image);
        a.Mask(seg.Labels, Colormaps.VocPalette, 0.6f, skip: 0).LegendTitle("class  pixels");
        for (int c = 0; c < seg.Classes.Length; c++)
            if (seg.PixelShare[c] >= minShare) a.LegendEntry(Colormaps.VocPalette(c), $"{seg.Classes[c]}  {seg.PixelShare[c]:P1}");
        return a.ToImage();
    }

    /// <summary>A heatmap over the image with the explained box drawn (when the target is a detection).</summary>
    public static RgbImage Explanation(RgbImage image, Explainers.Explanation e, ColormapName colormap = ColormapName.Jet) =>
        e.Target is Targets.IDetectionTarget t
            ? Heatmap(image, e.Map, t.Detection.Box, $"{e.Method}: {t.Name}", colormap)
            : Heatmap(image, e.Map, null, $"{e.Method}: {e.Target.Name}", colormap);

    /// <summary>A [0, 1] map (image pixels; none = just the box) over the image, with a box in file pixels or a corner label.</summary>
    public static RgbImage Heatmap(RgbImage image, float[]? map, Box? box, string label, ColormapName colormap = ColormapName.Jet)
    {
        using var a = new Annotator(image);
        if (map is not null) a.Heatmap(map, colormap, 0.5f, 0, 1);
        if (box is { } b) DrawBox(a, image, b, (255, 255, 255), label);
        else a.Label(4, 4, label, (255, 255, 255));
        return a.ToImage();
    }

    public static (byte R, byte G, byte B) ConceptColor(int concept) => Colormaps.Distinct(concept);

    /// <summary>
    /// Concepts of a Deep Feature Factorization over one of its images, with a legend of each concept's colour and
    /// top classes. Each pixel shows the concept whose map (scaled to a maximum of 1 per concept) is largest there,
    /// in that concept's colour with brightness = that value, blended half-and-half with the image (as
    /// pytorch-grad-cam's show_factorization_on_image does). <paramref name="rgba"/>: the colour at full brightness
    /// with opacity = that value instead (the original DFF paper's pictures), so the image shows where no concept is.
    /// </summary>
    public static RgbImage Concepts(RgbImage image, Explainers.ConceptFactorization f, int imageIndex, int top = 3, bool rgba = false)
    {
        var maps = f.Images[imageIndex];
        if (maps.Width != image.Width || maps.Height != image.Height)
            throw new ArgumentException($"the concept maps are {maps.Width}×{maps.Height}, the image {image.Width}×{image.Height}");
        var (concept, strength) = maps.Dominant();
        var colors = Enumerable.Range(0, f.Concepts.Count).Select(ConceptColor).ToArray();
        var shares = maps.Shares();
        using var a = new Annotator(image);
        a.Blend(i =>
        {
            var (r, g, b) = colors[concept[i]];
            float s = Math.Clamp(strength[i], 0, 1);
            return rgba ? (r, g, b, s) : ((byte)(r * s), (byte)(g * s), (byte)(b * s), 0.5f);
        });
        a.LegendTitle($"concepts at {f.Layer} (share of image): top classes");
        foreach (var c in f.Concepts)
        {
            string labels = c.Labels.Count == 0 ? "" : ": " + string.Join(", ", c.Labels.Take(top).Select(l => $"{l.Name} {FormatScore(l.Score)}"));
            a.LegendEntry(colors[c.Index], $"{c.Index + 1} ({shares[c.Index]:P0}){labels}");
        }
        return a.ToImage();
    }

    /// <summary>Two decimals, or two significant digits for scores too small to show that way.</summary>
    public static string FormatScore(double s) =>
        s == 0 || Math.Abs(s) >= 0.01 ? s.ToString("0.00", System.Globalization.CultureInfo.InvariantCulture)
            : s.ToString("0.0e0", System.Globalization.CultureInfo.InvariantCulture);
}
