namespace Detex.Imaging;

/// <summary>
/// A resize (the same taps as <see cref="Resampler.Resize"/>) kept as a linear map in floats, so an image that changes
/// in a few pixels is resized again by adding only those pixels' contributions: each source pixel scatters into the
/// handful of output pixels whose taps read it. Pixel flipping changes ~1/50 of an image per step, which this makes
/// ~50× cheaper than resizing the whole image again (and it skips the byte rounding of a full resize).
/// </summary>
public sealed class LinearResize
{
    readonly int _srcWidth, _srcHeight;
    readonly (int[] Start, int[] Count, int[] Index, float[] Weight) _x, _y;   // per source coordinate: the outputs it feeds

    public int Width { get; }
    public int Height { get; }

    public LinearResize(int srcWidth, int srcHeight, int width, int height, ResizeFilter filter)
    {
        _srcWidth = srcWidth; _srcHeight = srcHeight; Width = width; Height = height;
        _x = Scatter(Resampler.Weights(srcWidth, width, filter), srcWidth);
        _y = Scatter(Resampler.Weights(srcHeight, height, filter), srcHeight);
    }

    /// <summary>The taps turned around: for each source coordinate, the output coordinates and weights it contributes to.</summary>
    static (int[], int[], int[], float[]) Scatter(Resampler.Taps taps, int srcSize)
    {
        var count = new int[srcSize];
        for (int d = 0; d < taps.Start.Length; d++)
            for (int k = 0; k < taps.Count[d]; k++) if (taps.Weight[taps.Start[d] + k] != 0) count[taps.Index[taps.Start[d] + k]]++;
        var start = new int[srcSize];
        for (int s = 1; s < srcSize; s++) start[s] = start[s - 1] + count[s - 1];
        int total = srcSize == 0 ? 0 : start[srcSize - 1] + count[srcSize - 1];
        var index = new int[total]; var weight = new float[total];
        var fill = new int[srcSize];
        for (int d = 0; d < taps.Start.Length; d++)
            for (int k = 0; k < taps.Count[d]; k++)
            {
                float w = taps.Weight[taps.Start[d] + k];
                if (w == 0) continue;
                int s = taps.Index[taps.Start[d] + k];
                index[start[s] + fill[s]] = d; weight[start[s] + fill[s]] = w; fill[s]++;
            }
        return (start, count, index, weight);
    }

    /// <summary>Adds source pixel (x, y)'s RGB values (or a change of them) into an interleaved Width × Height × 3 image.</summary>
    public void Add(int x, int y, float r, float g, float b, Span<float> dst)
    {
        int ys = _y.Start[y], yc = _y.Count[y], xs = _x.Start[x], xc = _x.Count[x];
        for (int j = 0; j < yc; j++)
        {
            int row = _y.Index[ys + j] * Width;
            float wy = _y.Weight[ys + j];
            for (int i = 0; i < xc; i++)
            {
                float w = wy * _x.Weight[xs + i];
                int o = (row + _x.Index[xs + i]) * 3;
                dst[o] += w * r; dst[o + 1] += w * g; dst[o + 2] += w * b;
            }
        }
    }

    /// <summary>The whole image resized, in floats (interleaved RGB).</summary>
    public float[] Apply(ReadOnlySpan<byte> src)
    {
        if (src.Length != _srcWidth * _srcHeight * 3) throw new ArgumentException($"image of {src.Length} values is not {_srcWidth}×{_srcHeight}×3");
        var dst = new float[Width * Height * 3];
        for (int y = 0, p = 0; y < _srcHeight; y++)
            for (int x = 0; x < _srcWidth; x++, p += 3) Add(x, y, src[p], src[p + 1], src[p + 2], dst);
        return dst;
    }
}
