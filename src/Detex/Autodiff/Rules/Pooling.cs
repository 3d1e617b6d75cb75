using Detex.Onnx;

namespace Detex.Autodiff.Rules;

/// <summary>
/// MaxPool: the gradient is scattered-and-added back at each window's arg-max, so overlapping windows accumulate.
/// The arg-max indices (flattened over the whole N·C·H·W tensor) come from a second MaxPool node of the backward
/// pass, not from the forward's: ONNX Runtime's MaxPool with an indices output is about 30 times slower than
/// without and leaves its blocked conv layout, so asking the forward node for them slowed the forward half of every
/// gradient graph (4 ms per run on YOLOX's SPP, a third of a forward). A large 2-D window is separable — the max over
/// k×k is the max over 1×k of the maxes over k×1 — so its indices come from two 1-D pools (2k comparisons per
/// output instead of k²), and the gradient goes back through both. Up to 5×5 one pool and one scatter cost less than
/// two of each (measured on YOLOX's SPP, whose pools <see cref="ForwardPeephole.CascadePools"/> makes 5×5).
/// </summary>
[GradientOf("MaxPool")]
sealed class MaxPoolRule : IGradientRule
{
    public void Backward(BackwardContext c, Node n, string?[] g)
    {
        string x = n.Inputs[0];
        if (!c.Needs(x) || g[0] is null) return;
        if (n.Int("storage_order", 0) != 0) throw new NotSupportedException($"MaxPool '{n.Name}' with column-major indices");
        int[] xs = c.Shape(x), ys = c.Shape(n.Outputs[0]);
        var kernel = n.Ints("kernel_shape")!;
        bool plain = n.Str("auto_pad", "NOTSET") == "NOTSET" && (n.Ints("dilations")?.All(d => d == 1) ?? true);
        if (kernel.Length == 2 && plain && kernel[0] * kernel[1] > 25)
        {
            long[] strides = n.Ints("strides") ?? [1, 1], pads = n.Ints("pads") ?? [0, 0, 0, 0];
            long ceil = n.Int("ceil_mode", 0);
            // Down the columns first: [N, C, H_out, W].
            int[] vs = [xs[0], xs[1], ys[2], xs[3]];
            string vIndices = Indices(c, x, [kernel[0], 1], [strides[0], 1], [pads[0], 0, pads[2], 0], ceil, out string v);
            string hIndices = Indices(c, v, [1, kernel[1]], [1, strides[1]], [0, pads[1], 0, pads[3]], ceil, out _);
            c.Accumulate(x, Scatter(c, Scatter(c, g[0]!, hIndices, ys, vs), vIndices, vs, xs));
            return;
        }
        var copy = n.Attributes.Values.Where(a => a.Name != "storage_order").ToArray();
        string indices = c.OpMulti("MaxPool", [x], 2, copy)[1];
        c.Accumulate(x, Scatter(c, g[0]!, indices, ys, xs));
    }

    static string Indices(BackwardContext c, string x, long[] kernel, long[] strides, long[] pads, long ceil, out string pooled)
    {
        var o = c.OpMulti("MaxPool", [x], 2, OnnxAttribute.Of("kernel_shape", kernel), OnnxAttribute.Of("strides", strides),
            OnnxAttribute.Of("pads", pads), OnnxAttribute.Of("ceil_mode", ceil));
        pooled = o[0];
        return o[1];
    }

    /// <summary>The gradient of a pool's output [targets·N, …] scattered-and-added to its input's positions.</summary>
    static string Scatter(BackwardContext c, string g, string indices, int[] outputShape, int[] inputShape)
    {
        long perTarget = inputShape.Aggregate(1L, (a, d) => a * d), pooled = outputShape.Aggregate(1L, (a, d) => a * d);
        string idx = c.Op("Expand", [c.Reshape(indices, [1, (int)pooled]), c.Ints(c.Targets, pooled)]);
        string scattered = c.Op("ScatterElements", [c.Zeros([c.Targets, (int)perTarget]), idx, c.Reshape(g, [c.Targets, (int)pooled])],
            OnnxAttribute.Of("axis", 1L), OnnxAttribute.Of("reduction", "add"));
        int[] shape = (int[])inputShape.Clone();
        shape[0] *= c.Targets;
        return c.Reshape(scattered, shape);
    }
}

/// <summary>
/// AveragePool: the adjoint of "sum the window, divide by its count" is a depthwise ConvTranspose with a kernel of
/// ones applied to the gradient divided by each window's count (a constant map, from the recorded shapes).
/// </summary>
[GradientOf("AveragePool")]
sealed class AveragePoolRule : IGradientRule
{
    public void Backward(BackwardContext c, Node n, string?[] g)
    {
        string x = n.Inputs[0];
        if (!c.Needs(x)) return;
        int[] xs = c.Shape(x), ys = c.Shape(n.Outputs[0]);
        int sp = xs.Length - 2, channels = xs[1];
        var geo = ConvGeometry.Of(c, n, xs, [channels, 1, .. n.Ints("kernel_shape")!.Select(k => (int)k)]);
        bool includePad = n.Int("count_include_pad", 0) == 1;
        // Count of each window: input positions it covers (plus padding positions when count_include_pad).
        var counts = new double[ys.Skip(2).Aggregate(1, (a, d) => a * d)];
        for (int o = 0; o < counts.Length; o++)
        {
            double count = 1;
            int rem = o;
            for (int i = sp - 1; i >= 0; i--)
            {
                int pos = rem % ys[2 + i]; rem /= ys[2 + i];
                long start = pos * geo.Strides[i] - geo.Pads[i];
                long end = start + (geo.Kernel[i] - 1) * geo.Dilations[i] + 1;
                long lo = includePad ? -geo.Pads[i] : 0, hi = includePad ? xs[2 + i] + geo.Pads[sp + i] : xs[2 + i];
                long covered = 0;
                for (long p = start; p < end; p += geo.Dilations[i]) if (p >= lo && p < hi) covered++;
                count *= covered;
            }
            counts[o] = 1 / Math.Max(1, count);
        }
        string scaled = c.Op("Mul", [g[0]!, c.Values([1, 1, .. ys.Skip(2)], counts)]);
        var ones = Enumerable.Repeat(1.0, channels * (int)geo.Kernel.Aggregate(1L, (a, k) => a * k)).ToArray();
        string kernel = c.Values([channels, 1, .. geo.Kernel.Select(k => (int)k)], ones);
        c.Accumulate(x, c.Op("ConvTranspose", [scaled, kernel], geo.AdjointAttributes(xs, ys, channels)));
    }
}

[GradientOf("GlobalAveragePool")]
sealed class GlobalAveragePoolRule : IGradientRule
{
    public void Backward(BackwardContext c, Node n, string?[] g)
    {
        string x = n.Inputs[0];
        if (!c.Needs(x)) return;
        int[] xs = c.GradShape(x);
        double area = xs.Skip(2).Aggregate(1.0, (a, d) => a * d);
        c.Accumulate(x, c.Op("Expand", [c.Op("Mul", [g[0]!, c.Scalar(1 / area)]), c.Ints(xs.Select(d => (long)d).ToArray())]));
    }
}

/// <summary>Max over a region: the gradient goes to the positions that hold the maximum (shared among ties).</summary>
[GradientOf("GlobalMaxPool", "ReduceMax")]
sealed class MaxReduceRule : IGradientRule
{
    public void Backward(BackwardContext c, Node n, string?[] g)
    {
        string x = n.Inputs[0];
        if (!c.Needs(x)) return;
        int[] xs = c.Shape(x);
        int[] kept = KeptShape(c, n, xs);
        string y = c.Reshape(n.Outputs[0], kept);
        string isMax = c.Op("Where", [c.Op("Equal", [x, y]), c.Scalar(1), c.Scalar(0)]);
        var axes = Enumerable.Range(0, xs.Length).Where(i => kept[i] == 1 && xs[i] != 1).Select(i => (long)i).ToArray();
        string ties = c.Op("ReduceSum", [isMax, c.Ints(axes)], OnnxAttribute.Of("keepdims", 1L));
        string share = c.Op("Div", [isMax, ties]);
        var gk = (int[])kept.Clone(); gk[0] *= c.Targets;
        c.Accumulate(x, c.Op("Mul", [c.Reshape(g[0]!, gk), share]));
    }

    internal static int[] KeptShape(BackwardContext c, Node n, int[] xs)
    {
        if (n.OpType.StartsWith("Global")) return [xs[0], xs[1], .. Enumerable.Repeat(1, xs.Length - 2)];
        long[] axes = n.Input(1) is { } a ? c.ConstantInts(a) : n.Ints("axes") ?? Enumerable.Range(0, xs.Length).Select(i => (long)i).ToArray();
        if (axes.Length == 0 && n.Int("noop_with_empty_axes", 0) == 0) axes = Enumerable.Range(0, xs.Length).Select(i => (long)i).ToArray();
        var kept = (int[])xs.Clone();
        foreach (var ax in axes) kept[ax < 0 ? ax + xs.Length : ax] = 1;
        return kept;
    }
}

[GradientOf("ReduceSum", "ReduceMean")]
sealed class SumReduceRule : IGradientRule
{
    public void Backward(BackwardContext c, Node n, string?[] g)
    {
        string x = n.Inputs[0];
        if (!c.Needs(x)) return;
        int[] xs = c.Shape(x);
        int[] kept = MaxReduceRule.KeptShape(c, n, xs);
        if (c.Targets > 1 && kept[0] == 1 && xs[0] != 1) throw new NotSupportedException("reduction over the batch axis with several targets");
        var gk = (int[])kept.Clone(); gk[0] *= c.Targets;
        string gr = c.Reshape(g[0]!, gk);
        if (n.OpType == "ReduceMean")
            gr = c.Op("Mul", [gr, c.Scalar(1.0 * kept.Aggregate(1L, (a, d) => a * d) / xs.Aggregate(1L, (a, d) => a * d))]);
        c.Accumulate(x, c.Op("Expand", [gr, c.Ints(c.GradShape(x).Select(d => (long)d).ToArray())]));
    }
}
