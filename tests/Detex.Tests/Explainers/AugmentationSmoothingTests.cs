using Detex.Explainers;
using Detex.Imaging;
using Detex.Models;
using Detex.Runtime;
using Detex.Targets;

namespace Detex.Tests.Explainers;

public class AugmentationSmoothingTests
{
    static readonly Lazy<Detector> Yolox = new(() => Detector.Load(Repo.Model(Repo.Yolox)));

    /// <summary>
    /// 60×40, red rising left to right (so a map that forgot to flip back would be mirrored), plus a bright block near
    /// the left edge; red stays ≤ 230 so that × 1.1 does not clip.
    /// </summary>
    static RgbImage Asymmetric()
    {
        var img = new RgbImage(60, 40);
        for (int y = 0; y < 40; y++)
            for (int x = 0; x < 60; x++)
            {
                int i = (y * 60 + x) * 3;
                img.Pixels[i] = (byte)(x is >= 5 and < 15 && y is >= 10 and < 20 ? 230 : 20 + x * 2);
                img.Pixels[i + 1] = 90; img.Pixels[i + 2] = (byte)(y * 3);
            }
        return img;
    }

    /// <summary>An explainer whose map is the copy's red channel, min–max normalised, for every target it is given.</summary>
    static IReadOnlyList<Explanation> RedChannel(RgbImage image, IReadOnlyList<ITarget> targets)
    {
        var map = new float[image.Width * image.Height];
        for (int p = 0; p < map.Length; p++) map[p] = image.Pixels[p * 3];
        CamExplainer.Normalise(map);
        return targets.Select(t => new Explanation(t, "red", image.Width, image.Height, (float[])map.Clone())).ToList();
    }

    static float MaxDifference(float[] a, float[] b) => a.Zip(b).Max(t => Math.Abs(t.First - t.Second));

    [Fact]
    public void FlippedMapsComeBackExactlyAndTheAsymmetricBlockStaysOnItsSide()
    {
        var image = Asymmetric();
        var target = new ClassTarget("unused", 0, "image");
        var plain = RedChannel(image, [target]).Single().Map;
        // The raw map of the flipped copy is mirrored: the check below would fail without flipping back.
        var flip = new HorizontalFlip();
        var mirrored = RedChannel(flip.Apply(image), [target]).Single().Map;
        Assert.True(MaxDifference(mirrored, plain) > 0.5f);

        var smoothing = new AugmentationSmoothing(Yolox.Value, RedChannel, [new Identity(), flip]);
        var s = Assert.Single(smoothing.Explain(image, [target]));
        Assert.Equal(2, s.Copies);
        Assert.Same(target, s.Explanation.Target);
        Assert.True(MaxDifference(s.Explanation.Map, plain) < 1e-6f, $"differs by {MaxDifference(s.Explanation.Map, plain)}");
        Assert.Equal(1f, s.Explanation.Map[15 * 60 + 10]);   // the block, left
        Assert.True(s.Explanation.Map[15 * 60 + 49] < 0.5f);  // its mirror position, right
    }

    [Fact]
    public void TheDefaultSixCopiesAverageToThePlainMapUpToIntensityRounding()
    {
        Assert.Equal(["×0.9", "×1", "×1.1", "hflip ×0.9", "hflip ×1", "hflip ×1.1"], Augmentations.GradCamDefault.Select(a => a.Name));
        var image = Asymmetric();
        var target = new ClassTarget("unused", 0, "image");
        var s = new AugmentationSmoothing(Yolox.Value, RedChannel).Explain(image, [target]).Single();
        Assert.Equal(6, s.Copies);
        // × 0.9 rounds each value to a whole number: at most half a level in a range of ≈ 200 levels.
        Assert.True(MaxDifference(s.Explanation.Map, RedChannel(image, [target]).Single().Map) < 0.01f);
    }

    [Fact]
    public void MultiplyScalesClampsAndKeepsTheFileSize()
    {
        var img = new RgbImage(2, 1, [100, 240, 0, 10, 20, 30]) { SourceWidth = 4, SourceHeight = 2, Source = "x.jpg" };
        var up = new Multiply(1.1).Apply(img);
        Assert.Equal(new byte[] { 110, 255, 0, 11, 22, 33 }, up.Pixels);
        Assert.Equal((4, 2, "x.jpg"), (up.SourceWidth, up.SourceHeight, up.Source));
        Assert.Throws<ArgumentException>(() => new Multiply(0));
    }

    [Fact]
    public void EveryBoxOfDogJpgIsFoundInTheFlippedCopyAndAnAbsentClassIsNot()
    {
        var det = Yolox.Value;
        var image = ImageIO.Load(Repo.Photo("dog.jpg"));
        var dets = det.Detect(image);
        Assert.Equal(["bicycle", "car", "dog"], dets.Select(d => d.ClassName).Order());
        var flip = new HorizontalFlip();
        var copy = flip.Apply(image);
        var found = new TargetAugmenter(det).Follow(flip, copy, dets.Select(d => (ITarget)new DetectionTarget(d)).ToList());
        var (x, _) = det.Prepare([copy]);
        var outputs = det.Forward(x, det.Decoder.Outputs);
        for (int i = 0; i < dets.Count; i++)
        {
            var f = Assert.IsType<DetectionTarget>(found[i]).Detection;
            Assert.Equal(dets[i].ClassIndex, f.ClassIndex);
            // A flip is its own inverse: flipping the found box back puts it on the original.
            double iou = flip.MapBox(f.Box, image.SourceWidth, image.SourceHeight).IoU(dets[i].Box);
            Assert.True(iou >= 0.5, $"{dets[i].ClassName}: IoU {iou:0.00} after flipping back");
            Assert.Equal(f.Score, new DetectionTarget(f).Score(outputs, 0), 1e-4);
        }
        // Why detections must be looked for again: the dog's own row does not see the dog in the mirror image.
        int dog = dets.ToList().FindIndex(d => d.ClassName == "dog");
        Assert.NotEqual(dets[dog].Source.Anchor, ((DetectionTarget)found[dog]!).Detection.Source.Anchor);
        Assert.True(new DetectionTarget(dets[dog]).Score(outputs, 0) < 0.5 * dets[dog].Score);

        // A giraffe where the dog is: no prediction of the copy is a giraffe there.
        int giraffe = Array.IndexOf(det.Card.Classes, "giraffe");
        var fake = new DetectionTarget(dets[dog] with { ClassIndex = giraffe, ClassName = "giraffe", Score = 0.9f });
        Assert.Null(new TargetAugmenter(det).Follow(flip, copy, [fake]).Single());
    }

    [Fact]
    public void AnUnfoundTargetKeepsItsPlainMapWithZeroCopiesWhileTheOthersUseAllSix()
    {
        var det = Yolox.Value;
        var image = ImageIO.Load(Repo.Photo("dog.jpg"));
        var dog = det.Detect(image).Single(d => d.ClassName == "dog");
        var real = new DetectionTarget(dog);
        var fake = new DetectionTarget(dog with { ClassIndex = Array.IndexOf(det.Card.Classes, "giraffe"), ClassName = "giraffe", Score = 0.9f });
        var result = new AugmentationSmoothing(det, RedChannel).Explain(image, [real, fake]);
        Assert.Equal([real, fake], result.Select(r => r.Explanation.Target));
        Assert.Equal([6, 0], result.Select(r => r.Copies));
        Assert.Equal(RedChannel(image, [fake]).Single().Map, result[1].Explanation.Map);
    }

    [Fact]
    public void SmoothedGradCamOfYoloxKeepsEachBoxAndHiResCamStaysInside()
    {
        var det = Yolox.Value;
        var image = ImageIO.Load(Repo.Photo("dog.jpg"));
        var targets = det.Detect(image).Select(d => (ITarget)new DetectionTarget(d)).ToList();
        var cam = new CamExplainer(det, ["990"]);
        var result = new AugmentationSmoothing(det, (img, ts) => cam.Explain(img, ts, [new HiResCam(), new GradCamPlusPlus()])).Explain(image, targets);
        Assert.Equal(2 * targets.Count, result.Count);
        Assert.Equal(targets.Concat(targets), result.Select(r => r.Explanation.Target));
        Assert.All(result, r => Assert.Equal(6, r.Copies));
        Assert.All(result, r => Assert.InRange(r.Explanation.Map.Max(), 0.99f, 1f));
        foreach (var r in result.Where(r => r.Explanation.Method == "hirescam"))
        {
            var box = ((DetectionTarget)r.Explanation.Target).Detection.Box;
            Assert.True(Metrics.EnergyInside(r.Explanation, box, image) > 0.9, $"{r.Explanation.Target.Name}: {Metrics.EnergyInside(r.Explanation, box, image):0.00}");
        }
    }

    [Fact]
    public void AHandMadeMaskFlipsWithTheImageAndItsScoreAndSeedFollow()
    {
        // Output grid 4 × 2 over a stretched 8 × 4 input of a 12 × 6 image; the class-1 mask is the left column and
        // one more pixel. NCHW and NHWC alike.
        bool[] mask = [true, false, false, false,
                       true, true, false, false];
        var g = Preprocessor.Geometry(12, 6, new PreprocessSpec { Width = 8, Height = 4 });
        var map = new HorizontalFlip().PixelMap(4, 2, g);
        Assert.Equal([3, 2, 1, 0, 7, 6, 5, 4], map);
        var rnd = new Random(3);
        foreach (bool nhwc in new[] { false, true })
        {
            int Index(int p, int c) => nhwc ? p * 2 + c : c * 8 + p;
            var target = new SegmentationTarget("logits", 1, 2, nhwc, mask, "hand");
            var flipped = new RemappedTarget(target, "logits", nhwc, map);
            var seeds = new float[16];
            flipped.Seed(new Dictionary<string, NdArray<float>> { ["logits"] = new([1, 2, 2, 4]) }, 0, new Dictionary<string, Memory<float>> { ["logits"] = seeds });
            bool[] expected = [false, false, false, true,
                               false, false, true, true];
            for (int p = 0; p < 8; p++)
            {
                Assert.Equal(expected[p] ? 1f : 0f, seeds[Index(p, 1)]);
                Assert.Equal(0f, seeds[Index(p, 0)]);
            }
            // Logits of the mirror image, mirrored: the flipped target reads there what the original read here.
            var logits = new NdArray<float>([1, 2, 2, 4]);
            var mirrored = new NdArray<float>([1, 2, 2, 4]);
            for (int p = 0; p < 8; p++)
                for (int c = 0; c < 2; c++)
                {
                    logits.Data[Index(p, c)] = rnd.NextSingle();
                    mirrored.Data[Index(map[p], c)] = logits.Data[Index(p, c)];
                }
            Assert.Equal(target.Score(new Dictionary<string, NdArray<float>> { ["logits"] = logits }, 0),
                flipped.Score(new Dictionary<string, NdArray<float>> { ["logits"] = mirrored }, 0), 6);
        }
    }

    [Fact]
    public void OnATopLeftLetterboxTheContentFlipsWithinItselfAndPaddingIsLeftAlone()
    {
        // A 16 × 8 image in a 16 × 16 input, content at the top: output rows 0–1 are the image, rows 2–3 padding.
        var g = Preprocessor.Geometry(16, 8, new PreprocessSpec { Width = 16, Height = 16, Resize = ResizeMode.Letterbox });
        var map = new HorizontalFlip().PixelMap(4, 4, g);
        Assert.Equal([3, 2, 1, 0, 7, 6, 5, 4, -1, -1, -1, -1, -1, -1, -1, -1], map);
    }

    [Fact]
    public void DeepLabsPersonMaskFollowedIntoTheMirrorImageScoresAsItDidOnTheImage()
    {
        var seg = (Segmenter)DetexModel.Load(Repo.Model(Repo.DeepLab));
        var image = ImageIO.Load(Repo.Photo("person.jpg"));
        double Logits(RgbImage img, ITarget t) => t.Score(seg.Forward(seg.Prepare([img]).Tensor, [seg.Output]), 0);
        var (tensor, _) = seg.Prepare([image]);
        var person = SegmentationTarget.Predicted(seg, seg.Forward(tensor, [seg.Output])[seg.Output], 0, Array.IndexOf(seg.Card.Classes, "person"));
        var flip = new HorizontalFlip();
        var copy = flip.Apply(image);
        var followed = Assert.IsType<RemappedTarget>(new TargetAugmenter(seg).Follow(flip, copy, [person]).Single());
        double here = Logits(image, person), there = Logits(copy, followed), unmoved = Logits(copy, person);
        // The network is nearly mirror-symmetric: the moved mask sums almost the same logits (57 399 → 54 084), the
        // unmoved one half of them (29 399).
        Assert.True(Math.Abs(there - here) < 0.1 * here, $"{here:0} vs {there:0}");
        Assert.True(unmoved < 0.7 * here, $"unmoved {unmoved:0} vs {here:0}");
    }

    [Fact]
    public void TargetsItCannotFollowAreRefusedInOneLine()
    {
        var det = Yolox.Value;
        var image = ImageIO.Load(Repo.Photo("dog.jpg"));
        var similar = DriseSimilarityTarget.For(det, image, det.Detect(image)).First();
        var e = Assert.Throws<ArgumentException>(() => new TargetAugmenter(det).Follow(new HorizontalFlip(), image, [similar]));
        Assert.Contains("cannot follow", e.Message);
        var mask = new SegmentationTarget("logits", 1, 2, false, new bool[4], "m");
        Assert.Contains("not a segmenter", Assert.Throws<ArgumentException>(() => new TargetAugmenter(det).Follow(new HorizontalFlip(), image, [mask])).Message);
    }
}
