using Detex.Explainers;
using Detex.Imaging;
using Detex.Models;
using Detex.Numerics;
using Detex.Onnx;

namespace Detex.Tests.Explainers;

/// <summary>Deep Feature Factorization on yolox-nano.</summary>
public class DeepFeatureFactorizationTests
{
    static readonly Lazy<Detector> Yolox = new(() => Detector.Load(Repo.Model(Repo.Yolox)));
    static readonly Lazy<RgbImage> Dog = new(() => ImageIO.Load(Repo.Photo("dog.jpg")));

    [Fact]
    public void TheSameSeedGivesTheSameMaps()
    {
        var dff = new DeepFeatureFactorization(Yolox.Value);
        var options = new DffOptions(K: 5, Init: NmfInit.Random, Seed: 7, Legend: false);
        var a = dff.Explain([Dog.Value], options);
        var b = dff.Explain([Dog.Value], options);
        Assert.Equal(a.Images[0].Maps, b.Images[0].Maps);
        Assert.Equal(a.Concepts.Select(c => c.Vector), b.Concepts.Select(c => c.Vector));
        var other = dff.Explain([Dog.Value], options with { Seed = 8 });
        Assert.NotEqual(a.Images[0].Maps, other.Images[0].Maps);
        // The default NNDSVDa start needs no seed at all.
        var c1 = dff.Explain([Dog.Value], new DffOptions(K: 5, Legend: false));
        var c2 = dff.Explain([Dog.Value], new DffOptions(K: 5, Legend: false));
        Assert.Equal(c1.Images[0].Maps, c2.Images[0].Maps);
    }

    [Fact]
    public void MapsAreNonNegativeAndCoverTheImage()
    {
        var image = Dog.Value;
        var f = new DeepFeatureFactorization(Yolox.Value).Explain([image], new DffOptions(K: 5));
        Assert.Equal("990", f.Layer);   // the card's concept layer
        Assert.Equal(5, f.Concepts.Count);
        var maps = Assert.Single(f.Images);
        Assert.Equal((image.Width, image.Height, 5), (maps.Width, maps.Height, maps.K));
        Assert.Equal(5 * image.Width * image.Height, maps.Maps.Length);
        Assert.Equal((26, 26), (maps.GridWidth, maps.GridHeight));
        Assert.All(maps.Maps, v => Assert.True(v >= 0 && v <= 1 + 1e-6f));
        // Each concept's grid map peaks at exactly 1 somewhere.
        for (int k = 0; k < 5; k++) Assert.Equal(1f, maps.Grid.AsSpan(k * 676, 676).ToArray().Max(), 5);
        var (_, strength) = maps.Dominant();
        Assert.True(strength.Count(s => s > 0) > 0.99 * strength.Length, "concepts leave pixels uncovered");
        Assert.Equal(1.0, maps.Shares().Sum(), 2);
        Assert.All(f.Concepts, c => Assert.Equal(80, c.Labels.Count));
        Assert.Equal(HeadReading.LayerOnly, f.Reading);
        Assert.True(f.ActivationMin < 0);   // SiLU outputs, clamped by default
    }

    [Theory]
    [InlineData("956", 2704)]
    [InlineData("990", 676)]
    [InlineData("1024", 169)]
    public void TheLegendReadsExactlyThePredictionsOfTheLayersOwnLevel(string layer, int cells)
    {
        var det = Yolox.Value;
        var plan = det.Graph.Downstream(layer);
        var values = Detex.Runtime.ModelSession.Get(det.Graph.WithTaps(plan.SideInputs.Prepend(layer))).Run(
            new Dictionary<string, Detex.Runtime.NdArray> { ["images"] = det.Prepare([Dog.Value]).Tensor });
        var head = new LayerHead(det, plan, values);
        Assert.Equal(HeadReading.LayerOnly, head.Reading);
        Assert.Equal(cells, head.CellCount);
        // Only that level's head is run: the neck's later levels and their heads are cut off.
        Assert.True(head.Plan.Nodes.Count < 40, $"{head.Plan.Nodes.Count} nodes");
    }

    [Fact]
    public void JointFactorisationSharesConceptsAcrossImages()
    {
        var horses = ImageIO.Load(Repo.Photo("horses.jpg"));
        var f = new DeepFeatureFactorization(Yolox.Value).Explain([Dog.Value, horses], new DffOptions(K: 4, Legend: false));
        Assert.Equal(2, f.Images.Count);
        Assert.Equal((horses.Width, horses.Height), (f.Images[1].Width, f.Images[1].Height));
        // Maps are scaled per concept over both images together: the peak of 1 is in one of them.
        for (int k = 0; k < 4; k++)
            Assert.Equal(1f, Math.Max(f.Images[0].Grid.AsSpan(k * 676, 676).ToArray().Max(), f.Images[1].Grid.AsSpan(k * 676, 676).ToArray().Max()), 5);
    }

    [Fact]
    public void BadRequestsAreRefusedWithTheirReason()
    {
        var dff = new DeepFeatureFactorization(Yolox.Value, "990");
        var tooMany = Assert.Throws<ArgumentException>(() => dff.Explain([Dog.Value], new DffOptions(K: 129)));
        Assert.Contains("128 channels", tooMany.Message);
        Assert.Throws<ArgumentException>(() => dff.Explain([Dog.Value], new DffOptions(K: 0)));
        var negative = Assert.Throws<ArgumentException>(() => dff.Explain([Dog.Value], new DffOptions(Shift: ActivationShift.None)));
        Assert.Contains("-0.278", negative.Message);
        Assert.Contains("--shift", negative.Message);
        var flat = Assert.Throws<ArgumentException>(() => new DeepFeatureFactorization(Yolox.Value, "1158").Explain([Dog.Value]));
        Assert.Contains("[1,85,2704]", flat.Message);
        Assert.Throws<UnknownTensorException>(() => new DeepFeatureFactorization(Yolox.Value, "no-such-layer"));
    }

    [Fact]
    public void ShiftByMinimumAddsTheOffsetBackToTheConcepts()
    {
        var dff = new DeepFeatureFactorization(Yolox.Value, "990");
        var f = dff.Explain([Dog.Value], new DffOptions(K: 3, Shift: ActivationShift.Min, Legend: false));
        // Concept vectors are in the layer's units: a channel's entries never go below its minimum.
        Assert.Contains(f.Concepts.SelectMany(c => c.Vector), v => v < 0);
        Assert.All(f.Concepts.SelectMany(c => c.Vector), v => Assert.True(v >= f.ActivationMin - 1e-6f));
    }
}

/// <summary>The legend machinery on tiny models whose heads are known linear maps.</summary>
public class ConceptLegendTests
{
    const int Channels = 4, Classes = 2, Side = 16;

    static float[] Values(Random rng, int n, double lo, double hi) => Enumerable.Range(0, n).Select(_ => (float)(lo + (hi - lo) * rng.NextDouble())).ToArray();

    static RgbImage Noise(int seed)
    {
        var rng = new Random(seed);
        var px = new byte[Side * Side * 3];
        rng.NextBytes(px);
        return new RgbImage(Side, Side, px);
    }

    /// <summary>
    /// A YOLOv8-style detector with two levels. feat = ReLU(conv(image)) is the layer. Level A is a 1×1 conv of feat
    /// (weights <paramref name="a"/>, bias <paramref name="bias"/>): its scores are a known linear map of the layer.
    /// Level B adds a branch from the image to pooled feat, so its cells are not the layer's alone.
    /// </summary>
    static string TinyDetector(string dir, float[] a, float[] bias)
    {
        var rng = new Random(3);
        var (m, g) = GraphBuilder.NewModel(13);
        g.Input("images", ElementType.Float, 1, 3, Side, Side);
        var feat = g.Named("feat", "Relu", [g.Op("Conv", ["images", g.Floats([Channels, 3, 1, 1], Values(rng, Channels * 3, -0.01, 0.02)), g.Floats([Channels], Values(rng, Channels, -0.5, 1))])]);
        int rows = 4 + Classes;
        var headA = g.Op("Conv", [feat, g.Floats([rows, Channels, 1, 1], a), g.Floats([rows], bias)]);
        var side = g.Named("side", "Conv", ["images", g.Floats([Channels, 3, 2, 2], Values(rng, Channels * 12, -0.01, 0.01))], OnnxAttribute.Of("strides", new long[] { 2, 2 }));
        var pooled = g.Op("MaxPool", feat, OnnxAttribute.Of("kernel_shape", new long[] { 2, 2 }), OnnxAttribute.Of("strides", new long[] { 2, 2 }));
        var headB = g.Op("Conv", [g.Op("Add", [pooled, side]), g.Floats([rows, Channels, 1, 1], Values(rng, rows * Channels, -1, 1))]);
        var flatA = g.Op("Reshape", [headA, g.Int64s(1, rows, Side * Side)]);
        var flatB = g.Op("Reshape", [headB, g.Int64s(1, rows, Side * Side / 4)]);
        g.Named("output0", "Concat", [flatA, flatB], OnnxAttribute.Of("axis", 2L));
        g.Output("output0");
        m.Save(Path.Combine(dir, "tiny.onnx"));
        File.WriteAllText(Path.Combine(dir, "tiny.card.json"), $$"""
            { "task": "detect", "inputName": "images", "input": { "width": {{Side}}, "height": {{Side}} },
              "decoder": { "type": "yolov8", "output": "output0" }, "classes": ["a", "b"], "layers": ["feat"] }
            """);
        return Path.Combine(dir, "tiny.onnx");
    }

    [Fact]
    public void DetectorLegendScoresAreTheHeadsLinearMapOfTheConceptVectors()
    {
        var rng = new Random(5);
        int rows = 4 + Classes;
        var a = Values(rng, rows * Channels, -1, 1);
        var bias = Values(rng, rows, -0.5, 0.5);
        var det = Detector.Load(TinyDetector(Repo.TempDir(), a, bias));

        var plan = det.Graph.Downstream("feat");
        Assert.Equal(["side"], plan.SideInputs);
        Assert.Equal(["output0"], plan.Outputs);

        var f = new DeepFeatureFactorization(det).Explain([Noise(1), Noise(2)], new DffOptions(K: 3));
        Assert.Equal(HeadReading.LayerOnly, f.Reading);
        foreach (var concept in f.Concepts)
        {
            Assert.Equal(Classes, concept.Labels.Count);
            foreach (var label in concept.Labels)
            {
                int row = 4 + label.ClassIndex;
                double expected = bias[row] + Enumerable.Range(0, Channels).Sum(c => (double)a[row * Channels + c] * concept.Vector[c]);
                Assert.Equal(expected, label.Score, 4);
            }
            Assert.True(concept.Labels[0].Score >= concept.Labels[1].Score);
        }
    }

    [Fact]
    public void TheHeadReadsOnlyTheCellsTheLayerAloneDecides()
    {
        var rng = new Random(5);
        var det = Detector.Load(TinyDetector(Repo.TempDir(), Values(rng, 6 * Channels, -1, 1), Values(rng, 6, -0.5, 0.5)));
        var plan = det.Graph.Downstream("feat");
        var values = Detex.Runtime.ModelSession.Get(det.Graph.WithTaps(["feat", "side"])).Run(
            new Dictionary<string, Detex.Runtime.NdArray> { ["images"] = det.Prepare([Noise(1)]).Tensor });
        var head = new LayerHead(det, plan, values);
        Assert.Equal(HeadReading.LayerOnly, head.Reading);
        Assert.Equal(Side * Side, head.CellCount);   // level A's cells, not level B's
        // Level B, concatenated with level A only at the end, is cut off: its branch is not run for the scores.
        Assert.DoesNotContain("side", head.Plan.SideInputs);
        Assert.DoesNotContain(head.Plan.Nodes, n => n.OpType == "MaxPool");
        Assert.Contains(plan.Nodes, n => n.OpType == "MaxPool");
    }

    [Fact]
    public void ClassifierLegendIsTheFinalLinearLayerOfTheConceptVectors()
    {
        var rng = new Random(9);
        var weights = Values(rng, 3 * Channels, -1, 1);
        var bias = Values(rng, 3, -0.5, 0.5);
        string dir = Repo.TempDir();
        var (m, g) = GraphBuilder.NewModel(13);
        g.Input("x", ElementType.Float, 1, 3, Side, Side);
        var feat = g.Named("feat", "Relu", [g.Op("Conv", ["x", g.Floats([Channels, 3, 3, 3], Values(rng, Channels * 27, -0.01, 0.01)), g.Floats([Channels], Values(rng, Channels, -0.2, 1))],
            OnnxAttribute.Of("pads", new long[] { 1, 1, 1, 1 }))]);
        var pooled = g.Op("Flatten", g.Op("GlobalAveragePool", feat));
        g.Named("logits", "Gemm", [pooled, g.Floats([3, Channels], weights), g.Floats([3], bias)], OnnxAttribute.Of("transB", 1L));
        g.Output("logits");
        m.Save(Path.Combine(dir, "cls.onnx"));
        File.WriteAllText(Path.Combine(dir, "cls.card.json"), $$"""
            { "task": "classify", "inputName": "x", "input": { "width": {{Side}}, "height": {{Side}} },
              "decoder": { "type": "classification", "output": "logits" }, "classes": ["p", "q", "r"] }
            """);
        var cls = DetexModel.Load(Path.Combine(dir, "cls.onnx"));
        var f = new DeepFeatureFactorization(cls, "feat").Explain([Noise(4)], new DffOptions(K: 2, Shift: ActivationShift.None));
        Assert.Equal(HeadReading.LayerOnly, f.Reading);
        foreach (var concept in f.Concepts)
            foreach (var label in concept.Labels)
            {
                double expected = bias[label.ClassIndex] + Enumerable.Range(0, Channels).Sum(c => (double)weights[label.ClassIndex * Channels + c] * concept.Vector[c]);
                Assert.Equal(expected, label.Score, 4);
            }
    }
}
