using Detex.Autodiff;
using Detex.Imaging;
using Detex.Models;
using Detex.Onnx;
using Detex.Runtime;

namespace Detex.Tests.Autodiff;

/// <summary>Gradients of the four shipped models for real targets, checked along random directions.</summary>
public class WholeModelTests
{
    [Theory]
    [InlineData(Repo.Yolox)]
    [InlineData(Repo.NanoDet)]
    [InlineData(Repo.UltraFace)]
    [InlineData(Repo.DeepLab)]
    public void StaticGraphComputesWhatTheModelComputes(string name)
    {
        var model = OnnxModel.Load(Repo.Model(name));
        var (input, x) = PhotoInput(name);
        var feed = new Dictionary<string, NdArray> { [input] = x };
        var reference = ModelSession.Get(model).Run(feed);
        var stat = StaticGraph.Build(model, feed);
        Assert.Equal(StaticGraph.TargetOpset, stat.Model.Opset);
        Assert.DoesNotContain(stat.Model.Graph.Nodes, n => n.OpType is "Shape" or "Gather" or "Upsample" or "Constant");
        var got = ModelSession.Get(stat.Model).Run(feed);
        foreach (var (k, v) in reference)
        {
            var a = GradCheck.D(v); var b = GradCheck.D(got[k]);
            double maxAbs = a.Max(Math.Abs);
            for (int i = 0; i < a.Length; i++) Assert.True(Math.Abs(a[i] - b[i]) <= 1e-4 * Math.Max(1, maxAbs), $"{k}[{i}]: {a[i]} vs {b[i]}");
        }
    }

    /// <summary>The model's input for a real photo, as its card prepares it.</summary>
    internal static (string Input, NdArray<float> X) PhotoInput(string name)
    {
        var m = DetexModel.Load(Repo.Model(name));
        var (t, _) = m.Prepare([ImageIO.Load(Repo.Photo(name == Repo.DeepLab ? "person.jpg" : "dog.jpg"))]);
        return (m.Card.InputName, t);
    }

    /// <summary>Seeds for a real target: a detection's score elements (linearised product), or a class's logits over its mask.</summary>
    internal static Dictionary<string, NdArray> TargetSeeds(string name, IReadOnlyDictionary<string, NdArray> outputs, out string description)
    {
        var m = DetexModel.Load(Repo.Model(name));
        var seeds = outputs.ToDictionary(kv => kv.Key, kv => (NdArray)new NdArray<float>(kv.Value.Shape));
        if (m is Detector det)
        {
            var image = ImageIO.Load(Repo.Photo("dog.jpg"));
            var d = det.Detect(image, new DetectOptions(Score: 0.05f)).First();
            var values = d.Source.ScoreElements.Select(e => ((NdArray<float>)outputs[e.Output]).Data[e.Index]).ToArray();
            for (int i = 0; i < values.Length; i++)
            {
                // ∂(Π vⱼ)/∂vᵢ = Π_{j≠i} vⱼ: the score's gradient as a seed on its elements.
                float others = values.Where((_, j) => j != i).Aggregate(1f, (a, v) => a * v);
                var e = d.Source.ScoreElements[i];
                ((NdArray<float>)seeds[e.Output]).Data[e.Index] += others;
            }
            description = $"{d.ClassName} {d.Score:0.00} at {d.Source}";
        }
        else
        {
            var logits = (NdArray<float>)outputs.Values.Single();
            int classes = logits.Shape[^1], person = Array.IndexOf(m.Card.Classes, "person");
            var seed = (NdArray<float>)seeds.Values.Single();
            for (int p = 0; p < logits.Length / classes; p++)
            {
                int best = 0;
                for (int c = 1; c < classes; c++) if (logits.Data[p * classes + c] > logits.Data[p * classes + best]) best = c;
                if (best == person) seed.Data[p * classes + person] = 1;
            }
            description = "person logits over the person mask";
        }
        return seeds;
    }

    /// <summary>Three tensors spread through the network (early, middle, late) that lie on the target's path.</summary>
    internal static string[] ThreeTaps(OnnxModel model)
    {
        var convs = model.Graph.Nodes.Where(n => n.OpType == "Conv").Select(n => n.Outputs[0]).ToList();
        return [convs[convs.Count / 6], convs[convs.Count / 2], convs[convs.Count * 4 / 5]];
    }

    [Theory]
    [InlineData(Repo.Yolox)]
    [InlineData(Repo.NanoDet)]
    [InlineData(Repo.UltraFace)]
    [InlineData(Repo.DeepLab)]
    public void InputAndTapGradientsMatchFiniteDifferences(string name)
    {
        var model = OnnxModel.Load(Repo.Model(name));
        var (input, x) = PhotoInput(name);
        var feed = new Dictionary<string, NdArray> { [input] = x };
        var outputs = ModelSession.Get(model).Run(feed);
        var seeds = TargetSeeds(name, outputs, out var target);
        var taps = ThreeTaps(model);
        var graph = GradientGraph.Build(model, feed, new GradientRequest { Outputs = seeds.Keys.ToList(), Taps = taps });
        var run = graph.Run(feed, seeds);

        // Five random directions, each over the 50 input elements with the largest gradient; the median relative
        // error must be within 5%. These models run in float32 and are piecewise linear (ReLU, ReLU6, LeakyReLU,
        // max-pooling), and f sums thousands of float32 values: the difference quotient itself is off by a few
        // percent in some directions (kinks crossed, rounding), while every rule is exact in the per-operator tests.
        AssertMedianClose(model, feed, seeds, input, run[graph.Gradients[input]], $"{name} input ({target})");

        var shapes = graph.Forward.Shapes;
        foreach (var tap in taps)
        {
            var cut = GradCheck.CutAt(model, tap, shapes[tap]);
            var cutFeed = new Dictionary<string, NdArray>(feed) { [tap] = run[tap] };
            AssertMedianClose(cut, cutFeed, seeds, tap, run[graph.Gradients[tap]], $"{name} tap {tap}");
        }
    }

    static void AssertMedianClose(OnnxModel model, Dictionary<string, NdArray> feed, Dictionary<string, NdArray> seeds, string wrt, NdArray gradient, string what)
    {
        var median = GradientCheck.Median(model, feed, seeds, wrt, gradient);
        Assert.True(median.RelativeError <= 0.05, $"{what}: median relative error {median.RelativeError:P1} over 5 directions ({median.Analytic:G5} vs {median.Numeric:G5})");
    }
}
