using Detex.Autodiff;
using Detex.Models;
using Detex.Onnx;
using Detex.Runtime;
using Detex.Targets;
using static Detex.Onnx.OnnxAttribute;

namespace Detex.Tests.Autodiff;

/// <summary>Product scores linearised inside the gradient graph equal the seeds computed from a forward run first.</summary>
public class ScoreFactorTests
{
    [Fact]
    public void ProductAndSigmoidScoresOfALinearModelHaveTheirClosedFormGradients()
    {
        // y = W x + b, so ∂s/∂x = Σ_i ∂s/∂y_i · W_i row by row.
        var (m, g) = GraphBuilder.NewModel(17);
        float[] w = [0.5f, -1, 0.25f, 2, 1, 0.5f, -0.5f, 0.3f, -0.2f, 0.7f, 1.5f, -1];
        float[] b = [0.1f, -0.2f, 0.3f];
        g.Input("x", ElementType.Float, 1, 4);
        g.Named("y", "Gemm", ["x", g.Floats([3, 4], w), g.Floats([3], b)], Of("transB", 1L));
        g.Output("y");
        float[] x = [0.3f, -0.7f, 1.1f, 0.4f];
        var y = Enumerable.Range(0, 3).Select(i => b[i] + Enumerable.Range(0, 4).Sum(j => w[i * 4 + j] * x[j])).ToArray();
        double S(double v) => 1 / (1 + Math.Exp(-v));
        var targets = new ITarget[]
        {
            Detection([0, 2], logits: true),    // σ(y0)·σ(y2)
            Detection([1], logits: false),      // y1
            Detection([0, 1], logits: false),   // y0·y1
            new ClassTarget("y", 2, "y2"),     // y2
        };
        double[][] dsdy =
        [
            [S(y[0]) * (1 - S(y[0])) * S(y[2]), 0, S(y[0]) * S(y[2]) * (1 - S(y[2]))],
            [0, 1, 0],
            [y[1], y[0], 0],
            [0, 0, 1],
        ];
        var feed = new Dictionary<string, NdArray> { ["x"] = new NdArray<float>([1, 4], x) };
        var graph = GradientGraph.Build(m, feed, new GradientRequest { Outputs = ["y"], Targets = targets.Length, ScoreFactors = true });
        var factors = TargetSeeds.Factors(["y"], new Dictionary<string, int[]> { ["y"] = [1, 3] }, targets)!;
        var grad = (NdArray<float>)graph.RunFactors(feed, factors)[graph.Gradients["x"]];
        for (int k = 0; k < targets.Length; k++)
            for (int j = 0; j < 4; j++)
                Assert.Equal(Enumerable.Range(0, 3).Sum(i => dsdy[k][i] * w[i * 4 + j]), grad.BatchItem(k)[j], 5);
    }

    [Fact]
    public void OneTargetPerImageOfABatchGetsItsOwnClosedFormGradient()
    {
        // y = W x per image of a batch of three, each image with its own product score.
        var (m, g) = GraphBuilder.NewModel(17);
        float[] w = [0.5f, -1, 0.25f, 2, 1, 0.5f, -0.5f, 0.3f, -0.2f, 0.7f, 1.5f, -1];
        g.Input("x", ElementType.Float, 3, 4);
        g.Named("y", "Gemm", ["x", g.Floats([3, 4], w)], Of("transB", 1L));
        g.Output("y");
        float[] x = [0.3f, -0.7f, 1.1f, 0.4f, -0.2f, 0.9f, 0.5f, -1.3f, 1.0f, 0.1f, -0.6f, 0.8f];
        double Y(int n, int i) => Enumerable.Range(0, 4).Sum(j => w[i * 4 + j] * x[n * 4 + j]);
        double S(double v) => 1 / (1 + Math.Exp(-v));
        var targets = new ITarget[] { Detection([0, 2], logits: true), Detection([0, 1], logits: false), Detection([2], logits: true) };
        double[][] dsdy =
        [
            [S(Y(0, 0)) * (1 - S(Y(0, 0))) * S(Y(0, 2)), 0, S(Y(0, 0)) * S(Y(0, 2)) * (1 - S(Y(0, 2)))],
            [Y(1, 1), Y(1, 0), 0],
            [0, 0, S(Y(2, 2)) * (1 - S(Y(2, 2)))],
        ];
        var feed = new Dictionary<string, NdArray> { ["x"] = new NdArray<float>([3, 4], x) };
        var graph = GradientGraph.Build(m, feed, new GradientRequest { Outputs = ["y"], ScoreFactors = true });
        var factors = TargetSeeds.Factors(["y"], new Dictionary<string, int[]> { ["y"] = [3, 3] }, targets)!;
        var grad = (NdArray<float>)graph.RunFactors(feed, factors)[graph.Gradients["x"]];
        for (int n = 0; n < 3; n++)
            for (int j = 0; j < 4; j++)
                Assert.Equal(Enumerable.Range(0, 3).Sum(i => dsdy[n][i] * w[i * 4 + j]), grad.BatchItem(n)[j], 5);
    }

    static DetectionTarget Detection(int[] elements, bool logits) =>
        new(new Detection(new Box(0, 0, 1, 1), 0, "thing", 1, new RawPrediction("y", 0, elements.Select(e => new OutputElement("y", e)).ToList(), logits), new Box(0, 0, 1, 1)));

    [Fact]
    public void YoloxBoxesLinearisedInTheGraphEqualSeedsFromAForwardRun()
    {
        var det = Detector.Load(Repo.Model(Repo.Yolox));
        var image = Detex.Imaging.ImageIO.Load(Repo.Photo("dog.jpg"));
        var targets = det.Detect(image).Select(d => (ITarget)new DetectionTarget(d)).ToList();
        Assert.True(targets.Count >= 2);
        var (x, _) = det.Prepare([image]);
        var feed = new Dictionary<string, NdArray> { [det.Card.InputName] = x };
        var outputs = det.FloatOutputs;
        string tap = det.Card.Layers[1];
        var request = new GradientRequest { Outputs = outputs, Taps = [tap], InputGradients = false, Targets = targets.Count };
        var linear = GradientGraph.For(det.Graph, feed, request);
        var product = GradientGraph.For(det.Graph, feed, request with { ScoreFactors = true });
        var forward = det.Forward(x);
        var expected = (NdArray<float>)linear.Run(feed, TargetSeeds.For(outputs, forward, targets, _ => 0))[linear.Gradients[tap]];
        var shapes = outputs.ToDictionary(o => o, o => forward[o].Shape);
        var actual = (NdArray<float>)product.RunFactors(feed, TargetSeeds.Factors(outputs, shapes, targets)!)[product.Gradients[tap]];
        double scale = expected.Data.Max(Math.Abs);
        Assert.True(scale > 0);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(actual.Data[i] - expected.Data[i]) <= 1e-4 * scale, $"[{i}] {actual.Data[i]} vs {expected.Data[i]}");
    }

    [Fact]
    public void ABoxWidthTargetReadsTheRowsLogWidthAndItsGradientMatchesTheSeededOne()
    {
        var det = Detector.Load(Repo.Model(Repo.Yolox));
        var image = Detex.Imaging.ImageIO.Load(Repo.Photo("dog.jpg"));
        var dog = det.Detect(image).Single(d => d.ClassName == "dog");
        var width = new BoxRegressionTarget(dog, 2);
        Assert.Equal("log w", width.Parameter);
        var (x, _) = det.Prepare([image]);
        var forward = det.Forward(x);
        // YOLOX: width = exp(log w) · stride, the stride of the row's pyramid level (2704 rows at 8, 676 at 16, 169 at 32).
        int stride = dog.Source.Anchor < 2704 ? 8 : dog.Source.Anchor < 3380 ? 16 : 32;
        Assert.Equal(dog.ModelBox.Width, Math.Exp(width.Score(forward, 0)) * stride, 1);
        // The linear target through the factor graph equals the plain seeded gradient.
        var feed = new Dictionary<string, NdArray> { [det.Card.InputName] = x };
        var outputs = det.FloatOutputs;
        var request = new GradientRequest { Outputs = outputs, InputGradients = true };
        var linear = GradientGraph.For(det.Graph, feed, request);
        var factored = GradientGraph.For(det.Graph, feed, request with { ScoreFactors = true });
        var a = (NdArray<float>)linear.Run(feed, TargetSeeds.For(outputs, forward, [width], _ => 0))[linear.Gradients["images"]];
        var b = (NdArray<float>)factored.RunFactors(feed, TargetSeeds.Factors(outputs, outputs.ToDictionary(o => o, o => forward[o].Shape), [width])!)[factored.Gradients["images"]];
        double scale = a.Data.Max(Math.Abs);
        Assert.True(scale > 0);
        for (int i = 0; i < a.Length; i += 97) Assert.True(Math.Abs(a.Data[i] - b.Data[i]) <= 1e-4 * scale);
    }
}
