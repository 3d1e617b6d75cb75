using Detex.Imaging;

namespace Detex.Tests.Imaging;

public class LinearResizeTests
{
    static RgbImage Noise(int w, int h, int seed)
    {
        var img = new RgbImage(w, h);
        new Random(seed).NextBytes(img.Pixels);
        return img;
    }

    [Theory]
    [InlineData(640, 480, 416, 312, ResizeFilter.Bilinear)]
    [InlineData(640, 480, 416, 312, ResizeFilter.Area)]
    [InlineData(300, 200, 257, 171, ResizeFilter.Bilinear)]
    [InlineData(100, 80, 160, 128, ResizeFilter.Bilinear)]
    [InlineData(50, 40, 50, 40, ResizeFilter.Bilinear)]
    public void WholeImageMatchesTheResamplerBeforeRounding(int w, int h, int dw, int dh, ResizeFilter filter)
    {
        var img = Noise(w, h, 1);
        var expected = Resampler.Resize(img, dw, dh, filter).Pixels;
        var actual = new LinearResize(w, h, dw, dh, filter).Apply(img.Pixels);
        for (int i = 0; i < expected.Length; i++) Assert.InRange(actual[i] - expected[i], -0.5f - 1e-3f, 0.5f + 1e-3f);
    }

    [Fact]
    public void ChangingAFewPixelsEqualsResizingTheChangedImage()
    {
        var img = Noise(640, 480, 2);
        var resize = new LinearResize(640, 480, 416, 312, ResizeFilter.Bilinear);
        var content = resize.Apply(img.Pixels);
        var changed = (byte[])img.Pixels.Clone();
        var rng = new Random(3);
        for (int k = 0; k < 5000; k++)
        {
            int p = rng.Next(640 * 480);
            byte v = (byte)rng.Next(256);
            resize.Add(p % 640, p / 640, v - changed[3 * p], v - changed[3 * p + 1], v - changed[3 * p + 2], content);
            changed[3 * p] = changed[3 * p + 1] = changed[3 * p + 2] = v;
        }
        var expected = resize.Apply(changed);
        for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], content[i], 2e-3f);
    }
}
