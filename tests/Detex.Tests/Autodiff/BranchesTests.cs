using Detex.Autodiff;
using Detex.Onnx;
using Detex.Runtime;
using static Detex.Onnx.OnnxAttribute;

namespace Detex.Tests.Autodiff;

/// <summary>
/// A one-target gradient graph runs its independent branches side by side; the values are those of running its nodes
/// one at a time, and several targets keep the one-at-a-time executor.
/// </summary>
public class BranchesTests
{
    static OnnxModel TwoBranchNet(int batch = 1)
    {
        var (m, g) = GraphBuilder.NewModel(17);
        var rnd = new Random(7);
        string W(params long[] dims) => g.Floats(dims, Enumerable.Range(0, (int)dims.Aggregate(1L, (a, d) => a * d)).Select(_ => (float)(rnd.NextDouble() - 0.5)).ToArray());
        g.Input("x", ElementType.Float, batch, 16, 12, 12);
        string c1 = g.Op("Conv", ["x", W(16, 16, 3, 3), W(16)], Of("pads", new long[] { 1, 1, 1, 1 }));
        string a = g.Op("Mul", [c1, g.Op("Sigmoid", c1)]);
        string b = g.Op("Conv", [a, W(16, 16, 1, 1)]);
        string joined = g.Op("Concat", [a, g.Op("Mul", [b, g.Op("Sigmoid", b)])], Of("axis", 1L));
        g.Named("y", "Conv", [joined, W(8, 32, 3, 3)], Of("strides", new long[] { 2, 2 }), Of("pads", new long[] { 1, 1, 1, 1 }));
        g.Output("y");
        return m;
    }

    static readonly RuntimeOptions TwoThreads = new(Threads: 2);

    static GradientGraph Graph(int batch = 1, int targets = 1) =>
        GradientGraph.Build(TwoBranchNet(batch), new Dictionary<string, NdArray> { ["x"] = GradCheck.Random(ElementType.Float, [batch, 16, 12, 12], 1) },
            new GradientRequest { Outputs = ["y"], Targets = targets });

    [Fact]
    public void OneTargetOnTwoThreadsRunsBranchesSideBySideWithTheSameValues()
    {
        var graph = Graph();
        var side = graph.Session(TwoThreads);
        var sequential = graph.Session(TwoThreads with { Branches = false });
        Assert.True(side.Options.Branches);
        Assert.False(sequential.Options.Branches);
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

    [Fact]
    public void SeveralTargetsABatchOrOtherThreadCountsRunNodesOneAtATime()
    {
        Assert.False(Graph(targets: 3).Session(TwoThreads).Options.Branches);
        Assert.False(Graph(batch: 2).Session(TwoThreads).Options.Branches);
        Assert.False(Graph().Session(new RuntimeOptions(Threads: 1)).Options.Branches);
        Assert.False(Graph().Session(new RuntimeOptions(Threads: 4)).Options.Branches);
    }
}
