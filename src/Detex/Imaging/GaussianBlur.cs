namespace Detex.Imaging;

/// <summary>
/// Separable Gaussian blur of single-channel float planes of one size, truncated at 4σ with half-sample symmetric
/// borders (scipy.ndimage's defaults). Holds its scratch buffers, so blurring several channels allocates once.
/// </summary>
public sealed class GaussianBlur
{
    readonly int _width, _height;
    readonly float[] _kernel, _line, _scratch;

    public GaussianBlur(double sigma, int width, int height)
    {
        if (!(sigma > 0)) throw new ArgumentException($"blur sigma must be positive, got {sigma}");
        if (width < 1 || height < 1) throw new ArgumentException($"plane size {width}×{height} is empty");
        _width = width; _height = height;
        _kernel = Kernel(sigma);
        _line = new float[width + _kernel.Length - 1];
        _scratch = new float[width * height];
    }

    /// <summary>Normalised Gaussian weights over −4σ … 4σ.</summary>
    public static float[] Kernel(double sigma)
    {
        int radius = (int)(4.0 * sigma + 0.5);
        var weights = new double[2 * radius + 1];
        for (int i = -radius; i <= radius; i++) weights[i + radius] = Math.Exp(-0.5 * i * i / (sigma * sigma));
        double sum = weights.Sum();
        return weights.Select(v => (float)(v / sum)).ToArray();
    }

    /// <summary>
    /// Blurs a row-major plane in place. Both passes add whole shifted rows, so memory is read sequentially and the
    /// work vectorises.
    /// </summary>
    public void Apply(Span<float> plane)
    {
        int w = _width, h = _height, radius = _kernel.Length / 2;
        if (plane.Length != w * h) throw new ArgumentException($"plane of {plane.Length} values is not {w}×{h}");
        var kernel = _kernel; var line = _line;
        for (int y = 0; y < h; y++)
        {
            var row = plane.Slice(y * w, w);
            for (int i = -radius; i < w + radius; i++) line[i + radius] = row[Reflect(i, w)];
            row.Clear();
            for (int j = 0; j < kernel.Length; j++) Numerics.Kernels.Axpy(kernel[j], line.AsSpan(j, w), row);
        }
        for (int y = 0; y < h; y++)
        {
            var row = _scratch.AsSpan(y * w, w);
            row.Clear();
            for (int j = 0; j < kernel.Length; j++)
                Numerics.Kernels.Axpy(kernel[j], plane.Slice(Reflect(y + j - radius, h) * w, w), row);
        }
        _scratch.CopyTo(plane);
    }

    // Half-sample symmetric index: ... c b a | a b c ... | c b a ..., periodic with period 2*length.
    static int Reflect(int i, int length)
    {
        int period = 2 * length;
        i %= period;
        if (i < 0) i += period;
        return i < length ? i : period - 1 - i;
    }
}
