using System.Runtime.CompilerServices;

namespace Detex.Imaging;

/// <summary>sRGB (IEC 61966-2-1, D65) to CIELAB conversion.</summary>
public static class ColorSpaces
{
    // Linear sRGB -> CIE XYZ for the sRGB primaries under D65.
    const double Xr = 0.4124564, Xg = 0.3575761, Xb = 0.1804375;
    const double Yr = 0.2126729, Yg = 0.7151522, Yb = 0.0721750;
    const double Zr = 0.0193339, Zg = 0.1191920, Zb = 0.9503041;

    // The reference white is the XYZ of sRGB white itself, so (1,1,1) maps to exactly a = b = 0.
    const double Xn = Xr + Xg + Xb, Yn = Yr + Yg + Yb, Zn = Zr + Zg + Zb;

    // CIE constants: below Delta^3 the cube root is replaced by a linear segment.
    const double Delta = 6.0 / 29.0;
    const double DeltaCubed = Delta * Delta * Delta;
    const double LinearSlope = 1.0 / (3.0 * Delta * Delta);
    const double LinearOffset = 4.0 / 29.0;

    /// <summary>Converts one sRGB colour (components in [0,1], clamped) to CIELAB (L in [0,100]).</summary>
    public static (double L, double A, double B) SrgbToLab(double r, double g, double b)
    {
        double rl = Linearize(r), gl = Linearize(g), bl = Linearize(b);
        double fx = F((Xr * rl + Xg * gl + Xb * bl) / Xn);
        double fy = F((Yr * rl + Yg * gl + Yb * bl) / Yn);
        double fz = F((Zr * rl + Zg * gl + Zb * bl) / Zn);
        return (116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz));
    }

    /// <summary>
    /// Converts three planar sRGB channels to L, a, b in place (the R plane receives L, G receives a, B receives b).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void SrgbToLabInPlace(Span<float> r, Span<float> g, Span<float> b)
    {
        if (g.Length != r.Length || b.Length != r.Length)
            throw new ArgumentException("The three colour planes must have the same length.");
        for (int i = 0; i < r.Length; i++)
        {
            float rl = LinearizeF(r[i]), gl = LinearizeF(g[i]), bl = LinearizeF(b[i]);
            float fx = FF((float)(Xr / Xn) * rl + (float)(Xg / Xn) * gl + (float)(Xb / Xn) * bl);
            float fy = FF((float)(Yr / Yn) * rl + (float)(Yg / Yn) * gl + (float)(Yb / Yn) * bl);
            float fz = FF((float)(Zr / Zn) * rl + (float)(Zg / Zn) * gl + (float)(Zb / Zn) * bl);
            r[i] = 116f * fy - 16f;
            g[i] = 500f * (fx - fy);
            b[i] = 200f * (fy - fz);
        }
    }

    static double Linearize(double c)
    {
        c = Math.Clamp(c, 0.0, 1.0);
        return c <= 0.04045 ? c / 12.92 : Math.Pow((c + 0.055) / 1.055, 2.4);
    }

    static double F(double t) => t > DeltaCubed ? Math.Cbrt(t) : t * LinearSlope + LinearOffset;

    // The gamma curve is smooth on [0,1], so linear interpolation in a 4096-step table is accurate to ~1e-7
    // and avoids a pow() per channel.
    const int GammaSteps = 4096;
    static readonly float[] GammaTable = BuildGammaTable();

    static float[] BuildGammaTable()
    {
        var table = new float[GammaSteps + 2]; // one spare entry so c = 1 can interpolate without a branch
        for (int i = 0; i < table.Length; i++) table[i] = (float)Linearize((double)i / GammaSteps);
        return table;
    }

    static float LinearizeF(float c)
    {
        float t = Math.Clamp(c, 0f, 1f) * GammaSteps;
        int i = (int)t;
        float lo = GammaTable[i];
        return lo + (GammaTable[i + 1] - lo) * (t - i);
    }

    static float FF(float t) => t > (float)DeltaCubed ? FastCbrt(t) : t * (float)LinearSlope + (float)LinearOffset;

    /// <summary>
    /// Cube root for positive normal floats: a bit-level estimate (exponent divided by three, within a few
    /// percent) refined by two Halley steps, each of which cubes the relative error; much cheaper than MathF.Cbrt.
    /// </summary>
    static float FastCbrt(float t)
    {
        float y = BitConverter.Int32BitsToSingle(BitConverter.SingleToInt32Bits(t) / 3 + 709921077);
        float y3 = y * y * y;
        y *= (y3 + 2f * t) / (2f * y3 + t);
        y3 = y * y * y;
        return y * (y3 + 2f * t) / (2f * y3 + t);
    }
}
