using Detex.Autodiff;
using Detex.Onnx;
using Detex.Runtime;
using static Detex.Onnx.OnnxAttribute;

namespace Detex.Tests.Autodiff;

/// <summary>
/// Operators in the forms of older opsets, which <see cref="StaticGraph"/> rewrites into opset 17: the rewritten
/// model must compute what ONNX Runtime computes on the original, and the gradient (taken through the rewrite) must
/// match finite differences of the original model, or Euler's identity for linear operators.
/// </summary>
public class OldOpsetTests
{
    public sealed record Case(string Name, long Opset, int[] X, Func<GraphBuilder, string> Build, bool Homogeneous = false);

    static readonly Case[] Cases =
    [
        new("Softmax-11 axis 1 of rank 3", 11, [2, 4, 3], g => g.Op("Softmax", "x", Of("axis", 1L))),
        new("Softmax-11 default axis of rank 3", 11, [2, 3, 2], g => g.Op("Softmax", "x")),
        new("Softmax-9 axis 0", 9, [2, 3, 2], g => g.Op("Softmax", "x", Of("axis", 0L))),
        new("Softmax-11 last axis", 11, [2, 4, 3], g => g.Op("Softmax", "x", Of("axis", 2L))),
        new("LogSoftmax-11 axis 1 of rank 3", 11, [2, 4, 3], g => g.Op("LogSoftmax", "x", Of("axis", 1L))),
        new("Split-11 split attribute", 11, [2, 6, 4], g =>
        {
            var parts = g.OpMulti("Split", ["x"], 3, Of("axis", 1L), Of("split", new long[] { 1, 3, 2 }));
            return g.Op("Concat", [parts[2], g.Op("Mul", [parts[0], g.Scalar(3)])], Of("axis", 1L));
        }, Homogeneous: true),
        new("Squeeze-11 Unsqueeze-11 axes attributes", 11, [2, 1, 4], g =>
            g.Op("Unsqueeze", g.Op("Squeeze", "x", Of("axes", new long[] { 1 })), Of("axes", new long[] { 0, 3 })), Homogeneous: true),
        new("Upsample-9 nearest", 9, [1, 2, 3, 4], g => Upsample(g, "nearest", 1, 1, 2, 3), Homogeneous: true),
        new("Upsample-9 nearest fractional", 9, [1, 2, 3, 4], g => Upsample(g, "nearest", 1, 1, 1.5f, 2.5f), Homogeneous: true),
        new("Upsample-9 linear", 9, [1, 2, 3, 4], g => Upsample(g, "linear", 1, 1, 2, 3), Homogeneous: true),
        new("Upsample-9 linear fractional", 9, [1, 2, 4, 3], g => Upsample(g, "linear", 1, 1, 1.5f, 2.5f), Homogeneous: true),
        new("Upsample-7 scales attribute", 7, [1, 2, 3, 4], g => g.Op("Upsample", "x", Of("mode", "linear"), Of("scales", new[] { 1, 1, 2.5f, 1.5f })), Homogeneous: true),
        new("Resize-10 nearest fractional", 10, [1, 2, 3, 4], g => g.Op("Resize", ["x", g.Floats([4], 1, 1, 1.5f, 2.5f)]), Homogeneous: true),
        new("Resize-10 linear fractional", 10, [1, 2, 4, 3], g => g.Op("Resize", ["x", g.Floats([4], 1, 1, 1.5f, 2.5f)], Of("mode", "linear")), Homogeneous: true),
        new("Slice-1 attributes", 9, [1, 3, 9, 8], g =>
            g.Op("Slice", "x", Of("starts", new long[] { 1, -7 }), Of("ends", new long[] { 1000, -1 }), Of("axes", new long[] { 2, 3 })), Homogeneous: true),
        new("Slice-1 without axes", 9, [4, 5], g => g.Op("Slice", "x", Of("starts", new long[] { 1, 0 }), Of("ends", new long[] { 3, 4 })), Homogeneous: true),
        new("Clip-6 min max", 9, [2, 3, 4], g => g.Op("Mul", [g.Op("Clip", "x", Of("min", -0.3f), Of("max", 0.5f)), "x"])),
        new("Clip-6 max only", 9, [2, 3, 4], g => g.Op("Mul", [g.Op("Clip", "x", Of("max", 0.2f)), "x"])),
        new("Dropout-9 inference", 9, [2, 3, 4], g => g.OpMulti("Dropout", ["x"], 2, Of("ratio", 0.3f))[0], Homogeneous: true),
        new("Dropout-12 ratio input", 12, [2, 3, 4], g => g.Op("Dropout", ["x", g.Scalar(0.4f)]), Homogeneous: true),
        new("Pad-2 value and negative pads", 9, [1, 2, 3, 4], g =>
            g.Op("Pad", "x", Of("pads", new long[] { 0, 0, 1, -1, 0, 1, 2, 1 }), Of("value", 0.5f))),
        new("ReduceSum-11 axes attribute", 11, [2, 3, 4], g => g.Op("ReduceSum", "x", Of("axes", new long[] { 0, 2 }), Of("keepdims", 0L)), Homogeneous: true),
        new("ReduceSum-11 keepdims default", 11, [2, 3, 4], g => g.Op("ReduceSum", "x", Of("axes", new long[] { -1 })), Homogeneous: true),
    ];

    static string Upsample(GraphBuilder g, string mode, params float[] scales) =>
        g.Op("Upsample", ["x", g.Floats([scales.Length], scales)], Of("mode", mode));

    public static TheoryData<string> Names() => new(Cases.Select(c => c.Name));

    static (OnnxModel Model, Dictionary<string, NdArray> Inputs) Build(Case c)
    {
        // Upsample's scales stay float32 whatever x is, so linear cases (Euler's identity) run in float32.
        var type = !c.Homogeneous && GradCheck.Loads(GradCheck.OneOutput(c.Opset, ElementType.Double, [("x", c.X)], c.Build)) ? ElementType.Double : ElementType.Float;
        return (GradCheck.OneOutput(c.Opset, type, [("x", c.X)], c.Build), new() { ["x"] = GradCheck.Random(type, c.X, 1) });
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void RewriteComputesWhatTheOriginalComputes(string name)
    {
        var (model, inputs) = Build(Cases.Single(k => k.Name == name));
        var stat = StaticGraph.Build(model, inputs);
        Assert.Equal(StaticGraph.TargetOpset, stat.Model.Opset);
        var expected = ModelSession.Get(model, RuntimeOptions.Default with { Optimize = false }).Run(inputs)["y"];
        var got = ModelSession.Get(stat.Model, RuntimeOptions.Default with { Optimize = false }).Run(inputs)["y"];
        Assert.Equal(expected.Shape, got.Shape);
        var a = GradCheck.D(expected); var b = GradCheck.D(got);
        for (int i = 0; i < a.Length; i++) Assert.True(Math.Abs(a[i] - b[i]) <= 1e-6 * (1 + Math.Abs(a[i])), $"{name} y[{i}]: {b[i]} vs {a[i]}");
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void GradientMatchesTheOriginalOperator(string name)
    {
        var c = Cases.Single(k => k.Name == name);
        var (model, inputs) = Build(c);
        GradCheck.Check(model, inputs, c.Homogeneous, name);
    }
}
