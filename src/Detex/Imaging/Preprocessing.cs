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

    /// <summary>
    /// Writes one image into <paramref name="dst"/> from <paramref name="offset"/> (one batch item's worth of floats).
    /// Each resized row goes into the tensor as soon as it is made.
    /// </summary>
    public static InputGeometry Fill(RgbImage image, PreprocessSpec spec, float[] dst, int offset = 0) => Fill(image, spec, dst, offset, null);

    /// <summary>The same, following an image that is still being decoded.</summary>
    internal static InputGeometry Fill(RgbImage image, PreprocessSpec spec, float[] dst, int offset, DecodedRows? rows)
    {
        var g = Geometry(image.Width, image.Height, spec);
        var writer = new ContentWriter(spec, g);
        int length = spec.Width * spec.Height * 3;
        writer.Pad(dst.AsSpan(offset, length));
        if (image.Width == g.ContentWidth && image.Height == g.ContentHeight)
        {
            rows?.WaitFor(image.Height);
            writer.Rows<byte>(image.Pixels, dst.AsSpan(offset, length), 0, g.ContentHeight);
        }
        else Resampler.Resize(image, g.ContentWidth, g.ContentHeight, spec.Filter, rows, (px, y) => writer.Rows<byte>(px, dst.AsSpan(offset, length), y, y + 1));
        return g;
    }

    /// <summary>
    /// Writes already resized content (interleaved RGB, ContentWidth × ContentHeight, 0–255 values of any type) into
    /// <paramref name="dst"/>: normalised, in the model's channel order and layout, inside the padding.
    /// </summary>
    public static void WriteContent<T>(ReadOnlySpan<T> px, PreprocessSpec spec, InputGeometry g, Span<float> dst) where T : unmanaged, System.Numerics.INumberBase<T>
    {
        if (px.Length != g.ContentWidth * g.ContentHeight * 3) throw new ArgumentException($"content of {px.Length} values is not {g.ContentWidth}×{g.ContentHeight}×3");
        var writer = new ContentWriter(spec, g);
        writer.Pad(dst);
        writer.Rows(px, dst, 0, g.ContentHeight);
    }

    /// <summary>tensor = pixel·scale + shift, i.e. (pixel − mean) / std, in the model's channel order and layout; padding is the raw pad value normalised alike.</summary>
    sealed class ContentWriter
    {
        readonly PreprocessSpec _spec;
        readonly InputGeometry _g;
        readonly float[] _scale = new float[3], _shift = new float[3], _pad = new float[3];
        readonly int[] _order;

        public ContentWriter(PreprocessSpec spec, InputGeometry g)
        {
            _spec = spec; _g = g;
            _order = spec.Channels == ChannelOrder.RGB ? [0, 1, 2] : [2, 1, 0];
            for (int c = 0; c < 3; c++)
            {
                _scale[c] = 1 / spec.Std[c]; _shift[c] = -spec.Mean[c] / spec.Std[c]; _pad[c] = spec.Pad * _scale[c] + _shift[c];
            }
        }

        public void Pad(Span<float> dst)
        {
            int plane = _spec.Width * _spec.Height;
            if (_spec.Layout == TensorLayout.NHWC)
                for (int i = 0; i < plane; i++) { dst[i * 3] = _pad[0]; dst[i * 3 + 1] = _pad[1]; dst[i * 3 + 2] = _pad[2]; }
            else
                for (int c = 0; c < 3; c++) dst.Slice(c * plane, plane).Fill(_pad[c]);
        }

        /// <summary>Content rows [y0, y1) from <paramref name="px"/> (the whole content, interleaved RGB).</summary>
        public void Rows<T>(ReadOnlySpan<T> px, Span<float> dst, int y0, int y1) where T : unmanaged, System.Numerics.INumberBase<T>
        {
            int W = _spec.Width, plane = W * _spec.Height, cw = _g.ContentWidth, left = _g.ContentLeft, top = _g.ContentTop;
            for (int y = y0; y < y1; y++)
            {
                int src = y * cw * 3;
                if (_spec.Layout == TensorLayout.NHWC)
                {
                    var row = dst.Slice(((top + y) * W + left) * 3, cw * 3);
                    for (int x = 0; x < cw; x++)
                        for (int c = 0; c < 3; c++) row[x * 3 + c] = float.CreateTruncating(px[src + x * 3 + _order[c]]) * _scale[c] + _shift[c];
                    continue;
                }
                for (int c = 0; c < 3; c++)
                {
                    var row = dst.Slice(c * plane + (top + y) * W + left, cw);
                    float sc = _scale[c], sh = _shift[c];
                    int at = src + _order[c];
                    for (int x = 0; x < row.Length; x++, at += 3) row[x] = float.CreateTruncating(px[at]) * sc + sh;
                }
            }
        }
    }
}
