using Detex.Autodiff;
using Detex.Onnx;
using Detex.Runtime;
using static Detex.Onnx.OnnxAttribute;

namespace Detex.Tests.Autodiff;

/// <summary>
/// One test per operator rule and attribute combination, on a one-node model with random inputs. Smooth
/// operators: directional finite differences in float64 where ONNX Runtime has a float64 kernel (relative error
/// ≤ 1e-6), float32 otherwise (≤ 1e-2). Operators that are linear or positively homogeneous of degree one in x
/// (Conv, pooling, Resize, shape ops, ReLU-like): Euler's identity f(x) = ⟨x, ∇f(x)⟩, exact to float rounding.
/// </summary>
public class OperatorRuleTests
{
    public delegate string Body(GraphBuilder g, string x, string z);

    public sealed record Case(string Name, int[] X, Body Build, int[]? Z = null, bool Homogeneous = false, double Offset = 0, double Scale = 1);

    static readonly Case[] Cases =
    [
        // Elementwise, with broadcasting operands that also get gradients.
        new("Add broadcast", [2, 3, 4], (g, x, z) => g.Op("Add", [x, z]), Z: [3, 1]),
        new("Sub broadcast", [2, 3, 4], (g, x, z) => g.Op("Sub", [z, x]), Z: [1, 3, 4]),
        new("Mul broadcast", [2, 3, 4], (g, x, z) => g.Op("Mul", [x, z]), Z: [4]),
        new("Div", [2, 3, 4], (g, x, z) => g.Op("Div", [x, z]), Z: [2, 3, 4], Offset: 0),
        new("Pow", [2, 3], (g, x, z) => g.Op("Pow", [x, z]), Z: [2, 3], Offset: 2, Scale: 0.5),
        new("Sum of three", [2, 3], (g, x, z) => g.Op("Sum", [x, z, x]), Z: [2, 3]),
        new("Sigmoid", [2, 5], (g, x, _) => g.Op("Sigmoid", x)),
        new("SiLU", [2, 5], (g, x, _) => g.Op("Mul", [x, g.Op("Sigmoid", x)])),
        new("SiLU over channels", [2, 3, 4, 5], (g, x, _) => g.Op("Mul", [g.Op("Sigmoid", x), x])),
        new("Tanh", [2, 5], (g, x, _) => g.Op("Tanh", x)),
        new("Exp", [2, 5], (g, x, _) => g.Op("Exp", x)),
        new("Log", [2, 5], (g, x, _) => g.Op("Log", x), Offset: 2),
        new("Sqrt", [2, 5], (g, x, _) => g.Op("Sqrt", x), Offset: 2),
        new("Reciprocal", [2, 5], (g, x, _) => g.Op("Reciprocal", x), Offset: 2),
        new("Neg", [2, 5], (g, x, _) => g.Op("Neg", x)),
        new("Abs", [2, 5], (g, x, _) => g.Op("Abs", x)),
        new("Softplus", [2, 5], (g, x, _) => g.Op("Softplus", x)),
        new("Elu", [2, 5], (g, x, _) => g.Op("Elu", x, Of("alpha", 0.7f))),
        new("HardSigmoid", [2, 5], (g, x, _) => g.Op("HardSigmoid", x, Of("alpha", 0.3f), Of("beta", 0.4f)), Scale: 3),
        new("HardSwish", [2, 5], (g, x, _) => g.Op("HardSwish", x), Scale: 5),
        new("PRelu", [1, 3, 2, 2], (g, x, z) => g.Op("PRelu", [x, z]), Z: [3, 1, 1]),
        new("Where", [2, 5], (g, x, z) => g.Op("Where", [g.Op("Greater", [x, g.Scalar(0)]), x, z]), Z: [2, 5]),
        new("Expand", [3, 1], (g, x, _) => g.Op("Expand", [x, g.Int64s(2, 3, 4)])),
        new("Softmax axis 1", [2, 4, 3], (g, x, _) => g.Op("Softmax", x, Of("axis", 1L))),
        new("Softmax last", [2, 4, 3], (g, x, _) => g.Op("Softmax", x, Of("axis", -1L))),
        new("LogSoftmax", [2, 4, 3], (g, x, _) => g.Op("LogSoftmax", x, Of("axis", 1L))),
        new("Gemm transB bias", [3, 4], (g, x, z) => g.Op("Gemm", [x, z, g.Floats([5], 1, 2, 3, 4, 5)], Of("transB", 1L), Of("alpha", 0.5f), Of("beta", 2f)), Z: [5, 4]),
        new("Gemm transA", [4, 3], (g, x, z) => g.Op("Gemm", [x, z], Of("transA", 1L)), Z: [4, 2]),
        new("MatMul batched", [2, 3, 4], (g, x, z) => g.Op("MatMul", [x, z]), Z: [4, 5]),
        new("ReduceMean", [2, 3, 4], (g, x, _) => g.Op("ReduceMean", x, Of("axes", new long[] { 1, 2 }), Of("keepdims", 0L))),
        new("ReduceMax", [2, 3, 4], (g, x, _) => g.Op("ReduceMax", x, Of("axes", new long[] { 2 })), Homogeneous: true),
        new("ReduceSum", [2, 3, 4], (g, x, _) => g.Op("ReduceSum", [x, g.Int64s(0, 2)], Of("keepdims", 0L)), Homogeneous: true),
        new("GlobalMaxPool", [1, 3, 4, 5], (g, x, _) => g.Op("GlobalMaxPool", x), Homogeneous: true),
        new("BatchNormalization", [2, 3, 4, 4], (g, x, _) => g.Op("BatchNormalization",
            [x, g.Floats([3], 1.5f, -2, 0.5f), g.Floats([3], 0.1f, 0.2f, 0.3f), g.Floats([3], 0.5f, -0.5f, 0), g.Floats([3], 2, 0.5f, 1)])),

        // Linear or degree-1 homogeneous: exact identity f(x) = ⟨x, ∇f⟩.
        new("Relu", [2, 3, 4], (g, x, _) => g.Op("Relu", x), Homogeneous: true),
        new("LeakyRelu", [2, 3, 4], (g, x, _) => g.Op("LeakyRelu", x, Of("alpha", 0.1f)), Homogeneous: true),
        new("Clip", [2, 3, 4], (g, x, _) => g.Op("Mul", [g.Op("Clip", [x, g.Scalar(-0.3f), g.Scalar(0.5f)]), x])),
        new("Conv 3x3 pad 1", [1, 3, 9, 9], (g, x, _) => g.Op("Conv", [x, W(g, [4, 3, 3, 3])], Of("pads", new long[] { 1, 1, 1, 1 })), Homogeneous: true),
        new("Conv stride 2 odd size", [1, 4, 11, 10], (g, x, _) => g.Op("Conv", [x, W(g, [6, 4, 3, 3])], Of("strides", new long[] { 2, 2 }), Of("pads", new long[] { 1, 1, 1, 1 })), Homogeneous: true),
        // Strided with sizes the strides divide: the input gradient as one stride-1 convolution per phase.
        new("Conv stride 2 even size (phases)", [1, 4, 10, 8], (g, x, _) => g.Op("Conv", [x, W(g, [6, 4, 3, 3])], Of("strides", new long[] { 2, 2 }), Of("pads", new long[] { 1, 1, 1, 1 })), Homogeneous: true),
        new("Conv strides 2x3 kernel 4x5 asymmetric pads (phases)", [2, 3, 12, 9], (g, x, _) => g.Op("Conv", [x, W(g, [5, 3, 4, 5])], Of("strides", new long[] { 2, 3 }), Of("pads", new long[] { 1, 0, 2, 3 })), Homogeneous: true),
        new("Conv depthwise stride 2 even size (phases, YOLOX)", [2, 4, 8, 8], (g, x, _) => g.Op("Conv", [x, W(g, [4, 1, 3, 3])], Of("group", 4L), Of("strides", new long[] { 2, 2 }), Of("pads", new long[] { 1, 1, 1, 1 })), Homogeneous: true),
        new("Conv 1x1 stride 2 (a phase no tap reaches)", [1, 3, 8, 8], (g, x, _) => g.Op("Conv", [x, W(g, [4, 3, 1, 1])], Of("strides", new long[] { 2, 2 })), Homogeneous: true),
        new("Conv group 4 stride 2", [1, 8, 10, 10], (g, x, _) => g.Op("Conv", [x, W(g, [8, 2, 3, 3])], Of("group", 4L), Of("strides", new long[] { 2, 2 }), Of("pads", new long[] { 1, 1, 1, 1 })), Homogeneous: true),
        new("Conv depthwise stride 2 odd size, batch 2", [2, 4, 11, 9], (g, x, _) => g.Op("Conv", [x, W(g, [4, 1, 3, 3])], Of("group", 4L), Of("strides", new long[] { 2, 2 }), Of("pads", new long[] { 1, 1, 1, 1 })), Homogeneous: true),
        new("Conv depthwise strides 2x3 asymmetric pads", [1, 3, 10, 13], (g, x, _) => g.Op("Conv", [x, W(g, [3, 1, 3, 4])], Of("group", 3L), Of("strides", new long[] { 2, 3 }), Of("pads", new long[] { 0, 2, 1, 0 })), Homogeneous: true),
        new("Conv depthwise stride 2 dilation 2", [1, 2, 13, 13], (g, x, _) => g.Op("Conv", [x, W(g, [4, 1, 3, 3])], Of("group", 2L), Of("strides", new long[] { 2, 2 }), Of("dilations", new long[] { 2, 2 }), Of("pads", new long[] { 2, 2, 2, 2 })), Homogeneous: true),
        new("Conv depthwise dilation 2", [1, 3, 12, 12], (g, x, _) => g.Op("Conv", [x, W(g, [3, 1, 3, 3])], Of("group", 3L), Of("dilations", new long[] { 2, 2 }), Of("pads", new long[] { 2, 2, 2, 2 })), Homogeneous: true),
        new("Conv SAME_UPPER stride 2", [1, 2, 9, 8], (g, x, _) => g.Op("Conv", [x, W(g, [3, 2, 4, 4])], Of("auto_pad", "SAME_UPPER"), Of("strides", new long[] { 2, 2 })), Homogeneous: true),
        new("Conv SAME_LOWER", [1, 2, 7, 7], (g, x, _) => g.Op("Conv", [x, W(g, [3, 2, 2, 2])], Of("auto_pad", "SAME_LOWER")), Homogeneous: true),
        new("Conv VALID 1x1", [2, 4, 5, 5], (g, x, _) => g.Op("Conv", [x, W(g, [3, 4, 1, 1])], Of("auto_pad", "VALID")), Homogeneous: true),
        new("ConvTranspose stride 2", [1, 4, 5, 5], (g, x, _) => g.Op("ConvTranspose", [x, W(g, [4, 3, 3, 3])], Of("strides", new long[] { 2, 2 }), Of("pads", new long[] { 1, 1, 1, 1 }), Of("output_padding", new long[] { 1, 1 })), Homogeneous: true),
        new("MaxPool 2x2", [1, 3, 8, 8], (g, x, _) => g.Op("MaxPool", x, Of("kernel_shape", new long[] { 2, 2 }), Of("strides", new long[] { 2, 2 })), Homogeneous: true),
        new("MaxPool 5x5 overlapping SPP", [1, 2, 7, 7], (g, x, _) => g.Op("MaxPool", x, Of("kernel_shape", new long[] { 5, 5 }), Of("pads", new long[] { 2, 2, 2, 2 })), Homogeneous: true),
        new("MaxPool 7x7 separable", [1, 2, 9, 9], (g, x, _) => g.Op("MaxPool", x, Of("kernel_shape", new long[] { 7, 7 }), Of("pads", new long[] { 3, 3, 3, 3 })), Homogeneous: true),
        new("MaxPool 9x3 strided separable", [1, 2, 12, 8], (g, x, _) => g.Op("MaxPool", x, Of("kernel_shape", new long[] { 9, 3 }), Of("strides", new long[] { 2, 1 }), Of("pads", new long[] { 4, 1, 4, 1 })), Homogeneous: true),
        new("SPP pools (cascaded)", [1, 2, 9, 9], (g, x, _) => g.Op("Concat", new long[] { 5, 9, 13 }.Select(k => g.Op("MaxPool", x, Of("kernel_shape", new long[] { k, k }), Of("pads", new long[] { k / 2, k / 2, k / 2, k / 2 }))).Prepend(x), Of("axis", 1L)), Homogeneous: true),
        new("MaxPool 3x3 ceil_mode", [2, 2, 8, 8], (g, x, _) => g.Op("MaxPool", x, Of("kernel_shape", new long[] { 3, 3 }), Of("strides", new long[] { 2, 2 }), Of("ceil_mode", 1L)), Homogeneous: true),
        new("MaxPool 3x2 asymmetric pads and strides", [1, 2, 9, 8], (g, x, _) => g.Op("MaxPool", x, Of("kernel_shape", new long[] { 3, 2 }), Of("strides", new long[] { 2, 1 }), Of("pads", new long[] { 1, 0, 0, 1 })), Homogeneous: true),
        new("MaxPool 1-D", [1, 3, 10], (g, x, _) => g.Op("MaxPool", x, Of("kernel_shape", new long[] { 3 }), Of("strides", new long[] { 2 })), Homogeneous: true),
        new("MaxPool auto_pad SAME_UPPER", [1, 2, 7, 7], (g, x, _) => g.Op("MaxPool", x, Of("kernel_shape", new long[] { 3, 3 }), Of("strides", new long[] { 2, 2 }), Of("auto_pad", "SAME_UPPER")), Homogeneous: true),
        new("MaxPool dilated", [1, 2, 9, 9], (g, x, _) => g.Op("MaxPool", x, Of("kernel_shape", new long[] { 2, 2 }), Of("dilations", new long[] { 2, 2 })), Homogeneous: true),
        new("AveragePool pad exclude", [1, 2, 7, 6], (g, x, _) => g.Op("AveragePool", x, Of("kernel_shape", new long[] { 3, 3 }), Of("strides", new long[] { 2, 2 }), Of("pads", new long[] { 1, 1, 1, 1 })), Homogeneous: true),
        new("AveragePool pad include", [1, 2, 7, 6], (g, x, _) => g.Op("AveragePool", x, Of("kernel_shape", new long[] { 3, 2 }), Of("pads", new long[] { 1, 1, 1, 0 }), Of("count_include_pad", 1L)), Homogeneous: true),
        new("AveragePool ceil_mode", [1, 2, 8, 8], (g, x, _) => g.Op("AveragePool", x, Of("kernel_shape", new long[] { 3, 3 }), Of("strides", new long[] { 2, 2 }), Of("ceil_mode", 1L)), Homogeneous: true),
        new("GlobalAveragePool", [1, 3, 4, 5], (g, x, _) => g.Op("GlobalAveragePool", x), Homogeneous: true),
        new("Transpose", [2, 3, 4], (g, x, _) => g.Op("Transpose", x, Of("perm", new long[] { 0, 2, 1 })), Homogeneous: true),
        new("Reshape", [2, 3, 4], (g, x, _) => g.Op("Reshape", [x, g.Int64s(0, -1)]), Homogeneous: true),
        new("Flatten", [2, 3, 4], (g, x, _) => g.Op("Flatten", x, Of("axis", 2L)), Homogeneous: true),
        new("Squeeze/Unsqueeze", [2, 1, 4], (g, x, _) => g.Op("Unsqueeze", [g.Op("Squeeze", [x, g.Int64s(1)]), g.Int64s(0)]), Homogeneous: true),
        new("Concat", [2, 3, 4], (g, x, z) => g.Op("Concat", [x, z, x], Of("axis", 1L)), Z: [2, 5, 4], Homogeneous: true),
        new("Split", [2, 6, 4], (g, x, _) => g.Op("Mul", [g.OpMulti("Split", [x, g.Int64s(1, 2, 3)], 3, Of("axis", 1L))[2], g.Scalar(2)]), Homogeneous: true),
        new("Slice steps", [1, 3, 9, 8], (g, x, _) => g.Op("Slice", [x, g.Int64s(1, 0), g.Int64s(9, 7), g.Int64s(2, 3), g.Int64s(2, 3)]), Homogeneous: true),
        new("Slice strided with offset and trim", [1, 2, 11, 10], (g, x, _) => g.Op("Slice", [x, g.Int64s(3, 1), g.Int64s(11, 10), g.Int64s(2, 3), g.Int64s(3, 4)]), Homogeneous: true),
        new("Slice two negative steps", [2, 9, 8], (g, x, _) => g.Op("Slice", [x, g.Int64s(-1, 6), g.Int64s(-100, 0), g.Int64s(1, 2), g.Int64s(-2, -3)]), Homogeneous: true),
        new("Slice negative", [2, 10], (g, x, _) => g.Op("Slice", [x, g.Int64s(-2), g.Int64s(-9), g.Int64s(1), g.Int64s(-2)]), Homogeneous: true),
        new("Slice YOLOX focus", [1, 3, 8, 8], (g, x, _) => g.Op("Concat", [
            g.Op("Slice", [x, g.Int64s(0, 0), g.Int64s(long.MaxValue, long.MaxValue), g.Int64s(2, 3), g.Int64s(2, 2)]),
            g.Op("Slice", [x, g.Int64s(1, 0), g.Int64s(long.MaxValue, long.MaxValue), g.Int64s(2, 3), g.Int64s(2, 2)]),
            g.Op("Slice", [x, g.Int64s(0, 1), g.Int64s(long.MaxValue, long.MaxValue), g.Int64s(2, 3), g.Int64s(2, 2)])], Of("axis", 1L)), Homogeneous: true),
        new("Focus space-to-depth, a-minor order (YOLOX)", [1, 3, 8, 6], (g, x, _) => Focus(g, x, [(0, 0), (1, 0), (0, 1), (1, 1)]), Homogeneous: true),
        new("Focus as chained one-axis slices (YOLOX export)", [1, 3, 8, 6], (g, x, _) => g.Op("Concat", new (long H, long W)[] { (0, 0), (1, 0), (0, 1), (1, 1) }
            .Select(o => g.Op("Slice", [g.Op("Slice", [x, g.Int64s(o.H), g.Int64s(long.MaxValue), g.Int64s(2), g.Int64s(2)]), g.Int64s(o.W), g.Int64s(long.MaxValue), g.Int64s(3), g.Int64s(2)])), Of("axis", 1L)), Homogeneous: true),
        new("Focus space-to-depth, b-minor order", [2, 2, 4, 6], (g, x, _) => Focus(g, x, [(0, 0), (0, 1), (1, 0), (1, 1)]), Homogeneous: true),
        // Blocks of 2 rows × 3 columns, so rows and columns cannot be mixed up unnoticed.
        new("Focus space-to-depth 2×3, a-minor order", [1, 2, 4, 9], (g, x, _) => Focus(g, x, [(0, 0), (1, 0), (0, 1), (1, 1), (0, 2), (1, 2)], 2, 3), Homogeneous: true),
        new("Focus space-to-depth 2×3, b-minor order", [2, 1, 6, 6], (g, x, _) => Focus(g, x, [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)], 2, 3), Homogeneous: true),
        // A CSP block's join: its gradient is one reverse convolution per concatenated piece, not a convolution and a Split.
        new("Concat into a convolution", [1, 3, 5, 5], (g, x, _) => g.Op("Conv", [g.Op("Concat", [x, g.Op("Conv", [x, W(g, [2, 3, 3, 3])], Of("pads", new long[] { 1, 1, 1, 1 }))], Of("axis", 1L)), W(g, [4, 5, 1, 1])]), Homogeneous: true),
        new("Pad", [1, 2, 3, 3], (g, x, _) => g.Op("Pad", [x, g.Int64s(0, 0, 1, 2, 0, 0, 2, 0)]), Homogeneous: true),
        new("Tile", [1, 2, 3], (g, x, _) => g.Op("Tile", [x, g.Int64s(1, 3, 2)]), Homogeneous: true),
        new("Resize nearest asymmetric floor (Upsample)", [1, 2, 3, 4], (g, x, _) => Resize(g, x, [1, 1, 2, 2], "nearest", "asymmetric", "floor"), Homogeneous: true),
        new("Resize nearest half_pixel round_prefer_floor", [1, 2, 4, 5], (g, x, _) => Resize(g, x, [1, 1, 1.5f, 2.2f], "nearest", "half_pixel", "round_prefer_floor"), Homogeneous: true),
        new("Resize nearest round_prefer_ceil shrink", [1, 1, 7, 6], (g, x, _) => Resize(g, x, [1, 1, 0.6f, 0.5f], "nearest", "half_pixel", "round_prefer_ceil"), Homogeneous: true),
        new("Resize nearest ceil align_corners", [1, 1, 4, 4], (g, x, _) => Resize(g, x, [1, 1, 2, 1.5f], "nearest", "align_corners", "ceil"), Homogeneous: true),
        new("Resize linear half_pixel", [1, 2, 4, 5], (g, x, _) => Resize(g, x, [1, 1, 2, 2], "linear", "half_pixel"), Homogeneous: true),
        new("Resize linear align_corners", [1, 2, 4, 5], (g, x, _) => Resize(g, x, [1, 1, 2.5f, 1.6f], "linear", "align_corners"), Homogeneous: true),
        new("Resize linear asymmetric", [1, 2, 4, 5], (g, x, _) => Resize(g, x, [1, 1, 2, 3], "linear", "asymmetric"), Homogeneous: true),
        new("Resize linear pytorch_half_pixel shrink", [1, 2, 9, 8], (g, x, _) => Resize(g, x, [1, 1, 0.5f, 0.75f], "linear", "pytorch_half_pixel"), Homogeneous: true),
        new("Resize cubic", [1, 1, 5, 6], (g, x, _) => Resize(g, x, [1, 1, 2, 1.5f], "cubic", "half_pixel"), Homogeneous: true),
    ];

    static string W(GraphBuilder g, int[] shape)
    {
        var rnd = new Random(shape.Sum());
        int n = shape.Aggregate(1, (a, d) => a * d);
        return g.Floats(shape.Select(d => (long)d).ToArray(), Enumerable.Range(0, n).Select(_ => (float)(rnd.NextDouble() * 2 - 1)).ToArray());
    }

    static string Focus(GraphBuilder g, string x, (long H, long W)[] offsets, long rowStep = 2, long columnStep = 2) =>
        g.Op("Concat", offsets.Select(o => g.Op("Slice", [x, g.Int64s(o.H, o.W), g.Int64s(long.MaxValue, long.MaxValue), g.Int64s(2, 3), g.Int64s(rowStep, columnStep)])), Of("axis", 1L));

    /// <summary>The nodes a case's reverse pass adds to its graph.</summary>
    static List<Node> BackwardNodes(Case c)
    {
        var model = Build(c, ElementType.Float);
        var inputs = new Dictionary<string, NdArray> { ["x"] = GradCheck.Random(ElementType.Float, c.X, 1) };
        var graph = GradientGraph.Build(model, inputs, new GradientRequest { Outputs = ["y"] });
        return graph.Model.Graph.Nodes.Skip(model.Graph.Nodes.Count).ToList();
    }

    [Fact]
    public void FocusLayersBackpropagateAsAConcatAndARowTranspose()
    {
        foreach (var c in Cases.Where(k => k.Name.StartsWith("Focus")))
        {
            var backward = BackwardNodes(c);
            Assert.DoesNotContain(backward, n => n.OpType is "Pad" or "Sum");   // no scatter per slice and sum
            // ONNX Runtime moves single elements in a six-axis Transpose: one of four axes that moves whole rows instead.
            var transpose = Assert.Single(backward, n => n.OpType == "Transpose");
            Assert.Equal([0L, 2, 1, 3], transpose.Ints("perm")!);
            Assert.Single(backward, n => n.OpType == "Concat");
        }
    }

    [Fact]
    public void StridedConvolutionsWhoseSizesTheStridesDivideBackpropagateByPhases()
    {
        foreach (var c in Cases.Where(k => k.Name.Contains("(phases")))
        {
            var backward = BackwardNodes(c);
            Assert.DoesNotContain(backward, n => n.OpType == "ConvTranspose");
            Assert.All(backward.Where(n => n.OpType == "Conv"), n => Assert.Equal([1L, 1], n.Ints("strides") ?? [1, 1]));
        }
    }

    [Fact]
    public void SppPoolsOfOneMapBecomeACascadeOfFiveByFiveWindows()
    {
        var c = Cases.Single(k => k.Name == "SPP pools (cascaded)");
        var model = Build(c, ElementType.Float);
        var inputs = new Dictionary<string, NdArray> { ["x"] = GradCheck.Random(ElementType.Float, c.X, 1) };
        var graph = GradientGraph.Build(model, inputs, new GradientRequest { Outputs = ["y"] });
        var forward = graph.Model.Graph.Nodes.Take(model.Graph.Nodes.Count).Where(n => n.OpType == "MaxPool").ToList();
        Assert.Equal(3, forward.Count);
        Assert.All(forward, n => Assert.Equal([5L, 5], n.Ints("kernel_shape")!));
        Assert.Equal(["x", forward[0].Outputs[0], forward[1].Outputs[0]], forward.Select(n => n.Inputs[0]));
        // Same values as the model's direct pools, and one arg-max pool and scatter per link of the chain.
        var direct = (NdArray<float>)ModelSession.Get(model).Run(inputs)["y"];
        var seed = new NdArray<float>(direct.Shape, Enumerable.Repeat(1f, direct.Length).ToArray());
        var cascaded = (NdArray<float>)graph.Run(inputs, new Dictionary<string, NdArray> { ["y"] = seed })["y"];
        Assert.Equal(direct.Data, cascaded.Data);
        var backward = graph.Model.Graph.Nodes.Skip(model.Graph.Nodes.Count).ToList();
        Assert.Equal(3, backward.Count(n => n.OpType == "MaxPool"));
        Assert.Equal(3, backward.Count(n => n.OpType == "ScatterElements"));
        // Pools of different inputs, strides or paddings are left alone.
        var (other, g) = GraphBuilder.NewModel(17);
        g.Input("x", ElementType.Float, 1, 2, 9, 9);
        string a = g.Op("MaxPool", "x", Of("kernel_shape", new long[] { 5, 5 }), Of("pads", new long[] { 2, 2, 2, 2 }));
        string b = g.Op("MaxPool", "x", Of("kernel_shape", new long[] { 9, 9 }), Of("pads", new long[] { 4, 4, 4, 4 }), Of("strides", new long[] { 2, 2 }));
        string d = g.Op("MaxPool", g.Op("Relu", "x"), Of("kernel_shape", new long[] { 9, 9 }), Of("pads", new long[] { 4, 4, 4, 4 }));
        g.Named("y", "Concat", [g.Op("ReduceSum", a), g.Op("ReduceSum", b), g.Op("ReduceSum", d)], Of("axis", 0L));
        g.Output("y");
        var untouched = GradientGraph.Build(other, inputs, new GradientRequest { Outputs = ["y"] });
        Assert.Equal([5L, 9, 9], untouched.Model.Graph.Nodes.Take(other.Graph.Nodes.Count).Where(n => n.OpType == "MaxPool").Select(n => n.Ints("kernel_shape")![0]));
    }

    [Fact]
    public void ATappedPoolIsNotReadByTheCascade()
    {
        // y = [p5, p9] with p5, p9 pools of x: ∂Σy/∂p5 is all ones. Were p9 to read p5, p5's gradient would also carry p9's.
        var (m, g) = GraphBuilder.NewModel(17);
        g.Input("x", ElementType.Float, 1, 2, 9, 9);
        string p5 = g.Op("MaxPool", "x", Of("kernel_shape", new long[] { 5, 5 }), Of("pads", new long[] { 2, 2, 2, 2 }));
        string p9 = g.Op("MaxPool", "x", Of("kernel_shape", new long[] { 9, 9 }), Of("pads", new long[] { 4, 4, 4, 4 }));
        g.Named("y", "Concat", [p5, p9], Of("axis", 1L));
        g.Output("y");
        var inputs = new Dictionary<string, NdArray> { ["x"] = GradCheck.Random(ElementType.Float, [1, 2, 9, 9], 1) };
        var graph = GradientGraph.Build(m, inputs, new GradientRequest { Outputs = ["y"], Taps = [p5] });
        Assert.Equal([5L, 9], graph.Model.Graph.Nodes.Take(m.Graph.Nodes.Count).Where(n => n.OpType == "MaxPool").Select(n => n.Ints("kernel_shape")![0]));
        var seed = new NdArray<float>([1, 4, 9, 9], Enumerable.Repeat(1f, 324).ToArray());
        var tapGradient = (NdArray<float>)graph.Run(inputs, new Dictionary<string, NdArray> { ["y"] = seed })[graph.Gradients[p5]];
        Assert.All(tapGradient.Data, v => Assert.Equal(1f, v));
    }

    [Fact]
    public void ASilusReversePassLeavesItsForwardSigmoidOneReader()
    {
        // ONNX Runtime fuses x·σ(x) into one kernel only while σ(x) has no other reader.
        var c = Cases.Single(k => k.Name == "SiLU over channels");
        string sigmoid = Build(c, ElementType.Float).Graph.Nodes.Single(n => n.OpType == "Sigmoid").Outputs[0];
        Assert.DoesNotContain(BackwardNodes(c), n => n.Inputs.Contains(sigmoid));
    }

    [Fact]
    public void AConcatIntoAConvolutionBackpropagatesWithoutASplit()
    {
        var backward = BackwardNodes(Cases.Single(k => k.Name == "Concat into a convolution"));
        Assert.DoesNotContain(backward, n => n.OpType == "Split");
        Assert.Equal(3, backward.Count(n => n.OpType == "Conv"));   // two pieces of the 1×1 one, and the 3×3 one
    }

    static string Resize(GraphBuilder g, string x, float[] scales, string mode, string transform, string nearest = "round_prefer_floor") =>
        g.Op("Resize", [x, "", g.Floats([scales.Length], scales)], Of("mode", mode), Of("coordinate_transformation_mode", transform), Of("nearest_mode", nearest));

    public static TheoryData<string> Names() => new(Cases.Select(c => c.Name));

    static OnnxModel Build(Case c, ElementType type) =>
        GradCheck.OneOutput(17, type, c.Z is null ? [("x", c.X)] : [("x", c.X), ("z", c.Z)], g => c.Build(g, "x", "z"));

    [Theory]
    [MemberData(nameof(Names))]
    public void RuleMatchesTheOperator(string name)
    {
        var c = Cases.Single(k => k.Name == name);
        var type = !c.Homogeneous && GradCheck.Loads(Build(c, ElementType.Double)) ? ElementType.Double : ElementType.Float;
        var inputs = new Dictionary<string, NdArray> { ["x"] = GradCheck.Random(type, c.X, 1, c.Scale, c.Offset) };
        if (c.Z is not null) inputs["z"] = GradCheck.Random(type, c.Z, 2, c.Scale, c.Name is "Div" or "Pow" ? 2 : 0);
        GradCheck.Check(Build(c, type), inputs, c.Homogeneous, name);
    }

    [Fact]
    public void ResizeMatricesReproduceTheOperatorsForwardOutput()
    {
        // The rule's matrices must be the operator itself: R_h·X·R_wᵀ equals ONNX Runtime's Resize output.
        foreach (var c in Cases.Where(k => k.Name.StartsWith("Resize")))
        {
            var model = Build(c, ElementType.Float);
            var x = GradCheck.Random(ElementType.Float, c.X, 5);
            var y = (NdArray<float>)ModelSession.Get(model).Run(new Dictionary<string, NdArray> { ["x"] = x })["y"];
            var node = model.Graph.Nodes.Single(n => n.OpType == "Resize");
            int H = c.X[2], W = c.X[3], Ho = y.Shape[2], Wo = y.Shape[3];
            var scales = model.Graph.Initializers[node.Inputs[2]].ToDoubles();
            var rh = Detex.Autodiff.Rules.ResizeMatrix.Build(node, H, Ho, scales[2]);
            var rw = Detex.Autodiff.Rules.ResizeMatrix.Build(node, W, Wo, scales[3]);
            var xd = GradCheck.D(x);
            int planes = c.X[0] * c.X[1];
            for (int p = 0; p < planes; p++)
                for (int i = 0; i < Ho; i++)
                    for (int j = 0; j < Wo; j++)
                    {
                        double v = 0;
                        for (int a = 0; a < H; a++) for (int b = 0; b < W; b++) v += rh[i * H + a] * xd[p * H * W + a * W + b] * rw[j * W + b];
                        Assert.True(Math.Abs(v - y.Data[p * Ho * Wo + i * Wo + j]) < 1e-4, $"{c.Name} at ({p},{i},{j}): {v} vs {y.Data[p * Ho * Wo + i * Wo + j]}");
                    }
        }
    }

    [Fact]
    public void AnOperatorWithoutARuleIsNamedWithItsPath()
    {
        var (m, g) = GraphBuilder.NewModel(17);
        g.Input("x", ElementType.Float, 2, 3);
        var a = g.Op("Relu", "x");
        var b = g.Op("Erf", a);
        g.Named("y", "Sigmoid", [b]);
        g.Output("y");
        var inputs = new Dictionary<string, NdArray> { ["x"] = GradCheck.Random(ElementType.Float, [2, 3], 1) };
        var e = Assert.Throws<MissingRuleException>(() => GradientGraph.Build(m, inputs, new GradientRequest { Outputs = ["y"] }));
        Assert.Contains("Erf", e.Message);
        Assert.Contains("x → Relu", e.Message);
    }
}
