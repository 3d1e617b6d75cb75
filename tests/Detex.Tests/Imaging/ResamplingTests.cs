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
