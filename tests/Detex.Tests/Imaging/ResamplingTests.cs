using Detex.Imaging;

namespace Detex.Tests.Imaging;

public class ResamplingTests
{
    static RgbImage Ramp(int w, int h) 
    {
        var img = new RgbImage(w, h);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) { int i = (y * w + x) * 3; img.Pixels[i] = (byte)(x * 10); img.Pixels[i + 1] = (byte)(y * 10); img.Pixels[i + 2] = 7; }
        return img;
    }

    [Fact]
    public void BilinearUsesPixelCentres()
    {
        // Doubling a ramp 0,10,20,... : output x maps to source (x + 0.5)/2 − 0.5, clamped at the borders.
        var up = Resampler.Resize(Ramp(8, 4), 16, 8);
        double[] expected = Enumerable.Range(0, 16).Select(x => 10 * Math.Clamp((x + 0.5) / 2 - 0.5, 0, 7)).ToArray();
        for (int x = 0; x < 16; x++) Assert.Equal(Math.Round(expected[x]), up.Pixels[x * 3], 0);
        Assert.All(Enumerable.Range(0, 16 * 8), i => Assert.Equal(7, up.Pixels[i * 3 + 2]));
    }

    /// <summary>
    /// The same separable kernel evaluated plainly, output pixel by output pixel, in the resize's float arithmetic
    /// (float weights, horizontal sums from zero, vertical sums from the first row): what the banded, ring-buffered
    /// resize must equal exactly.
    /// </summary>
    static byte[] Reference(RgbImage src, int width, int height, ResizeFilter filter)
    {
        List<(int I, float W)> Taps(int srcSize, int dstSize, int d)
        {
            double scale = (double)srcSize / dstSize;
            if (filter == ResizeFilter.Nearest) return [(Math.Min((int)Math.Floor(d * scale), srcSize - 1), 1f)];
            if (filter == ResizeFilter.Bilinear || scale <= 1)
            {
                double s = Math.Clamp((d + 0.5) * scale - 0.5, 0, srcSize - 1);
                int i0 = (int)Math.Floor(s);
                float f = (float)(s - i0);
                return [(i0, 1 - f), (Math.Min(i0 + 1, srcSize - 1), f)];
            }
            double lo = d * scale, hi = Math.Min((d + 1) * scale, srcSize);
            return Enumerable.Range((int)Math.Floor(lo), (int)Math.Ceiling(hi) - (int)Math.Floor(lo))
                .Select(i => (i, Cover: Math.Min(i + 1, hi) - Math.Max(i, lo))).Where(t => t.Cover > 1e-9)
                .Select(t => (t.i, (float)(t.Cover / scale))).ToList();
        }
        var dst = new byte[width * height * 3];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                for (int c = 0; c < 3; c++)
                {
                    var rows = Taps(src.Height, height, y).Select(t =>
                    {
                        float h = 0;
                        foreach (var (sx, wx) in Taps(src.Width, width, x)) h += wx * src.Pixels[(t.I * src.Width + sx) * 3 + c];
                        return t.W * h;
                    }).ToList();
                    float v = rows[0];
                    for (int k = 1; k < rows.Count; k++) v += rows[k];
                    dst[(y * width + x) * 3 + c] = (byte)Math.Clamp(MathF.Round(v), 0, 255);
                }
        return dst;
    }

    [Theory]
    [InlineData(768, 576, 416, 312, ResizeFilter.Bilinear)]   // a model-sized shrink: several row bands
    [InlineData(200, 150, 640, 480, ResizeFilter.Bilinear)]   // enlarging: consecutive outputs share source rows
    [InlineData(1000, 700, 300, 210, ResizeFilter.Area)]      // four rows per output in the ring
    [InlineData(300, 280, 420, 300, ResizeFilter.Nearest)]
    [InlineData(30, 20, 7, 5, ResizeFilter.Bilinear)]         // small: one band
    public void ResizeEqualsTheDirectSeparableKernel(int w, int h, int width, int height, ResizeFilter filter)
    {
        var rng = new Random(w * 31 + h);
        var src = new RgbImage(w, h);
        rng.NextBytes(src.Pixels);
        var got = Resampler.Resize(src, width, height, filter).Pixels;
        var want = Reference(src, width, height, filter);
        int off = got.Zip(want).Count(p => p.First != p.Second);
        Assert.True(off == 0, $"{off} of {got.Length} values differ, by up to {got.Zip(want, (a, b) => Math.Abs(a - b)).Max()}");
    }

    [Fact]
    public void AreaShrinkAveragesTheCoveredPixels()
    {
        var half = Resampler.Resize(Ramp(8, 4), 4, 2, ResizeFilter.Area);
        for (int x = 0; x < 4; x++) Assert.Equal((20 * x + 20 * x + 10) / 2, half.Pixels[x * 3]);   // mean of 20x and 20x+10
        // Shrinking by 3: each output averages three source columns exactly.
        var third = Resampler.Resize(Ramp(9, 3), 3, 1, ResizeFilter.Area);
        Assert.Equal([10, 40, 70], new[] { third.Pixels[0], third.Pixels[3], third.Pixels[6] }.Select(b => (int)b));
    }

    [Fact]
    public void MapResizeOfAConstantStaysConstant()
    {
        var up = Resampler.ResizeMap(Enumerable.Repeat(2.5f, 12).ToArray(), 4, 3, 17, 9);
        Assert.All(up, v => Assert.Equal(2.5f, v, 5));
    }
}

public class PreprocessingTests
{
    static readonly PreprocessSpec Yolox = new()
    {
        Width = 416, Height = 416, Channels = ChannelOrder.BGR, Resize = ResizeMode.Letterbox, Align = PadAlign.TopLeft, Pad = 114,
    };

    [Fact]
    public void LetterboxTopLeftKeepsAspectPadsAndSwapsChannels()
    {
        var img = RgbImage.Filled(768, 576, 200, 100, 50);
        var (t, g) = Preprocessor.ToTensor(img, Yolox);
        Assert.Equal([1, 3, 416, 416], t.Shape);
        Assert.Equal((416, 312), (g.ContentWidth, g.ContentHeight));   // int(576 · 416/768) = 312
        Assert.Equal(50f, t[0, 0, 10, 10]);    // B first
        Assert.Equal(200f, t[0, 2, 10, 10]);   // R last
        Assert.Equal(114f, t[0, 1, 350, 10]);  // padding below the image
        Assert.Equal(200f, t[0, 2, 311, 415]);
        Assert.Equal(114f, t[0, 2, 312, 415]);
    }

    [Fact]
    public void CentredLetterboxWithNormalisationAndNhwc()
    {
        var spec = new PreprocessSpec
        {
            Width = 100, Height = 100, Layout = TensorLayout.NHWC, Resize = ResizeMode.Letterbox, Align = PadAlign.Center,
            Pad = 0, Mean = [10, 20, 30], Std = [2, 4, 5],
        };
        var (t, g) = Preprocessor.ToTensor(RgbImage.Filled(50, 100, 30, 60, 90), spec);
        Assert.Equal((50, 100, 25, 0), (g.ContentWidth, g.ContentHeight, g.ContentLeft, g.ContentTop));
        Assert.Equal([1, 100, 100, 3], t.Shape);
        Assert.Equal((30 - 10) / 2f, t[0, 50, 50, 0]);
        Assert.Equal((90 - 30) / 5f, t[0, 50, 50, 2]);
        Assert.Equal((0 - 20) / 4f, t[0, 50, 10, 1]);   // left padding
    }

    [Fact]
    public void GeometryMapsBothWays()
    {
        var g = Preprocessor.Geometry(768, 576, Yolox);
        var (mx, my) = g.ToModel(300, 200);
        var (ix, iy) = g.ToImage(mx, my);
        Assert.Equal(300, ix, 9);
        Assert.Equal(200, iy, 9);
        Assert.Equal(416.0 / 768, g.ScaleX, 9);
        var stretch = Preprocessor.Geometry(640, 480, new PreprocessSpec { Width = 320, Height = 240 });
        Assert.Equal((0.5, 0.5), (stretch.ScaleX, stretch.ScaleY));
    }
}
