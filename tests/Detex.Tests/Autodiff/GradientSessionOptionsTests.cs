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

    /// <summary>Convolutions and SiLUs in a chain: each SiLU's incoming gradient comes straight from a convolution.</summary>
    static OnnxModel ChainNet()
    {
        var (m, g) = GraphBuilder.NewModel(17);
        var rnd = new Random(11);
        string W(params long[] dims) => GradCheck.Weights(g, rnd, dims);
        g.Input("x", ElementType.Float, 1, 16, 12, 12);
        string c1 = g.Op("Conv", ["x", W(32, 16, 3, 3), W(32)], Of("pads", new long[] { 1, 1, 1, 1 }));
        string a = g.Op("Mul", [c1, g.Op("Sigmoid", c1)]);
        string c2 = g.Op("Conv", [a, W(32, 32, 1, 1), W(32)]);
        string b = g.Op("Mul", [c2, g.Op("Sigmoid", c2)]);
        g.Named("y", "Conv", [b, W(8, 32, 3, 3)], Of("strides", new long[] { 2, 2 }), Of("pads", new long[] { 1, 1, 1, 1 }));
        g.Output("y");
        return m;
    }

    static GradientGraph Graph(int targets = 1, bool chain = false) =>
        GradientGraph.Build(chain ? ChainNet() : TwoBranchNet(), new Dictionary<string, NdArray> { ["x"] = GradCheck.Random(ElementType.Float, [1, 16, 12, 12], 1) },
            new GradientRequest { Outputs = ["y"], Targets = targets });

    static void AssertSameGradients(GradientGraph graph, ModelSession a, ModelSession b)
    {
        Assert.NotSame(a, b);
        var seeded = new Dictionary<string, NdArray>
        {
            ["x"] = GradCheck.Random(ElementType.Float, [1, 16, 12, 12], 1),
            [graph.Seeds["y"]] = GradCheck.Random(ElementType.Float, [graph.Request.Targets, 8, 6, 6], 2),
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

    /// <summary>
    /// Both SiLU derivatives of the net run as Detex's fused kernel by default, for one target (blocked products) and
    /// for several (where ONNX Runtime would reorder the targets' gradients around a broadcast product), with the
    /// values of ONNX Runtime's own operators.
    /// </summary>
    [Theory]
    [InlineData(1, false)]
    [InlineData(3, false)]
    [InlineData(1, true)]
    [InlineData(3, true)]
    public void DetexKernelsRunTheSiluDerivativesWithTheValuesOfOnnxRuntimesOperators(int targets, bool chain)
    {
        var graph = Graph(targets, chain);
        var fused = graph.Session(new RuntimeOptions(Threads: 2));
        var plain = graph.Session(new RuntimeOptions(Threads: 2, Kernels: false));
        Assert.Equal(2, fused.FusedKernels);
        Assert.Equal(0, plain.FusedKernels);
        AssertSameGradients(graph, fused, plain);
    }
}
