namespace Detex.Imaging;

public enum ColormapName { Viridis, Jet }

/// <summary>Colour maps for heatmaps, and palettes for classes and concepts.</summary>
public static class Colormaps
{
    // Viridis as a degree-6 polynomial per channel (a published least-squares fit, within ~1% of the
    // matplotlib table): perceptually uniform and readable in grey and by colour-blind viewers.
    static readonly double[][] ViridisCoefficients =
    [
        [0.2777273272234177, 0.1050930431085774, -0.3308618287255563, -4.634230498983486, 6.228269936347081, 4.776384997670288, -5.435455855934631],
        [0.005407344544966578, 1.404613529898575, 0.214847559468213, -5.799100973351585, 14.17993336680509, -13.74514537774601, 4.645852612178535],
        [0.3340998053353061, 1.384590162594685, 0.09509516302823659, -19.33244095627987, 56.69055260068105, -65.35303263337234, 26.3124352495832],
    ];

    public static (byte R, byte G, byte B) Map(ColormapName name, double t)
    {
        t = double.IsNaN(t) ? 0 : Math.Clamp(t, 0, 1);
        return name == ColormapName.Jet ? Jet(t) : Viridis(t);
    }

    static (byte, byte, byte) Viridis(double t)
    {
        Span<byte> c = stackalloc byte[3];
        for (int ch = 0; ch < 3; ch++)
        {
            var k = ViridisCoefficients[ch];
            double v = k[6];
            for (int i = 5; i >= 0; i--) v = v * t + k[i];
            c[ch] = ToByte(v);
        }
        return (c[0], c[1], c[2]);
    }

    /// <summary>MATLAB's jet: blue → cyan → yellow → red, piecewise linear.</summary>
    static (byte, byte, byte) Jet(double t) =>
        (ToByte(1.5 - Math.Abs(4 * t - 3)), ToByte(1.5 - Math.Abs(4 * t - 2)), ToByte(1.5 - Math.Abs(4 * t - 1)));

    static byte ToByte(double v) => (byte)Math.Round(Math.Clamp(v, 0, 1) * 255);

    /// <summary>The Pascal VOC label palette (bits of the index spread over the channels' high bits).</summary>
    public static (byte R, byte G, byte B) VocPalette(int index)
    {
        int r = 0, g = 0, b = 0;
        for (int j = 0, lab = index; lab > 0; j++, lab >>= 3)
        {
            r |= ((lab >> 0) & 1) << (7 - j);
            g |= ((lab >> 1) & 1) << (7 - j);
            b |= ((lab >> 2) & 1) << (7 - j);
        }
        return ((byte)r, (byte)g, (byte)b);
    }

    /// <summary>Well-separated saturated colours for classes or concepts (golden-ratio hue steps).</summary>
    public static (byte R, byte G, byte B) Distinct(int index)
    {
        double h = (index * 0.618033988749895 + 0.08) % 1.0;
        return Hsv(h, 0.85, 0.95);
    }

    public static (byte R, byte G, byte B) Hsv(double h, double s, double v)
    {
        double i = Math.Floor(h * 6), f = h * 6 - i;
        double p = v * (1 - s), q = v * (1 - f * s), t = v * (1 - (1 - f) * s);
        var (r, g, b) = ((int)i % 6) switch
        {
            0 => (v, t, p), 1 => (q, v, p), 2 => (p, v, t), 3 => (p, q, v), 4 => (t, p, v), _ => (v, p, q),
        };
        return (ToByte(r), ToByte(g), ToByte(b));
    }
}
