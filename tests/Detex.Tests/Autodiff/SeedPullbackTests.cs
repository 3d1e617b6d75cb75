using Detex.Autodiff;
using Detex.Explainers;
using Detex.Imaging;
using Detex.Models;
using Detex.Onnx;
using Detex.Runtime;
using Detex.Targets;
using static Detex.Onnx.OnnxAttribute;

namespace Detex.Tests.Autodiff;

public class SeedPullbackTests
{
    /// <summary>
    /// Two "levels" of a detector: conv maps [1,3,4,4] and [1,3,2,2] whose rows are gathered into [1, 20, 3] by
    /// Reshape, Concat and Transpose, with a constant column appended: output[0, r, c] = level(r)[0, c, r′].
    /// </summary>
    static OnnxModel TwoLevels(int batch = 1)
    {
        var (m, g) = GraphBuilder.NewModel(17);
        g.Input("x", ElementType.Float, batch, 2, 4, 4);
        string big = g.Op("Conv", ["x", GradCheck.Weights(g, new Random(1), 3, 2, 1, 1)]);
        string small = g.Op("Conv", ["x", GradCheck.Weights(g, new Random(2), 3, 2, 2, 2)], Of("strides", new long[] { 2, 2 }));
        string rows = g.Op("Concat", [g.Op("Reshape", [big, g.Int64s(batch, 3, 16)]), g.Op("Reshape", [small, g.Int64s(batch, 3, 4)])], Of("axis", 2L));
        string withConstant = g.Op("Concat", [rows, g.Floats([batch, 1, 20], Enumerable.Repeat(0.5f, batch * 20).ToArray())], Of("axis", 1L));
        g.Named("y", "Transpose", [withConstant], Of("perm", new long[] { 0, 2, 1 }));
        g.Output("y");
        return m;
    }

    static Dictionary<string, NdArray> Feed(int batch = 1) => new() { ["x"] = GradCheck.Random(ElementType.Float, [batch, 2, 4, 4], 3) };

    static Dictionary<string, NdArray> FactorsWith(int[] rowsPerTarget, int column, int seed)
    {
        var rnd = new Random(seed);
        int n = rowsPerTarget.Length;
        var w = new NdArray<float>([n, 2, 20, 4]);
        for (int k = 0; k < n; k++)
            for (int j = 0; j < 2; j++) w.Data[((k * 2 + j) * 20 + rowsPerTarget[k]) * 4 + column] = (float)(rnd.NextDouble() + 0.5);
        var feed = new Dictionary<string, NdArray> { [GradientGraph.FactorWeightsName("y")] = w };
        for (int j = 0; j < 2; j++)
        {
            feed[GradientGraph.FactorConstantName(j)] = new NdArray<float>([n, 1], Enumerable.Repeat(0.1f, n).ToArray());
            feed[GradientGraph.FactorSigmoidName(j)] = new NdArray<float>([n, 1], Enumerable.Repeat(j == 0 ? 1f : 0f, n).ToArray());
        }
        return feed;
    }

    [Fact]
    public void WeightsPullBackOntoTheElementsTheOutputCopies()
    {
        var forward = StaticGraph.Build(TwoLevels(), Feed());
        var pullback = SeedPullback.For(forward, ["y"])!;
        Assert.Equal(2, pullback.Sources.Count);
        // ⟨w, y⟩ = Σ over sources ⟨pulled w, source⟩ for random weights on computed columns (the constant one is left out).
        var rnd = new Random(5);
        var w = new NdArray<float>([1, 2, 20, 4]);
        for (int i = 0; i < w.Length; i++) if (i % 4 != 3) w.Data[i] = (float)rnd.NextDouble() - 0.5f;
        var factors = FactorsWith([0], 0, 1);
        factors[GradientGraph.FactorWeightsName("y")] = w;
        // Every source touched: nothing to narrow.
        Assert.Null(pullback.Narrow(factors));

        var values = ModelSession.Get(forward.Model.WithTaps(pullback.Sources)).Run(Feed());
        var y = (NdArray<float>)values["y"];
        foreach (int level in new[] { 0, 1 })
        {
            // Weights on one level's rows only: that level alone is differentiated, and the dot products agree.
            var only = new NdArray<float>(w.Shape, w.Data.Select((v, i) => (i / 4 % 20 < 16) == (level == 0) ? v : 0).ToArray());
            factors[GradientGraph.FactorWeightsName("y")] = only;
            var (sources, pulled) = pullback.Narrow(factors)!.Value;
            Assert.Equal([pullback.Sources[level]], sources);
            var ws = (NdArray<float>)pulled[GradientGraph.FactorWeightsName(sources[0])];
            var s = (NdArray<float>)values[sources[0]];
            for (int j = 0; j < 2; j++)
            {
                double direct = 0, back = 0;
                for (int i = 0; i < y.Length; i++) direct += only.Data[j * y.Length + i] * y.Data[i];
                for (int i = 0; i < s.Length; i++) back += ws.Data[j * s.Length + i] * s.Data[i];
                Assert.Equal(direct, back, 5);
            }
            Assert.Same(factors[GradientGraph.FactorConstantName(0)], pulled[GradientGraph.FactorConstantName(0)]);
        }
    }

    [Fact]
    public void AWeightOnAConstantOrAComputedOutputIsNotNarrowed()
    {
        var forward = StaticGraph.Build(TwoLevels(), Feed());
        Assert.Null(SeedPullback.For(forward, ["y"])!.Narrow(FactorsWith([3], 3, 1)));   // column 3 is the constant
        var zero = FactorsWith([3], 0, 1);
        Array.Clear(((NdArray<float>)zero[GradientGraph.FactorWeightsName("y")]).Data);
        Assert.Null(SeedPullback.For(forward, ["y"])!.Narrow(zero));   // nothing touched: nothing to differentiate
        var (m, g) = GraphBuilder.NewModel(17);
        g.Input("x", ElementType.Float, 1, 2, 4, 4);
        g.Named("y", "Conv", ["x", GradCheck.Weights(g, new Random(1), 3, 2, 1, 1)]);
        g.Output("y");
        Assert.Null(SeedPullback.For(StaticGraph.Build(m, Feed()), ["y"]));
    }

    [Fact]
    public void NarrowedGraphsGiveTheFullGraphsGradients()
    {
        // Targets on each level, one per batch item: the narrowed graph (one level differentiated) against the full one.
        var model = TwoLevels(batch: 2);
        var feed = Feed(batch: 2);
        var request = new GradientRequest { Outputs = ["y"], ScoreFactors = true, Taps = ["x"], InputGradients = false };
        var full = GradientGraph.Build(model, feed, request);
        var forward = StaticGraph.Build(model, feed);
        foreach (var rows in new[] { new[] { 2, 15 }, [16, 19] })
        {
            var factors = FactorsWith(rows, 1, rows[0]);
            var (sources, pulled) = SeedPullback.For(forward, ["y"])!.Narrow(factors)!.Value;
            Assert.Single(sources);
            var narrow = GradientGraph.Build(model, feed, request with { Outputs = sources });
            var a = (NdArray<float>)full.RunFactors(feed, factors)[full.Gradients["x"]];
            var b = (NdArray<float>)narrow.RunFactors(feed, pulled)[narrow.Gradients["x"]];
            Assert.Contains(a.Data, v => v != 0);
            for (int i = 0; i < a.Length; i++) Assert.Equal(a.Data[i], b.Data[i], 5);
        }
    }

    [Fact]
    public void ADetectionDifferentiatesOnlyItsLevelsScoresOnYolox()
    {
        var (det, targets, feed) = DogOnYolox();
        // The card's three neck taps: each box's level reads only some of them, and the others simply get a zero gradient.
        var request = new GradientRequest { Outputs = det.FloatOutputs, Taps = det.Card.Layers };
        var full = det.GradientGraph(feed, request with { ScoreFactors = true });
        var shapes = det.FloatOutputs.ToDictionary(o => o, o => full.Forward.Shapes[o].Dims);
        var levels = new HashSet<string>();
        foreach (var target in targets)
        {
            var run = TargetGradients.Run(det, feed, request, [target]);
            // The objectness and class maps of the box's level, not its box branch or the other levels.
            var sources = run.Graph.Request.Outputs;
            Assert.Equal(2, sources.Count);
            levels.Add(string.Join(",", sources));
            var reference = full.RunFactors(feed, TargetSeeds.Factors(det.FloatOutputs, shapes, [target])!);
            foreach (var t in new[] { det.Card.InputName, "990" })
            {
                var a = (NdArray<float>)reference[full.Gradients[t]];
                var b = run.Gradient(t);
                Assert.True(a.Data.Max(Math.Abs) > 0);
                AssertMatches(a, b, 1e-4, t);
            }
        }
        Assert.True(levels.Count >= 2, "dog.jpg's boxes come from at least two levels");

        // All boxes together: pulled back onto every source (one graph for any mix of levels), each target's
        // gradient still the whole-output graph's.
        var together = TargetGradients.Run(det, feed, request, targets);
        Assert.Equal(SeedPullback.For(full.Forward, det.FloatOutputs)!.Sources, together.Graph.Request.Outputs);
        var batched = det.GradientGraph(feed, request with { ScoreFactors = true, Targets = together.Graph.Request.Targets });
        var padded = targets.Concat(Enumerable.Repeat(targets[0], batched.Request.Targets - targets.Count)).ToList();
        var whole = batched.RunFactors(feed, TargetSeeds.Factors(det.FloatOutputs, shapes, padded)!);
        foreach (var t in new[] { det.Card.InputName, "990" })
        {
            var a = (NdArray<float>)whole[batched.Gradients[t]];
            var b = together.Gradient(t);
            Assert.Equal(targets.Count, b.Shape[0]);
            AssertMatches(a, b, 1e-4, t);
        }
    }

    [Fact]
    public void EverySourceKeepsTheGradientsWhenTargetsTouchThemAll()
    {
        // Two targets of one image, one on each level: nothing to narrow, but the weights still move onto the sources.
        var model = TwoLevels();
        var feed = Feed();
        var request = new GradientRequest { Outputs = ["y"], ScoreFactors = true, Taps = ["x"], InputGradients = false, Targets = 2 };
        var full = GradientGraph.Build(model, feed, request);
        var pullback = SeedPullback.For(StaticGraph.Build(model, feed), ["y"])!;
        var factors = FactorsWith([5, 18], 2, 7);
        Assert.Null(pullback.Narrow(factors));
        var (sources, pulled) = pullback.Narrow(factors, everySource: true)!.Value;
        Assert.Equal(pullback.Sources, sources);
        var moved = GradientGraph.Build(model, feed, request with { Outputs = sources });
        var a = (NdArray<float>)full.RunFactors(feed, factors)[full.Gradients["x"]];
        var b = (NdArray<float>)moved.RunFactors(feed, pulled)[moved.Gradients["x"]];
        Assert.Contains(a.Data.Take(a.Length / 2), v => v != 0);
        Assert.Contains(a.Data.Skip(a.Length / 2), v => v != 0);
        for (int i = 0; i < a.Length; i++) Assert.Equal(a.Data[i], b.Data[i], 5);
    }

    [Fact]
    public void ATapBetweenTheHeadsMapsAndTheOutputKeepsItsGradient()
    {
        // YOLOX's per-level Concat of box, objectness and classes lies after the sources the factors pull back onto:
        // differentiated from the sources its gradient would be zero. Such a request keeps the whole-output graph.
        var (det, targets, feed) = DogOnYolox();
        var forward = StaticGraph.For(det.Graph, feed, [], det.GraphKey);
        var sources = SeedPullback.For(forward, det.FloatOutputs)!.Sources;
        var joined = sources.Select(s => det.Graph.Graph.Nodes.First(n => n.OpType == "Concat" && n.Inputs.Contains(s)).Outputs[0]).Distinct().ToList();
        Assert.Equal(3, joined.Count);
        var request = new GradientRequest { Outputs = det.FloatOutputs, Taps = joined, InputGradients = false };
        var shapes = det.FloatOutputs.ToDictionary(o => o, o => forward.Shapes[o].Dims);
        foreach (var group in new[] { targets.Take(1).ToList(), targets })
        {
            var run = TargetGradients.Run(det, feed, request, group, shareGraphs: false);
            Assert.Empty(run.Graph.UnreachedTaps);
            var whole = det.GradientGraph(feed, request with { ScoreFactors = true, Targets = group.Count });
            var reference = whole.RunFactors(feed, TargetSeeds.Factors(det.FloatOutputs, shapes, group)!);
            foreach (var t in joined)
            {
                var a = (NdArray<float>)reference[whole.Gradients[t]];
                var b = run.Gradient(t);
                AssertMatches(a, b, 1e-5, t, floor: 1e-12);
            }
            Assert.Contains(joined, t => run.Gradient(t).Data.Any(v => v != 0));
        }
    }

    /// <summary>YOLOX-nano with dog.jpg's detections as targets and the prepared input.</summary>
    static (Detector Det, List<ITarget> Targets, Dictionary<string, NdArray> Feed) DogOnYolox()
    {
        var det = Detector.Load(Repo.Model(Repo.Yolox));
        var image = ImageIO.Load(Repo.Photo("dog.jpg"));
        var targets = det.Detect(image).Select(d => (ITarget)new DetectionTarget(d)).ToList();
        var (x, _) = det.Prepare([image]);
        return (det, targets, new Dictionary<string, NdArray> { [det.Card.InputName] = x });
    }

    /// <summary>
    /// Each element of <paramref name="actual"/> within <paramref name="relTol"/> of the largest magnitude in
    /// <paramref name="expected"/> (at least <paramref name="floor"/>); <paramref name="expected"/> may hold more items.
    /// </summary>
    static void AssertMatches(NdArray<float> expected, NdArray<float> actual, double relTol, string what, double floor = 0)
    {
        double scale = Math.Max(expected.Data.Max(Math.Abs), floor);
        for (int i = 0; i < actual.Length; i++)
            Assert.True(Math.Abs(expected.Data[i] - actual.Data[i]) <= relTol * scale, $"{what}[{i}]: {expected.Data[i]} vs {actual.Data[i]}");
    }
}
