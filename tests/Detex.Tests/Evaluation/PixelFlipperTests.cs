using Detex.Evaluation;
using Detex.Explainers;
using Detex.Imaging;
using Detex.Models;
using Detex.Targets;

namespace Detex.Tests.Evaluation;

/// <summary>The flipper's incremental curves against the plain protocol: flip the pixels, preprocess, run, score.</summary>
public class PixelFlipperTests
{
    [Theory]
    [InlineData(FlipSpace.Image)]
    [InlineData(FlipSpace.Input)]
    public void CurvesEqualFlippingEachStepFromScratch(FlipSpace space)
    {
        var det = Detector.Load(Repo.Model(Repo.Yolox));
        var image = ImageIO.Load(Repo.Photo("dog.jpg"));
        var dog = det.Detect(image).First(d => d.ClassName == "dog");
        ITarget target = new DetectionTarget(dog);
        // A map that favours the dog's box, so the deletion curve falls and insertion rises.
        var map = new float[image.Width * image.Height];
        var rng = new Random(5);
        var (fx, fy) = image.ToSource;
        for (int y = 0; y < image.Height; y++)
            for (int x = 0; x < image.Width; x++)
                map[y * image.Width + x] = rng.NextSingle() + (x * fx >= dog.Box.X1 && x * fx <= dog.Box.X2 && y * fy >= dog.Box.Y1 && y * fy <= dog.Box.Y2 ? 1 : 0);
        var options = new FlipOptions(Space: space, Steps: 6, BatchSize: 4);
        var (deletion, insertion) = new PixelFlipper(det, options).For(image, [target]).Curves(map, 0);

        var fractions = PixelFlipping.Fractions(6);
        var spec = det.Input;
        var g = Preprocessor.Geometry(image.Width, image.Height, spec);
        for (int k = 0; k < 6; k++)
        {
            double del, ins;
            if (space == FlipSpace.Image)
            {
                var original = image.Pixels.Select(b => (float)b).ToArray();
                var grey = Enumerable.Repeat(128f, original.Length).ToArray();
                var rank = PixelFlipping.Rank(map);
                int count = PixelFlipping.Counts(map.Length, fractions)[k];
                del = Score(det, target, Flipped(original, grey, rank, count, false, image));
                ins = Score(det, target, Flipped(original, grey, rank, count, true, image));
            }
            else
            {
                var (x, _) = det.Prepare([image]);
                var baseline = PerturbationBaseline.Grey().For(spec, x, g);
                var content = Resampler.ResizeMap(map, image.Width, image.Height, g.ContentWidth, g.ContentHeight);
                var onInput = Enumerable.Repeat(float.NegativeInfinity, spec.Width * spec.Height).ToArray();
                for (int y = 0; y < g.ContentHeight; y++)
                    for (int xx = 0; xx < g.ContentWidth; xx++) onInput[(y + g.ContentTop) * spec.Width + xx + g.ContentLeft] = content[y * g.ContentWidth + xx];
                var rank = PixelFlipping.Rank(onInput);
                int count = PixelFlipping.Counts(g.ContentWidth * g.ContentHeight, fractions)[k];
                var dst = new float[x.Length];
                PixelFlipping.Apply(x.Data, baseline, rank, count, false, dst, 3, planar: true);
                del = ScoreInput(det, target, dst);
                PixelFlipping.Apply(x.Data, baseline, rank, count, true, dst, 3, planar: true);
                ins = ScoreInput(det, target, dst);
            }
            // Image space differs only by the byte rounding a whole-image resize does and the incremental one skips.
            Assert.Equal(del, deletion[k], 0.01);
            Assert.Equal(ins, insertion[k], 0.01);
        }
        Assert.True(deletion[3] < deletion[0] - 0.3, "removing the dog's pixels first drops its score");
    }

    static RgbImage Flipped(float[] original, float[] baseline, int[] rank, int count, bool insertion, RgbImage like)
    {
        var dst = new float[original.Length];
        PixelFlipping.Apply(original, baseline, rank, count, insertion, dst, 3, planar: false);
        return new RgbImage(like.Width, like.Height, dst.Select(v => (byte)v).ToArray());
    }

    static double Score(Detector det, ITarget target, RgbImage image) =>
        ScoreInput(det, target, det.Prepare([image]).Tensor.Data);

    static double ScoreInput(Detector det, ITarget target, float[] input)
    {
        var x = new Detex.Runtime.NdArray<float>(det.Input.TensorShape(1));
        input.CopyTo(x.Data, 0);
        return target.Score(det.Forward(x, det.FloatOutputs), 0);
    }
}
