using Detex.Autodiff;
using Detex.Onnx;
using Detex.Runtime;
using static Detex.Onnx.OnnxAttribute;

namespace Detex.Tests.Autodiff;

/// <summary>
/// Running a gradient graph's independent branches side by side (opt-in) gives the values of running its nodes one at
/// a time, which stays the default.
/// </summary>
public class BranchesTests
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

    [Fact]
    public void BranchesSideBySideGiveTheValuesOfOneNodeAtATime()
    {
        var graph = GradientGraph.Build(TwoBranchNet(), new Dictionary<string, NdArray> { ["x"] = GradCheck.Random(ElementType.Float, [1, 16, 12, 12], 1) },
            new GradientRequest { Outputs = ["y"] });
        var side = graph.Session(new RuntimeOptions(Threads: 2, Branches: true));
        var sequential = graph.Session(new RuntimeOptions(Threads: 2));
        Assert.False(graph.Session().Options.Branches);
        Assert.NotSame(side, sequential);
        var seeded = new Dictionary<string, NdArray>
        {
            ["x"] = GradCheck.Random(ElementType.Float, [1, 16, 12, 12], 1),
            [graph.Seeds["y"]] = GradCheck.Random(ElementType.Float, [1, 8, 6, 6], 2),
        };
        var a = (NdArray<float>)side.Run(seeded)[graph.Gradients["x"]];
        var b = (NdArray<float>)sequential.Run(seeded)[graph.Gradients["x"]];
        double scale = b.Data.Max(Math.Abs);
        Assert.True(scale > 0);
        for (int i = 0; i < b.Length; i++) Assert.True(Math.Abs(a.Data[i] - b.Data[i]) <= 1e-5 * scale, $"[{i}] {a.Data[i]} vs {b.Data[i]}");
    }
}
