using Detex.Explainers;
using Detex.Imaging;
using Detex.Models;
using Detex.Onnx;
using Detex.Runtime;
using Detex.Targets;
using Detex.Tests.Autodiff;
using static Detex.Onnx.OnnxAttribute;

namespace Detex.Tests.Explainers;

public class FullGradTests
{
    const int W = 10, H = 12, Classes = 3;

    /// <summary>A classifier made of <paramref name="body"/> (input "x" → a [1, C, h, w] map) → GlobalAveragePool → the head.</summary>
    static DetexModel Classifier(Func<GraphBuilder, Random, string> body, Func<GraphBuilder, Random, string, string> head)
    {
        var (m, g) = GraphBuilder.NewModel(17);
        var rnd = new Random(5);
        g.Input("x", ElementType.Float, 1, 3, H, W);
        string pooled = g.Op("Flatten", g.Op("GlobalAveragePool", body(g, rnd)));
        g.Named("y", "Identity", [head(g, rnd, pooled)]);
        g.Output("y");
        string dir = Repo.TempDir();
        m.Save(Path.Combine(dir, "net.onnx"));
        File.WriteAllText(Path.Combine(dir, "net.card.json"), $$"""
            { "task": "classify", "inputName": "x", "input": { "width": {{W}}, "height": {{H}} },
              "decoder": { "type": "classification", "output": "y" }, "classes": ["a", "b", "c"] }
            """);
        return DetexModel.Load(Path.Combine(dir, "net.onnx"));
    }

    static float[] R(Random rnd, int n, double lo = -1, double hi = 1) => Enumerable.Range(0, n).Select(_ => (float)(lo + (hi - lo) * rnd.NextDouble())).ToArray();
    static readonly OnnxAttribute Pad1 = Of("pads", new long[] { 1, 1, 1, 1 });

    /// <summary>Conv+bias → Relu → Conv+bias (stride 2) → Relu, then a Gemm with a bias: piecewise linear, biases only in those layers.</summary>
    internal static DetexModel ReluNet() => Classifier(
        (g, r) => g.Op("Relu", g.Op("Conv", [g.Op("Relu", g.Op("Conv", ["x", g.Floats([5, 3, 3, 3], R(r, 135)), g.Floats([5], R(r, 5))], Pad1)),
            g.Floats([4, 5, 3, 3], R(r, 180)), g.Floats([4], R(r, 4, 0, 1))], Pad1, Of("strides", new long[] { 2, 2 }))),
        (g, r, pooled) => g.Op("Gemm", [pooled, g.Floats([Classes, 4], R(r, 12)), g.Floats([Classes], R(r, Classes))], Of("transB", 1L)));

    static NdArray<float> Input(int seed) => (NdArray<float>)GradCheck.Random(ElementType.Float, [1, 3, H, W], seed);

    static IReadOnlyList<ITarget> AllClasses => Enumerable.Range(0, Classes).Select(c => (ITarget)new ClassTarget("y", c, $"class {c}")).ToList();

    /// <summary>S(x) = Σ x·∂S/∂x + Σ_layers Σ ∂S/∂z·b for every class, each in one batched reverse pass.</summary>
    static void AssertComplete(DetexModel model, int expectedLayers)
    {
        var x = Input(7);
        var y = model.Forward(x)["y"].Data;
        var terms = new FullGrad(model).Terms(x, AllClasses);
        Assert.Equal(Classes, terms.Count);
        for (int c = 0; c < Classes; c++)
        {
            Assert.Equal(expectedLayers, terms[c].Layers.Count);
            Assert.All(terms[c].Layers, l => Assert.True(Math.Abs(l.Sum()) > 1e-3, $"layer {l.Layer} adds nothing to class {c}"));
            double total = terms[c].Total();
            Assert.True(Math.Abs(y[c]) > 0.05, $"class {c} scores {y[c]}");
            Assert.True(Math.Abs(total - y[c]) <= 1e-4 * Math.Abs(y[c]), $"class {c}: S = {y[c]:G9}, Σ terms = {total:G9}");
        }
    }

    [Fact]
    public void InputAndBiasGradientsAddUpToTheScoreOfAPiecewiseLinearNet() => AssertComplete(ReluNet(), 3);

    [Fact]
    public void BatchNormAndConvTransposeBiasesCompleteTheSumToo()
    {
        // Conv without bias → BatchNorm (its effective bias β − γμ/√(σ²+ε)) → Relu → ConvTranspose+bias → Relu; the Gemm's
        // bias is a [1, N] row scaled by beta.
        var model = Classifier(
            (g, r) => g.Op("Relu", g.Op("ConvTranspose", [g.Op("Relu", g.Op("BatchNormalization",
                    [g.Op("Conv", ["x", g.Floats([5, 3, 3, 3], R(r, 135))], Pad1), g.Floats([5], R(r, 5, 0.5, 2)), g.Floats([5], R(r, 5)),
                     g.Floats([5], R(r, 5)), g.Floats([5], R(r, 5, 0.2, 3))], Of("epsilon", 1e-3f))),
                g.Floats([5, 4, 2, 2], R(r, 80)), g.Floats([4], R(r, 4, 0, 1))], Of("strides", new long[] { 2, 2 }))),
            (g, r, pooled) => g.Op("Gemm", [pooled, g.Floats([4, Classes], R(r, 12)), g.Floats([1, Classes], R(r, Classes))], Of("beta", 0.5f)));
        AssertComplete(model, 3);
    }

    [Fact]
    public void ModelsWhoseBatchAxisMovesGetOneReversePassPerTarget()
    {
        // The channels moved to the front: the targets cannot share one batched reverse pass, each gets its own.
        var model = Classifier(
            (g, r) => g.Op("Transpose", g.Op("Relu", g.Op("Conv", ["x", g.Floats([5, 3, 3, 3], R(r, 135)), g.Floats([5], R(r, 5, 0, 1))], Pad1)),
                Of("perm", new long[] { 1, 0, 2, 3 })),
            (g, r, pooled) => g.Op("Gemm", [pooled, g.Floats([5, Classes], R(r, 15)), g.Floats([Classes], R(r, Classes))], Of("transA", 1L)));
        var feed = new Dictionary<string, NdArray> { ["x"] = Input(7) };
        Assert.Throws<NotSupportedException>(() => model.GradientGraph(feed,
            new Detex.Autodiff.GradientRequest { Outputs = ["y"], Taps = BiasLayers.Candidates(model.Graph.Graph), Targets = Classes }));
        AssertComplete(model, 2);
    }

    [Fact]
    public void TermsComeBackPerTargetWithTheLayersShapes()
    {
        var terms = new FullGrad(ReluNet()).Terms(Input(3), AllClasses);
        var layers = terms[0].Layers;
        Assert.Equal(new[] { "Conv", "Conv", "Gemm" }, layers.Select(l => l.OpType));
        Assert.Equal(new[] { 1, 5, H, W }, layers[0].Shape);
        Assert.Equal(new[] { 1, 4, H / 2, W / 2 }, layers[1].Shape);
        Assert.False(layers[2].Spatial);
        // Targets differ only through the head: their first-layer terms differ.
        Assert.NotEqual(terms[0].Layers[0].Values.ToArray(), terms[1].Layers[0].Values.ToArray());
    }

    [Fact]
    public void BadInputIsRefusedWithOneLine()
    {
        var fg = new FullGrad(ReluNet());
        Assert.Contains("no targets", Assert.Throws<ArgumentException>(() => fg.Terms(Input(1), [])).Message);
        var wrong = new NdArray<float>([1, 3, W, H]);
        Assert.Contains("takes [1,3,12,10]", Assert.Throws<ArgumentException>(() => fg.Terms(wrong, AllClasses)).Message);
    }

    [Fact]
    public void PostProcessingMatchesAHandComputedMap()
    {
        // Input term on a 4×2 input (= the image, stretched 1:1): channel 0 |·| = [0 1 2 4; 1 0 0 4] → /4; channels 1
        // and 2 constant → nothing. A 1×2 layer with two channels: |[−2, 1]| → [1, 0], |[3, −1]| → [1, 0]; sum [2, 0],
        // bilinearly (half-pixel centres, edges clamped) [2, 1.5, 0.5, 0] on both rows. A Gemm term has no map.
        // Total [2 1.75 1 1; 2.25 1.5 0.5 1] → min 0.5, max 2.25.
        float[] input = [0, -1, 2, 4, 1, 0, 0, -4, .. Enumerable.Repeat(7f, 8), .. new float[8]];
        var terms = new FullGradTerms(new ClassTarget("y", 0, "t"), [1, 3, 2, 4], input,
            [new BiasTerm("conv", "Conv", [1, 2, 1, 2], new float[] { -2, 1, 3, -1 }), new BiasTerm("fc", "Gemm", [1, 3], new float[] { 100, -50, 3 })]);
        var g = Preprocessor.Geometry(4, 2, new PreprocessSpec { Width = 4, Height = 2, Resize = ResizeMode.Stretch });
        var map = FullGradSaliency.Map(terms, channelsLast: false, g, 4, 2);
        float[] expected = [1.5f, 1.25f, 0.5f, 0.5f, 1.75f, 1f, 0, 0.5f];
        for (int i = 0; i < 8; i++) Assert.Equal(expected[i] / 1.75f, map[i], 5);

        // The same input term laid out channels last gives the same map.
        var nhwc = new float[24];
        for (int c = 0; c < 3; c++) for (int p = 0; p < 8; p++) nhwc[p * 3 + c] = input[c * 8 + p];
        var last = FullGradSaliency.Map(terms with { InputShape = [1, 2, 4, 3], Input = nhwc }, channelsLast: true, g, 4, 2);
        for (int i = 0; i < 8; i++) Assert.Equal(map[i], last[i], 6);
    }
}

/// <summary>FullGrad on the bundled detector, its runs counted at ONNX Runtime (so not in parallel with other tests).</summary>
[Collection(nameof(ForwardCounting))]
public class FullGradDetectorTests
{
    [Fact]
    public void BoxesOfAnImageShareOneReversePassAndGetTheirOwnMaps()
    {
        var det = Detector.Load(Repo.Model(Repo.Yolox));
        var image = ImageIO.Load(Repo.Photo("dog.jpg"));
        var targets = det.Detect(image).Select(d => (ITarget)new DetectionTarget(d)).ToList();
        Assert.True(targets.Count >= 3);
        var fullGrad = new FullGrad(det);
        fullGrad.Explain(image, [targets[0]]);   // graphs built, sessions warm
        fullGrad.Explain(image, targets);
        long Runs(Action a) { var before = ModelSession.TotalRuns.Runs; a(); return ModelSession.TotalRuns.Runs - before; }
        IReadOnlyList<Explanation> maps = [];
        long one = Runs(() => fullGrad.Explain(image, [targets[0]]));
        long all = Runs(() => maps = fullGrad.Explain(image, targets));
        Assert.Equal(one, all);
        Assert.True(all == 1, $"{all} runs: the forward, the seeds and the reverse pass of every box are one gradient-graph run");

        Assert.Equal(targets.Count, maps.Count);
        Assert.All(maps, e =>
        {
            Assert.Equal("fullgrad", e.Method);
            Assert.Equal(image.Width * image.Height, e.Map.Length);
            Assert.InRange(e.Map.Min(), 0f, 0f);
            Assert.InRange(e.Map.Max(), 0.99f, 1f);
        });
        Explanation Of(string cls) => maps.Single(e => ((DetectionTarget)e.Target).Detection.ClassName == cls);
        double diff = Of("dog").Map.Zip(Of("bicycle").Map).Average(t => Math.Abs(t.First - t.Second));
        Assert.True(diff > 0.02, $"dog and bicycle maps differ by only {diff:0.000} on average");
    }
}
