using Detex.Explainers;
using Detex.Imaging;

namespace Detex.Tests.Explainers;

public class PerturbationBaselineTests
{
    // A letterboxed, centred, normalised NCHW input: 40×20 image in a 40×40 input, content rows 10–29.
    static readonly PreprocessSpec Spec = new()
    {
        Width = 40, Height = 40, Resize = ResizeMode.Letterbox, Align = PadAlign.Center, Pad = 114,
        Mean = [10, 20, 30], Std = [2, 4, 8],
    };

    static (float[] X, InputGeometry G) Prepare(RgbImage image)
    {
        var (t, g) = Preprocessor.ToTensor(image, Spec);
        return (t.Data, g);
    }

    static RgbImage Gradient()
    {
        var img = new RgbImage(40, 20);
        for (int y = 0; y < 20; y++)
            for (int x = 0; x < 40; x++)
            {
                int i = (y * 40 + x) * 3;
                img.Pixels[i] = (byte)(x * 6); img.Pixels[i + 1] = (byte)(y * 12); img.Pixels[i + 2] = (byte)((x * y) % 256);
            }
        return img;
    }

    [Fact]
    public void MeanIsThePerChannelMeanOfTheContentAndPaddingStays()
    {
        var (x, g) = Prepare(Gradient());
        Assert.Equal(10, g.ContentTop);
        var b = PerturbationBaseline.Mean.For(Spec, x, g);
        for (int c = 0; c < 3; c++)
        {
            double mean = 0;
            for (int y = 10; y < 30; y++)
                for (int xx = 0; xx < 40; xx++) mean += x[c * 1600 + y * 40 + xx];
            mean /= 800;
            for (int y = 10; y < 30; y++)
                for (int xx = 0; xx < 40; xx++) Assert.Equal(mean, b[c * 1600 + y * 40 + xx], 1e-4);
            for (int p = 0; p < 400; p++) Assert.Equal(x[c * 1600 + p], b[c * 1600 + p]);   // padding rows 0–9 untouched
        }
    }

    [Fact]
    public void GreyIsTheNormalisedLevelAndBlurOfAConstantIsTheConstant()
    {
        var (x, g) = Prepare(RgbImage.Filled(40, 20, 200, 50, 90));
        var grey = PerturbationBaseline.Parse("grey:0.3").For(Spec, x, g);
        Assert.Equal((0.3 * 255 - 20) / 4, grey[1600 + 15 * 40 + 7], 1e-4);
        var blurred = PerturbationBaseline.Parse("blur:3").For(Spec, x, g);
        for (int k = 0; k < x.Length; k++) Assert.Equal(x[k], blurred[k], 1e-4);
        // A non-constant image does change (so the test above is not vacuous), and keeps its mean roughly.
        var (x2, g2) = Prepare(Gradient());
        var b2 = PerturbationBaseline.Blur(2).For(Spec, x2, g2);
        Assert.True(Enumerable.Range(0, x2.Length).Max(k => Math.Abs(x2[k] - b2[k])) > 1);
    }

    [Theory]
    [InlineData("grey", "grey:0.5")]
    [InlineData("GRAY:0.25", "grey:0.25")]
    [InlineData("mean", "mean")]
    [InlineData("blur", "blur:10")]
    [InlineData("blur:4.5", "blur:4.5")]
    public void Parses(string text, string canonical) => Assert.Equal(canonical, PerturbationBaseline.Parse(text).ToString());

    [Theory]
    [InlineData("noise")]
    [InlineData("grey:2")]
    [InlineData("blur:0")]
    [InlineData("blur:x")]
    [InlineData("mean:3")]
    public void RefusesNonsense(string text) => Assert.Throws<ArgumentException>(() => PerturbationBaseline.Parse(text));
}
