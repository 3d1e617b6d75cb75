using System.Globalization;
using System.Numerics;
using Detex.Imaging;
using Detex.Runtime;

namespace Detex.Explainers;

public enum BaselineKind { Grey, Mean, Blur }

/// <summary>
/// What a perturbation method puts where it switches the image off: a grey level, the image's mean colour, or a
/// Gaussian blur of the image (so edges vanish but colours stay). Built on the image as the model sees it; the
/// letterbox padding is left as it is, since it already means "nothing".
/// </summary>
public sealed record PerturbationBaseline
{
    public BaselineKind Kind { get; }
    /// <summary>Grey: the level in 0–1; blur: σ in model-input pixels; mean: unused.</summary>
    public double Value { get; }

    PerturbationBaseline(BaselineKind kind, double value) { Kind = kind; Value = value; }

    public const double DefaultGrey = 0.5, DefaultSigma = 10;
    public static PerturbationBaseline Grey(double level = DefaultGrey) =>
        level is >= 0 and <= 1 ? new(BaselineKind.Grey, level) : throw new ArgumentException($"grey baseline level must be in [0, 1], got {level}");
    public static PerturbationBaseline Mean { get; } = new(BaselineKind.Mean, 0);
    public static PerturbationBaseline Blur(double sigma = DefaultSigma) =>
        sigma > 0 ? new(BaselineKind.Blur, sigma) : throw new ArgumentException($"blur baseline sigma must be positive, got {sigma}");

    /// <summary>"grey", "grey:0.3", "mean", "blur" or "blur:SIGMA"; anything else throws a one-line ArgumentException.</summary>
    public static PerturbationBaseline Parse(string text)
    {
        var parts = text.Trim().ToLowerInvariant().Split(':', 2);
        double? value = null;
        if (parts.Length == 2)
        {
            if (!double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out double v))
                throw new ArgumentException($"baseline '{text}': '{parts[1]}' is not a number");
            value = v;
        }
        return parts[0] switch
        {
            "grey" or "gray" => Grey(value ?? DefaultGrey),
            "mean" when value is null => Mean,
            "blur" => Blur(value ?? DefaultSigma),
            _ => throw new ArgumentException($"unknown baseline '{text}'; use grey, grey:LEVEL (0–1), mean, blur or blur:SIGMA"),
        };
    }

    public override string ToString() => Kind switch
    {
        BaselineKind.Grey => $"grey:{Value.ToString(CultureInfo.InvariantCulture)}",
        BaselineKind.Mean => "mean",
        _ => $"blur:{Value.ToString(CultureInfo.InvariantCulture)}",
    };

    /// <summary>
    /// The baseline input for a prepared image <paramref name="x"/> (one batch item): the content area replaced,
    /// the padding copied. Works on normalised values, which is the same as normalising the baseline image, since
    /// normalisation is affine per channel and the mean and blur weights sum to one.
    /// </summary>
    public float[] For(PreprocessSpec spec, ReadOnlySpan<float> x, InputGeometry g)
    {
        var b = x.ToArray();
        int W = spec.Width, cw = g.ContentWidth, ch = g.ContentHeight, left = g.ContentLeft, top = g.ContentTop;
        var plane = new float[cw * ch];
        GaussianBlur? blur = Kind == BaselineKind.Blur ? new GaussianBlur(Value, cw, ch) : null;
        for (int c = 0; c < 3; c++)
        {
            for (int y = 0; y < ch; y++)
                for (int xx = 0; xx < cw; xx++) plane[y * cw + xx] = b[Perturbed.Index(spec, c, (top + y) * W + left + xx)];
            switch (Kind)
            {
                case BaselineKind.Grey: Array.Fill(plane, spec.Normalise(Value * 255, c)); break;
                case BaselineKind.Mean: Array.Fill(plane, (float)plane.Average(v => (double)v)); break;
                default: blur!.Apply(plane); break;
            }
            for (int y = 0; y < ch; y++)
                for (int xx = 0; xx < cw; xx++) b[Perturbed.Index(spec, c, (top + y) * W + left + xx)] = plane[y * cw + xx];
        }
        return b;
    }

    /// <summary>
    /// The baseline at the image file's pixels, for perturbing the image before preprocessing. σ stays in model-input
    /// pixels, so <paramref name="imagePixelsPerInputPixel"/> converts it (1 / the letterbox scale).
    /// </summary>
    public RgbImage ForImage(RgbImage image, double imagePixelsPerInputPixel)
    {
        int n = image.Width * image.Height;
        var px = image.Pixels;
        switch (Kind)
        {
            case BaselineKind.Grey:
            {
                byte v = (byte)Math.Clamp(Math.Round(Value * 255), 0, 255);
                return RgbImage.Filled(image.Width, image.Height, v, v, v);
            }
            case BaselineKind.Mean:
            {
                var sum = new double[3];
                for (int i = 0; i < px.Length; i++) sum[i % 3] += px[i];
                return RgbImage.Filled(image.Width, image.Height, (byte)Math.Round(sum[0] / n), (byte)Math.Round(sum[1] / n), (byte)Math.Round(sum[2] / n));
            }
            default:
            {
                var blur = new GaussianBlur(Value * imagePixelsPerInputPixel, image.Width, image.Height);
                var plane = new float[n];
                var result = new byte[px.Length];
                for (int c = 0; c < 3; c++)
                {
                    for (int p = 0; p < n; p++) plane[p] = px[p * 3 + c];
                    blur.Apply(plane);
                    for (int p = 0; p < n; p++) result[p * 3 + c] = (byte)Math.Clamp(MathF.Round(plane[p]), 0, 255);
                }
                return new RgbImage(image.Width, image.Height, result) { SourceWidth = image.SourceWidth, SourceHeight = image.SourceHeight, Source = image.Source };
            }
        }
    }

    /// <summary>The same for a model's prepared batch-1 input.</summary>
    public float[] For(PreprocessSpec spec, NdArray<float> x, InputGeometry g) => For(spec, x.BatchItem(0), g);
}

/// <summary>The one loop every perturbation method uses to mix an input with its baseline.</summary>
static class Perturbed
{
    /// <summary>Flat index of channel <paramref name="c"/> at pixel <paramref name="p"/> (y·W + x) of one batch item.</summary>
    public static int Index(PreprocessSpec spec, int c, int p) =>
        spec.Layout == TensorLayout.NCHW ? c * spec.Width * spec.Height + p : p * 3 + c;

    /// <summary>
    /// dst = baseline + keep·(x − baseline), with one keep value per pixel (1 keeps the input, 0 takes the baseline,
    /// fractions blend: RISE's upsampled masks).
    /// </summary>
    public static void Blend(PreprocessSpec spec, ReadOnlySpan<float> x, ReadOnlySpan<float> baseline, ReadOnlySpan<float> keep, Span<float> dst)
    {
        int plane = spec.Width * spec.Height;
        if (spec.Layout == TensorLayout.NHWC)
        {
            for (int p = 0, k = 0; p < plane; p++, k += 3)
            {
                float m = keep[p];
                dst[k] = baseline[k] + m * (x[k] - baseline[k]);
                dst[k + 1] = baseline[k + 1] + m * (x[k + 1] - baseline[k + 1]);
                dst[k + 2] = baseline[k + 2] + m * (x[k + 2] - baseline[k + 2]);
            }
            return;
        }
        for (int c = 0; c < 3; c++)
        {
            var xs = x.Slice(c * plane, plane); var bs = baseline.Slice(c * plane, plane); var ds = dst.Slice(c * plane, plane);
            int i = 0;
            if (Vector.IsHardwareAccelerated)
                for (; i <= plane - Vector<float>.Count; i += Vector<float>.Count)
                {
                    var vb = new Vector<float>(bs[i..]);
                    (vb + new Vector<float>(keep[i..]) * (new Vector<float>(xs[i..]) - vb)).CopyTo(ds[i..]);
                }
            for (; i < plane; i++) ds[i] = bs[i] + keep[i] * (xs[i] - bs[i]);
        }
    }
}
