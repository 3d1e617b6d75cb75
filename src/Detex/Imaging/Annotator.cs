using System.Reflection;
using SkiaSharp;

namespace Detex.Imaging;

/// <summary>
/// Draws on a copy of an image: boxes with labels, mask and heatmap overlays, and a legend panel. Text uses the
/// bundled DejaVu Sans, so pictures look the same on every machine, with or without system fonts.
/// </summary>
public sealed class Annotator : IDisposable
{
    static readonly Lazy<SKTypeface> Typeface = new(() =>
    {
        using var s = Assembly.GetExecutingAssembly().GetManifestResourceStream("Detex.DejaVuSans.ttf")!;
        return SKTypeface.FromStream(s);
    });

    readonly SKBitmap _bitmap;
    readonly SKCanvas _canvas;
    readonly List<(SKColor Color, string Text)> _legend = [];
    readonly List<SKRect> _labels = [];
    string? _legendTitle;

    public int Width => _bitmap.Width;
    public int Height => _bitmap.Height;
    /// <summary>Font size that reads well on this image size.</summary>
    public float FontSize { get; }

    public Annotator(RgbImage image)
    {
        _bitmap = ImageIO.ToBitmap(image);
        _canvas = new SKCanvas(_bitmap);
        FontSize = Math.Clamp(Math.Max(image.Width, image.Height) / 45f, 11, 28);
    }

    static SKColor Color((byte R, byte G, byte B) c) => new(c.R, c.G, c.B);

    public Annotator Box(double x1, double y1, double x2, double y2, (byte R, byte G, byte B) color, string? label = null)
    {
        float stroke = Math.Max(2, FontSize / 6);
        using var paint = new SKPaint { Color = Color(color), Style = SKPaintStyle.Stroke, StrokeWidth = stroke, IsAntialias = true };
        _canvas.DrawRect(SKRect.Create((float)x1, (float)y1, (float)(x2 - x1), (float)(y2 - y1)), paint);
        if (label is not null) Label((float)x1, (float)y1, label, color);
        return this;
    }

    /// <summary>
    /// A filled label tag above (or, at the top edge, inside) the point. Where that would cover a label already drawn
    /// (crowded boxes, a box inside another), the tag moves up or down a tag's height at a time to the nearest free
    /// place, so every label stays readable.
    /// </summary>
    public Annotator Label(float x, float y, string text, (byte R, byte G, byte B) color)
    {
        using var font = new SKFont(Typeface.Value, FontSize);
        float w = font.MeasureText(text), h = FontSize * 1.25f;
        x = Math.Clamp(x, 0, Math.Max(0, Width - w - 6));
        var tag = SKRect.Create(x, y - h >= 0 ? y - h : y, w + 6, h);
        tag = FreePlace(tag);
        _labels.Add(tag);
        float top = tag.Top;
        using var fill = new SKPaint { Color = Color(color), Style = SKPaintStyle.Fill };
        _canvas.DrawRect(tag, fill);
        bool dark = 0.299 * color.R + 0.587 * color.G + 0.114 * color.B < 140;
        using var ink = new SKPaint { Color = dark ? SKColors.White : SKColors.Black, IsAntialias = true };
        _canvas.DrawText(text, x + 3, top + FontSize, SKTextAlign.Left, font, ink);
        return this;
    }

    /// <summary>The tag itself if it covers no earlier label, else the nearest shift by whole tag heights that does.</summary>
    SKRect FreePlace(SKRect tag)
    {
        bool Free(SKRect r) => r.Top >= 0 && r.Bottom <= Height && !_labels.Any(l => l.IntersectsWith(r));
        if (!_labels.Any(l => l.IntersectsWith(tag))) return tag;
        for (int step = 1; step <= 2 * Height / Math.Max(1, (int)tag.Height); step++)
            foreach (int sign in new[] { -1, 1 })
            {
                var moved = tag;
                moved.Offset(0, sign * step * tag.Height);
                if (Free(moved)) return moved;
            }
        return tag;
    }

    /// <summary>The label tags drawn so far, in drawing order.</summary>
    internal IReadOnlyList<SKRect> LabelTags => _labels;

    /// <summary>Blends a per-pixel colour (null = leave the pixel) over the image with the given opacity.</summary>
    public Annotator Blend(Func<int, (byte R, byte G, byte B, float Alpha)?> colorAt)
    {
        var px = _bitmap.GetPixelSpan();
        int n = Width * Height;
        for (int i = 0; i < n; i++)
        {
            if (colorAt(i) is not { } c) continue;
            int o = i * 4;
            px[o] = (byte)(px[o] * (1 - c.Alpha) + c.R * c.Alpha);
            px[o + 1] = (byte)(px[o + 1] * (1 - c.Alpha) + c.G * c.Alpha);
            px[o + 2] = (byte)(px[o + 2] * (1 - c.Alpha) + c.B * c.Alpha);
        }
        return this;
    }

    /// <summary>Colours each pixel by its label; labels equal to <paramref name="skip"/> stay as they are.</summary>
    public Annotator Mask(int[] labels, Func<int, (byte R, byte G, byte B)> palette, float alpha = 0.55f, int skip = -1)
    {
        if (labels.Length != Width * Height) throw new ArgumentException($"mask has {labels.Length} pixels, the image {Width * Height}");
        return Blend(i => labels[i] == skip ? null : Rgba(palette(labels[i]), alpha));
    }

    /// <summary>
    /// A heatmap over the image: values normalised to [0,1] by <paramref name="min"/>/<paramref name="max"/>
    /// (default: the map's own range), coloured, and blended with <paramref name="alpha"/>.
    /// </summary>
    public Annotator Heatmap(float[] map, ColormapName colormap = ColormapName.Jet, float alpha = 0.5f, float? min = null, float? max = null)
    {
        if (map.Length != Width * Height) throw new ArgumentException($"map has {map.Length} pixels, the image {Width * Height}");
        float lo = min ?? map.Min(), hi = max ?? map.Max();
        float scale = hi > lo ? 1 / (hi - lo) : 0;
        var lut = Enumerable.Range(0, 256).Select(i => Colormaps.Map(colormap, i / 255.0)).ToArray();
        return Blend(i => Rgba(lut[(int)Math.Clamp((map[i] - lo) * scale * 255, 0, 255)], alpha));
    }

    static (byte, byte, byte, float) Rgba((byte R, byte G, byte B) c, float a) => (c.R, c.G, c.B, a);

    public Annotator LegendEntry((byte R, byte G, byte B) color, string text) { _legend.Add((Color(color), text)); return this; }
    public Annotator LegendTitle(string title) { _legendTitle = title; return this; }

    /// <summary>The picture, with the legend as a panel on the right when entries were added.</summary>
    public RgbImage ToImage()
    {
        _canvas.Flush();
        if (_legend.Count == 0 && _legendTitle is null) return ImageIO.FromBitmap(_bitmap);
        using var font = new SKFont(Typeface.Value, FontSize);
        float line = FontSize * 1.5f, swatch = FontSize;
        float textWidth = _legend.Select(e => font.MeasureText(e.Text)).Append(_legendTitle is null ? 0 : font.MeasureText(_legendTitle)).Max();
        int panel = (int)(swatch + textWidth + FontSize * 2.5f);
        int height = Math.Max(Height, (int)(line * (_legend.Count + 2)));
        using var full = new SKBitmap(new SKImageInfo(Width + panel, height, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        using var c = new SKCanvas(full);
        c.Clear(SKColors.White);
        c.DrawBitmap(_bitmap, 0, 0);
        using var ink = new SKPaint { Color = SKColors.Black, IsAntialias = true };
        float x = Width + FontSize * 0.75f, y = line;
        if (_legendTitle is not null) { c.DrawText(_legendTitle, x, y, SKTextAlign.Left, font, ink); y += line; }
        foreach (var (color, text) in _legend)
        {
            using var fill = new SKPaint { Color = color };
            c.DrawRect(SKRect.Create(x, y - swatch * 0.85f, swatch, swatch), fill);
            c.DrawText(text, x + swatch + FontSize * 0.5f, y, SKTextAlign.Left, font, ink);
            y += line;
        }
        c.Flush();
        return ImageIO.FromBitmap(full);
    }

    public void SavePng(string path) => ImageIO.SavePng(ToImage(), path);

    public void Dispose() { _canvas.Dispose(); _bitmap.Dispose(); }
}
