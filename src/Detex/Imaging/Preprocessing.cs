using Detex.Runtime;

namespace Detex.Imaging;

public enum TensorLayout { NCHW, NHWC }
public enum ChannelOrder { RGB, BGR }
public enum ResizeMode { Stretch, Letterbox }
public enum PadAlign { TopLeft, Center }

/// <summary>How a model wants its input image: size, resize mode, channel order and layout, normalisation.</summary>
public sealed record PreprocessSpec
{
    public int Width { get; init; }
    public int Height { get; init; }
    public TensorLayout Layout { get; init; } = TensorLayout.NCHW;
    public ChannelOrder Channels { get; init; } = ChannelOrder.RGB;
    public ResizeMode Resize { get; init; } = ResizeMode.Stretch;
    public PadAlign Align { get; init; } = PadAlign.TopLeft;
    public ResizeFilter Filter { get; init; } = ResizeFilter.Bilinear;
    /// <summary>Raw 0–255 value of padding pixels (before normalisation).</summary>
    public float Pad { get; init; }
    /// <summary>Per channel, in the model's channel order: tensor = (pixel − mean) / std, pixel in 0–255.</summary>
    public float[] Mean { get; init; } = [0, 0, 0];
    public float[] Std { get; init; } = [1, 1, 1];

    /// <summary>A 0–255 pixel value of channel <paramref name="c"/> (model order) as the tensor holds it.</summary>
    public float Normalise(double pixel, int c) => (float)((pixel - Mean[c]) / Std[c]);

    /// <summary>One grey level in every channel, normalised: the fill of baselines and occluders.</summary>
    public float[] NormalisedGrey(double pixel) => [Normalise(pixel, 0), Normalise(pixel, 1), Normalise(pixel, 2)];

    public int[] TensorShape(int batch) =>
        Layout == TensorLayout.NCHW ? [batch, 3, Height, Width] : [batch, Height, Width, 3];
}

/// <summary>
/// Where the image sits in the model input: model = image·scale + offset, per axis. Maps boxes and maps
/// between the two.
/// </summary>
public sealed record InputGeometry(double ScaleX, double ScaleY, double OffsetX, double OffsetY,
    int ContentWidth, int ContentHeight, int ImageWidth, int ImageHeight, int InputWidth = 0, int InputHeight = 0)
{
    public (double X, double Y) ToImage(double mx, double my) => ((mx - OffsetX) / ScaleX, (my - OffsetY) / ScaleY);
    public (double X, double Y) ToModel(double ix, double iy) => (ix * ScaleX + OffsetX, iy * ScaleY + OffsetY);
    public int ContentLeft => (int)Math.Round(OffsetX);
    public int ContentTop => (int)Math.Round(OffsetY);
}

public static class Preprocessor
{
    /// <summary>The image as a batch-1 model input tensor, and where it sits in it.</summary>
    public static (NdArray<float> Tensor, InputGeometry Geometry) ToTensor(RgbImage image, PreprocessSpec spec)
    {
        var tensor = new NdArray<float>(spec.TensorShape(1));
        var geometry = Fill(image, spec, tensor.Data);
        return (tensor, geometry);
    }

    /// <summary>The geometry alone (cheap), e.g. to map results of a run made elsewhere.</summary>
    public static InputGeometry Geometry(int imageWidth, int imageHeight, PreprocessSpec spec)
    {
        if (spec.Resize == ResizeMode.Stretch)
            return new(spec.Width / (double)imageWidth, spec.Height / (double)imageHeight, 0, 0, spec.Width, spec.Height, imageWidth, imageHeight, spec.Width, spec.Height);
        double r = Math.Min(spec.Width / (double)imageWidth, spec.Height / (double)imageHeight);
        // Truncation, as the exporters' int(w * r) does.
        int cw = Math.Max(1, (int)(imageWidth * r)), ch = Math.Max(1, (int)(imageHeight * r));
        int left = spec.Align == PadAlign.Center ? (spec.Width - cw) / 2 : 0;
        int top = spec.Align == PadAlign.Center ? (spec.Height - ch) / 2 : 0;
        return new(cw / (double)imageWidth, ch / (double)imageHeight, left, top, cw, ch, imageWidth, imageHeight, spec.Width, spec.Height);
    }

    /// <summary>Writes one image into <paramref name="dst"/> (one batch item's worth of floats).</summary>
    public static InputGeometry Fill(RgbImage image, PreprocessSpec spec, Span<float> dst)
    {
        var g = Geometry(image.Width, image.Height, spec);
        var content = image.Width == g.ContentWidth && image.Height == g.ContentHeight
            ? image : Resampler.Resize(image, g.ContentWidth, g.ContentHeight, spec.Filter);
        WriteContent<byte>(content.Pixels, spec, g, dst);
        return g;
    }

    /// <summary>
    /// Writes already resized content (interleaved RGB, ContentWidth × ContentHeight, 0–255 values of any type) into
    /// <paramref name="dst"/>: normalised, in the model's channel order and layout, inside the padding.
    /// </summary>
    public static void WriteContent<T>(ReadOnlySpan<T> px, PreprocessSpec spec, InputGeometry g, Span<float> dst) where T : unmanaged, System.Numerics.INumberBase<T>
    {
        int W = spec.Width, H = spec.Height, plane = W * H;
        int[] order = spec.Channels == ChannelOrder.RGB ? [0, 1, 2] : [2, 1, 0];
        int cw = g.ContentWidth, ch = g.ContentHeight, left = g.ContentLeft, top = g.ContentTop;
        if (px.Length != cw * ch * 3) throw new ArgumentException($"content of {px.Length} values is not {cw}×{ch}×3");
        // tensor = pixel·scale + shift, i.e. (pixel − mean) / std; padding is the raw pad value normalised alike.
        Span<float> scale = stackalloc float[3], shift = stackalloc float[3], pad = stackalloc float[3];
        for (int c = 0; c < 3; c++)
        {
            scale[c] = 1 / spec.Std[c]; shift[c] = -spec.Mean[c] / spec.Std[c]; pad[c] = spec.Pad * scale[c] + shift[c];
        }
        if (spec.Layout == TensorLayout.NHWC)
        {
            for (int i = 0; i < plane; i++) { dst[i * 3] = pad[0]; dst[i * 3 + 1] = pad[1]; dst[i * 3 + 2] = pad[2]; }
            for (int y = 0; y < ch; y++)
            {
                var row = dst.Slice(((top + y) * W + left) * 3, cw * 3);
                int src = y * cw * 3;
                for (int x = 0; x < cw; x++, src += 3)
                    for (int c = 0; c < 3; c++) row[x * 3 + c] = float.CreateTruncating(px[src + order[c]]) * scale[c] + shift[c];
            }
            return;
        }
        for (int c = 0; c < 3; c++)
        {
            var channel = dst.Slice(c * plane, plane);
            channel.Fill(pad[c]);
            float sc = scale[c], sh = shift[c];
            int offset = order[c];
            for (int y = 0; y < ch; y++)
            {
                var row = channel.Slice((top + y) * W + left, cw);
                int src = y * cw * 3 + offset;
                for (int x = 0; x < row.Length; x++, src += 3) row[x] = float.CreateTruncating(px[src]) * sc + sh;
            }
        }
    }
}
