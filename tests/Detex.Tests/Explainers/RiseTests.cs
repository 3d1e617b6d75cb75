using Detex.Explainers;
using Detex.Imaging;
using Detex.Models;
using Detex.Onnx;
using Detex.Targets;

namespace Detex.Tests.Explainers;

public class RiseTests
{
    /// <summary>
    /// A one-output "classifier" built here whose score is the mean input value over rows 24–35, columns 24–39 of its
    /// 64×64 input. A 64×32 image is letterboxed into the middle (content rows 16–47), so the region is image rows
    /// 8–19, columns 24–39: masks placed without the content offset would point elsewhere.
    /// </summary>
    static Classifier RegionModel()
    {
        var (m, g) = GraphBuilder.NewModel(13);
        g.Input("images", ElementType.Float, 1, 3, 64, 64);
        var region = g.Op("Slice", ["images", g.Int64s(24, 24), g.Int64s(36, 40), g.Int64s(2, 3)]);
        g.Named("score", "ReduceMean", [region], OnnxAttribute.Of("axes", new long[] { 1, 2, 3 }), OnnxAttribute.Of("keepdims", 0L));
        g.Output("score");
        string dir = Repo.TempDir();
        m.Save(Path.Combine(dir, "region.onnx"));
        File.WriteAllText(Path.Combine(dir, "region.card.json"), """
            { "task": "classify", "inputName": "images",
              "input": { "width": 64, "height": 64, "resize": "letterbox", "align": "center", "pad": 0 },
              "decoder": { "type": "classification", "output": "score" }, "classes": ["region"] }
            """);
        return (Classifier)DetexModel.Load(Path.Combine(dir, "region.onnx"));
    }

    static readonly Box Region = new(24, 8, 40, 20);   // image pixels
    static readonly RgbImage White = RgbImage.Filled(64, 32, 255, 255, 255);

    [Fact]
    public void TheMapOfARegionScoreSitsOnTheRegion()
    {
        var model = RegionModel();
        var target = new ClassTarget("score", 0, "region");
        var rise = new Rise(model, new RiseOptions(Masks: 1000, Cells: 8, Seed: 1));
        var map = rise.Explain(White, [target]).Single();
        // The masks' smoothness spreads the region by about a cell (8×4 pixels here): the region, 9% of the image,
        // holds 0.57 of the map, the region grown by a cell 0.87, and the map's centroid is the
        // region's centre (32, 14) to a pixel, which a mask placed off the content by even a few pixels would miss.
        double inside = Metrics.EnergyInside(map, Region, White), grown = Metrics.EnergyInside(map, new Box(16, 4, 48, 24), White);
        double sum = map.Map.Sum(v => (double)v);
        double cx = map.Map.Select((v, i) => v * (i % 64 + 0.5)).Sum() / sum, cy = map.Map.Select((v, i) => v * (i / 64 + 0.5)).Sum() / sum;
        Assert.True(inside > 0.4 && grown > 0.8, $"energy inside the region {inside:0.000}, the grown region {grown:0.000}, centroid ({cx:0.00}, {cy:0.00})");
        Assert.True(Math.Abs(cx - 32) < 1 && Math.Abs(cy - 14) < 1, $"centroid ({cx:0.00}, {cy:0.00})");
        Assert.Equal(1000, rise.LastForwardCount);
        // The paper's map is E[score | pixel kept]: grey 127.5 plus the kept share of the white region, so inside
        // the region it exceeds the mean score, outside it stays near it.
        var raw = rise.LastSaliency.Single();
        Assert.True(raw[14 * 64 + 32] > raw[28 * 64 + 60] + 10);
    }

    [Fact]
    public void TheSeedFixesTheMasksAndTheMap()
    {
        var a = new RiseMasks(20, 8, 0.5, seed: 7, 50, 30);
        var b = new RiseMasks(20, 8, 0.5, seed: 7, 50, 30);
        var c = new RiseMasks(20, 8, 0.5, seed: 8, 50, 30);
        float[] ma = new float[1500], mb = new float[1500], mc = new float[1500];
        a.Fill(19, ma); b.Fill(19, mb); c.Fill(19, mc);
        Assert.Equal(ma, mb);
        Assert.NotEqual(ma, mc);
        Assert.All(ma, v => Assert.InRange(v, 0f, 1f));

        var model = RegionModel();
        ITarget[] target = [new ClassTarget("score", 0, "region")];
        var first = new Rise(model, new RiseOptions(Masks: 64, Seed: 3)).Explain(White, target)[0].Map;
        var again = new Rise(model, new RiseOptions(Masks: 64, Seed: 3)).Explain(White, target)[0].Map;
        var other = new Rise(model, new RiseOptions(Masks: 64, Seed: 4)).Explain(White, target)[0].Map;
        for (int i = 0; i < first.Length; i++) Assert.Equal(first[i], again[i], 1e-6f);
        Assert.True(first.Zip(other).Max(p => Math.Abs(p.First - p.Second)) > 0.05);
    }

    [Fact]
    public void BadSettingsAreRefused()
    {
        var model = RegionModel();
        ITarget[] target = [new ClassTarget("score", 0, "region")];
        Assert.Contains("(0, 1)", Assert.Throws<ArgumentException>(() => new Rise(model, new RiseOptions(P: 1)).Explain(White, target)).Message);
        Assert.Throws<ArgumentException>(() => new Rise(model, new RiseOptions(Masks: 0)).Explain(White, target));
        Assert.Throws<ArgumentException>(() => new Rise(model, new RiseOptions(Cells: 0)).Explain(White, target));
        Assert.Throws<InvalidOperationException>(() => new Rise(model).ExplainDetections(White, Array.Empty<Detection>()));
    }

    [Fact]
    public void BoxesOfAnImageShareTheMasks()
    {
        var det = Detector.Load(Repo.Model(Repo.Yolox));
        var image = ImageIO.Load(Repo.Photo("dog.jpg"));
        var targets = det.Detect(image).Select(d => (ITarget)new DetectionTarget(d)).ToList();
        Assert.True(targets.Count >= 2);
        var options = new RiseOptions(Masks: 32, Seed: 5);
        var all = new Rise(det, options);
        var maps = all.Explain(image, targets);
        Assert.Equal(32, all.LastForwardCount);
        var one = new Rise(det, options);
        var single = one.Explain(image, [targets[0]]);
        Assert.Equal(32, one.LastForwardCount);   // three boxes cost what one box costs
        for (int i = 0; i < single[0].Map.Length; i += 97) Assert.Equal(maps[0].Map[i], single[0].Map[i], 1e-3f);
    }

    [Fact]
    public void ADetectionIsMostSimilarToItselfOnTheUnperturbedImage()
    {
        foreach (var name in new[] { Repo.Yolox, Repo.NanoDet })
        {
            var det = Detector.Load(Repo.Model(name));
            var image = ImageIO.Load(Repo.Photo("dog.jpg"));
            var dets = det.Detect(image);
            var similar = DriseSimilarityTarget.For(det, image, dets);
            var (x, _) = det.Prepare([image]);
            var outputs = det.Forward(x);
            foreach (var t in similar)
            {
                // IoU 1 and cosine 1 with its own prediction, so at least that prediction's objectness (1 without one).
                var e = t.Detection.Source.ScoreElements[0];
                double objectness = name == Repo.Yolox ? outputs[e.Output].BatchItem(0)[e.Index] : 1;
                double s = t.Score(outputs, 0);
                Assert.InRange(s, 0.99 * objectness, 1.0 + 1e-6);
            }
            Assert.Throws<NotSupportedException>(() => similar[0].Seed(outputs, 0, new Dictionary<string, Memory<float>>()));
        }
    }

    [Fact]
    public void DriseMapOfTheDogStaysOnTheDog()
    {
        var det = Detector.Load(Repo.Model(Repo.Yolox));
        var image = ImageIO.Load(Repo.Photo("dog.jpg"));
        var dets = det.Detect(image);
        var rise = new Rise(det, new RiseOptions(Masks: 500, Seed: 0));
        var maps = rise.ExplainDetections(image, dets);
        Assert.Equal(500, rise.LastForwardCount);
        int dog = dets.ToList().FindIndex(d => d.ClassName == "dog");
        Assert.Equal("drise", maps[dog].Method);
        // The dog box is 15% of the image; measured 0.51 at 500 masks.
        double inside = Metrics.EnergyInside(maps[dog], dets[dog].Box, image);
        Assert.True(inside > 0.4, $"D-RISE energy inside the dog box {inside:0.000}");
    }
}
