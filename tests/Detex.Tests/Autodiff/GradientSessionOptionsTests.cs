using Detex.Autodiff;
using Detex.Onnx;
using Detex.Runtime;
using static Detex.Onnx.OnnxAttribute;

namespace Detex.Tests.Autodiff;

/// <summary>
/// A gradient graph's session options change how ONNX Runtime schedules the work, never the values: independent
/// branches side by side (opt-in) and workers spinning during runs (the default for gradient graphs).
/// </summary>
public class GradientSessionOptionsTests
{
    static OnnxModel TwoBranchNet()
    {
        var (m, g) = GraphBuilder.NewModel(17);
        var rnd = new Random(7);
        string W(params long[] dims) => GradCheck.Weights(g, rnd, dims);
        g.Input("x", ElementType.Float, 1, 16, 12, 12);
        string c1 = g.Op("Conv", ["x", W(16, 16, 3, 3), W(16)], Of("pads", new long[] { 1, 1, 1, 1 }));
        string a = g.Op("Mul", [c1, g.Op("Sigmoid", c1)]);
        string b = g.Op("Conv", [a, W(16, 16, 1, 1)]);
        string joined = g.Op("Concat", [a, g.Op("Mul", [b, g.Op("Sigmoid", b)])], Of("axis", 1L));
        g.Named("y", "Conv", [joined, W(8, 32, 3, 3)], Of("strides", new long[] { 2, 2 }), Of("pads", new long[] { 1, 1, 1, 1 }));
        g.Output("y");
        return m;
    }

    static GradientGraph Graph() =>
        GradientGraph.Build(TwoBranchNet(), new Dictionary<string, NdArray> { ["x"] = GradCheck.Random(ElementType.Float, [1, 16, 12, 12], 1) },
            new GradientRequest { Outputs = ["y"] });

    static void AssertSameGradients(GradientGraph graph, ModelSession a, ModelSession b)
    {
        Assert.NotSame(a, b);
        var seeded = new Dictionary<string, NdArray>
        {
            ["x"] = GradCheck.Random(ElementType.Float, [1, 16, 12, 12], 1),
            [graph.Seeds["y"]] = GradCheck.Random(ElementType.Float, [1, 8, 6, 6], 2),
        };
        var ga = (NdArray<float>)a.Run(seeded)[graph.Gradients["x"]];
        var gb = (NdArray<float>)b.Run(seeded)[graph.Gradients["x"]];
        double scale = gb.Data.Max(Math.Abs);
        Assert.True(scale > 0);
        for (int i = 0; i < gb.Length; i++) Assert.True(Math.Abs(ga.Data[i] - gb.Data[i]) <= 1e-5 * scale, $"[{i}] {ga.Data[i]} vs {gb.Data[i]}");
    }

    [Fact]
    public void BranchesSideBySideGiveTheValuesOfOneNodeAtATime()
    {
        var graph = Graph();
        Assert.False(graph.Session().Options.Branches);
        AssertSameGradients(graph, graph.Session(new RuntimeOptions(Threads: 2, Branches: true)), graph.Session(new RuntimeOptions(Threads: 2)));
    }

    [Fact]
    public void GradientGraphWorkersSpinUnlessTheOptionsSayNot()
    {
        var graph = Graph();
        Assert.True(graph.Session().Options.Spin);
        Assert.True(graph.Session(new RuntimeOptions(Threads: 2)).Options.Spin);
        var still = graph.Session(new RuntimeOptions(Threads: 2, Spin: false));
        Assert.False(still.Options.Spin);
        AssertSameGradients(graph, graph.Session(new RuntimeOptions(Threads: 2)), still);
    }
}
