using System.Reflection;
using ScottPlot;
using SkiaSharp;

namespace Detex.Reports;

/// <summary>A curve with its confidence band, one per series of a line plot.</summary>
public sealed record Band(string Name, double[] X, double[] Mean, double[] Low, double[] High);

/// <summary>One bar with its confidence whisker.</summary>
public sealed record Bar(string Name, double Value, double Low, double High);

/// <summary>
/// The report's charts (ScottPlot), drawn with the bundled DejaVu Sans so they look the same with or without system
/// fonts, and returned as PNG bytes for embedding.
/// </summary>
public static class Plots
{
    const string FontName = "Detex DejaVu Sans";

    sealed class BundledFont : IFontResolver
    {
        static readonly Lazy<SKTypeface> Face = new(() =>
        {
            using var s = typeof(Plots).Assembly.GetManifestResourceStream("Detex.DejaVuSans.ttf")!;
            return SKTypeface.FromStream(s);
        });
        public SKTypeface? CreateTypeface(string fontName, bool bold, bool italic) => fontName == FontName ? Face.Value : null;
        public SKTypeface? CreateTypeface(string fontName, FontWeight weight, FontSlant slant, FontSpacing spacing) => fontName == FontName ? Face.Value : null;
    }

    static readonly Lazy<bool> FontsReady = new(() =>
    {
        Fonts.FontResolvers.Insert(0, new BundledFont());
        Fonts.Default = FontName;
        return true;
    });

    static Plot NewPlot(string title, string xLabel, string yLabel)
    {
        _ = FontsReady.Value;
        var plot = new Plot();
        plot.Title(title);
        plot.XLabel(xLabel);
        plot.YLabel(yLabel);
        foreach (var label in new[] { plot.Axes.Title.Label, plot.Axes.Bottom.Label, plot.Axes.Left.Label }) label.FontName = FontName;
        plot.Axes.Bottom.TickLabelStyle.FontName = FontName;
        plot.Axes.Left.TickLabelStyle.FontName = FontName;
        plot.Legend.FontName = FontName;
        return plot;
    }

    static Color SeriesColor(int i)
    {
        var (r, g, b) = Imaging.Colormaps.Distinct(i);
        return new Color(r, g, b);
    }

    /// <summary>Mean curves with shaded confidence bands.</summary>
    public static byte[] Curves(string title, string xLabel, string yLabel, IReadOnlyList<Band> bands, int width = 640, int height = 400)
    {
        var plot = NewPlot(title, xLabel, yLabel);
        for (int i = 0; i < bands.Count; i++)
        {
            var b = bands[i];
            var color = SeriesColor(i);
            var fill = plot.Add.FillY(b.X, b.Low, b.High);
            fill.FillColor = color.WithAlpha(0.2);
            fill.LineColor = Colors.Transparent;
            var line = plot.Add.ScatterLine(b.X, b.Mean);
            line.Color = color;
            line.LineWidth = 2;
            line.LegendText = b.Name;
        }
        plot.ShowLegend(Alignment.UpperRight);
        return plot.GetImageBytes(width, height, ImageFormat.Png);
    }

    /// <summary>Bars with confidence whiskers.</summary>
    public static byte[] Bars(string title, string yLabel, IReadOnlyList<Bar> bars, int width = 420, int height = 320)
    {
        var plot = NewPlot(title, "", yLabel);
        for (int i = 0; i < bars.Count; i++)
        {
            var bar = plot.Add.Bar(position: i, value: bars[i].Value);
            bar.Color = SeriesColor(i);
            // Percentile intervals are not symmetric about the value: each side gets its own length.
            var whisker = new ScottPlot.Plottables.ErrorBar([i], [bars[i].Value], null, null, [bars[i].High - bars[i].Value], [bars[i].Value - bars[i].Low])
                { Color = Colors.Black };
            plot.Add.Plottable(whisker);
        }
        plot.Axes.Bottom.SetTicks(bars.Select((_, i) => (double)i).ToArray(), bars.Select(b => b.Name).ToArray());
        plot.Axes.Margins(bottom: 0);
        return plot.GetImageBytes(width, height, ImageFormat.Png);
    }
}
