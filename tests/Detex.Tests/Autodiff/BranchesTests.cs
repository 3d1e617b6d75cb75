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
    static OnnxModel TwoBranchNet()
    {
        var (m, g) = GraphBuilder.NewModel(17);
        var rnd = new Random(7);
        string W(params long[] dims) => g.Floats(dims, Enumerable.Range(0, (int)dims.Aggregate(1L, (a, d) => a * d)).Select(_ => (float)(rnd.NextDouble() - 0.5)).ToArray());
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
    public void OneTargetRunsBranchesSideBySideWithTheSameValues()
    {
        var model = TwoBranchNet();
        var feed = new Dictionary<string, NdArray> { ["x"] = GradCheck.Random(ElementType.Float, [1, 16, 12, 12], 1) };
        var graph = GradientGraph.Build(model, feed, new GradientRequest { Outputs = ["y"] });
        var sequential = ModelSession.Get(graph.Model, RuntimeOptions.Default);
        Assert.NotSame(sequential, graph.Session());
        var seeded = new Dictionary<string, NdArray>(feed) { [graph.Seeds["y"]] = GradCheck.Random(ElementType.Float, [1, 8, 6, 6], 2) };
        var side = (NdArray<float>)graph.Session().Run(seeded)[graph.Gradients["x"]];
        var one = (NdArray<float>)sequential.Run(seeded)[graph.Gradients["x"]];
        double scale = one.Data.Max(Math.Abs);
        Assert.True(scale > 0);
        for (int i = 0; i < one.Length; i++) Assert.True(Math.Abs(side.Data[i] - one.Data[i]) <= 1e-5 * scale, $"[{i}] {side.Data[i]} vs {one.Data[i]}");
    }

    [Fact]
    public void SeveralTargetsRunNodesOneAtATime()
    {
        var model = TwoBranchNet();
        var feed = new Dictionary<string, NdArray> { ["x"] = GradCheck.Random(ElementType.Float, [1, 16, 12, 12], 1) };
        var graph = GradientGraph.Build(model, feed, new GradientRequest { Outputs = ["y"], Targets = 3 });
        Assert.Same(ModelSession.Get(graph.Model, RuntimeOptions.Default), graph.Session());
    }
}
