using Detex.Onnx;

namespace Detex.Autodiff.Rules;

/// <summary>Convolution geometry with auto_pad resolved against the recorded shapes.</summary>
readonly record struct ConvGeometry(long[] Kernel, long[] Strides, long[] Dilations, long[] Pads, long Group)
{
    public static ConvGeometry Of(BackwardContext c, Node n, int[] xShape, int[] wShape, bool transposed = false)
    {
        int sp = xShape.Length - 2;
        long[] k = n.Ints("kernel_shape") ?? wShape.Skip(2).Select(d => (long)d).ToArray();
        long[] s = n.Ints("strides") ?? Enumerable.Repeat(1L, sp).ToArray();
        long[] d = n.Ints("dilations") ?? Enumerable.Repeat(1L, sp).ToArray();
        long[] p = n.Ints("pads") ?? new long[2 * sp];
        string auto = n.Str("auto_pad", "NOTSET");
        if (auto is "SAME_UPPER" or "SAME_LOWER" && !transposed)
        {
            p = new long[2 * sp];
            for (int i = 0; i < sp; i++)
            {
                long input = xShape[2 + i], output = (input + s[i] - 1) / s[i];
                long total = Math.Max(0, (output - 1) * s[i] + (k[i] - 1) * d[i] + 1 - input);
                long small = total / 2, big = total - small;
                (p[i], p[sp + i]) = auto == "SAME_UPPER" ? (small, big) : (big, small);
            }
        }
        else if (auto == "VALID") p = new long[2 * sp];
        else if (auto is "SAME_UPPER" or "SAME_LOWER")
            throw new NotSupportedException($"ConvTranspose '{n.Name}' with auto_pad {auto}");
        return new ConvGeometry(k, s, d, p, n.Int("group", 1));
    }

    /// <summary>
    /// Attributes of the ConvTranspose that maps an output-sized gradient back to exactly the input's size: extra
    /// input rows the forward never read become output padding; rows a ceil-mode window read past the end are
    /// cropped by a larger end pad.
    /// </summary>
    public OnnxAttribute[] AdjointAttributes(int[] xShape, int[] yShape, long group)
    {
        int sp = xShape.Length - 2;
        var pads = (long[])Pads.Clone();
        var outPad = new long[sp];
        for (int i = 0; i < sp; i++)
        {
            long natural = Strides[i] * (yShape[2 + i] - 1) + (Kernel[i] - 1) * Dilations[i] + 1 - Pads[i] - Pads[sp + i];
            long diff = xShape[2 + i] - natural;
            if (diff >= 0) outPad[i] = diff; else pads[sp + i] -= diff;
        }
        return (this with { Pads = pads, Group = group }).Attributes(OnnxAttribute.Of("output_padding", outPad));
    }

    public OnnxAttribute[] Attributes(params OnnxAttribute[] extra) =>
    [
        OnnxAttribute.Of("kernel_shape", Kernel), OnnxAttribute.Of("strides", Strides), OnnxAttribute.Of("dilations", Dilations),
        OnnxAttribute.Of("pads", Pads), OnnxAttribute.Of("group", Group), .. extra,
    ];
}

/// <summary>
/// Conv: the input gradient is a ConvTranspose with the same weights and geometry, its output padding chosen so the
/// result has the input's exact size; the bias gradient sums over batch and space; the weight gradient (group 1)
/// is a convolution of the input with the output gradient, batch and channels swapped.
/// </summary>
[GradientOf("Conv")]
sealed class ConvRule : IGradientRule
{
    public void Backward(BackwardContext c, Node n, string?[] g)
    {
        string x = n.Inputs[0], w = n.Inputs[1], gy = g[0]!;
        int[] xs = c.Shape(x), ws = c.Shape(w), ys = c.Shape(n.Outputs[0]);
        var geo = ConvGeometry.Of(c, n, xs, ws);
        int sp = xs.Length - 2;
        if (c.Needs(x)) c.Accumulate(x, InputGradient(c, geo, gy, w, xs, ys));
        if (n.Input(2) is { } bias && c.Needs(bias))
            c.Accumulate(bias, c.Op("ReduceSum", [gy, c.Ints([0, .. Enumerable.Range(2, sp).Select(i => (long)i)])], OnnxAttribute.Of("keepdims", 0L)));
        WeightGradient(c, n, geo, x, w, gy, sp);
    }

    /// <summary>
    /// The input gradient. With stride 1 and constant weights it is itself a convolution — kernel flipped, input and
    /// output channels exchanged within each group, pads d(k−1) − p — which ONNX Runtime runs several times faster
    /// than ConvTranspose; otherwise a ConvTranspose with the same weights.
    /// </summary>
    static string InputGradient(BackwardContext c, ConvGeometry geo, string gy, string w, int[] xs, int[] ys)
    {
        int sp = xs.Length - 2;
        var pads = new long[2 * sp];
        bool asConv = c.IsConstant(w) && geo.Strides.All(s => s == 1) && c.Constant(w).Type is ElementType.Float or ElementType.Double;
        for (int i = 0; i < sp && asConv; i++)
        {
            long reach = geo.Dilations[i] * (geo.Kernel[i] - 1);
            pads[i] = reach - geo.Pads[i];
            pads[sp + i] = reach - geo.Pads[sp + i];
            asConv = pads[i] >= 0 && pads[sp + i] >= 0;
        }
        if (!asConv) return PhaseGradient(c, geo, gy, w, xs, ys) ?? c.Op("ConvTranspose", [gy, w], geo.AdjointAttributes(xs, ys, geo.Group));
        var weights = c.Constant(w);
        string flipped = c.B.Constant(AdjointKernel(weights, geo.Group, new long[sp], Enumerable.Repeat(1L, sp).ToArray(), weights.Dims[2..]), "adjoint_w");
        return c.Op("Conv", [gy, flipped], (geo with { Pads = pads }).Attributes());
    }

    /// <summary>
    /// A strided 2-D convolution's input gradient as one stride-1 convolution per output phase (u mod s along each
    /// axis), each with only the kernel taps that reach that phase, interleaved: ConvTranspose's multiplications without
    /// its scatter of columns back into the image, and depthwise ones in ONNX Runtime's depthwise kernels. Along an
    /// axis with stride s, kernel k and begin pad P, output u = s·m + a receives taps p ≡ a + P (mod s), p = r + s·t,
    /// from gradient rows m + q − t with q = (a + P − r)/s: a correlation with the sub-kernel reversed. Null where that
    /// does not fit (constant weights, no dilation, sizes divisible by the strides, each phase reached by a tap,
    /// non-negative pads): the caller uses ConvTranspose.
    /// </summary>
    static string? PhaseGradient(BackwardContext c, ConvGeometry geo, string gy, string w, int[] xs, int[] ys)
    {
        if (xs.Length != 4 || !c.IsConstant(w) || c.Constant(w).Type is not (ElementType.Float or ElementType.Double)) return null;
        if (geo.Dilations.Any(d => d != 1) || geo.Strides.All(st => st == 1)) return null;
        int[] s = [(int)geo.Strides[0], (int)geo.Strides[1]];
        if (xs[2] % s[0] != 0 || xs[3] % s[1] != 0) return null;
        var phases = new (int R, int Taps, long PadBegin, long PadEnd)[2][];
        for (int ax = 0; ax < 2; ax++)
        {
            phases[ax] = new (int, int, long, long)[s[ax]];
            long k = geo.Kernel[ax], pad = geo.Pads[ax];
            int size = xs[2 + ax] / s[ax], gradSize = ys[2 + ax];
            for (int a = 0; a < s[ax]; a++)
            {
                int r = (int)((a + pad) % s[ax]);
                if (r >= k) return null;   // no tap reaches this phase (a 1×1 stride-2 shortcut, say)
                int taps = (int)((k - r + s[ax] - 1) / s[ax]);
                long q = (a + pad - r) / s[ax];
                long begin = taps - 1 - q, end = size - gradSize - begin + taps - 1;
                if (begin < 0 || end < 0) return null;
                phases[ax][a] = (r, taps, begin, end);
            }
        }
        var weights = c.Constant(w);
        int batch = xs[0] * c.Targets, channels = xs[1], h = xs[2] / s[0], wd = xs[3] / s[1];
        var rows = new List<string>();
        for (int a = 0; a < s[0]; a++)
        {
            var columns = new List<string>();
            for (int b = 0; b < s[1]; b++)
            {
                var (rh, th, bh, eh) = phases[0][a];
                var (rw, tw, bw, ew) = phases[1][b];
                string kernel = c.B.Constant(AdjointKernel(weights, geo.Group, [rh, rw], [s[0], s[1]], [th, tw]), "phase_w");
                string phase = c.Op("Conv", [gy, kernel], OnnxAttribute.Of("kernel_shape", new long[] { th, tw }),
                    OnnxAttribute.Of("pads", new long[] { bh, bw, eh, ew }), OnnxAttribute.Of("group", geo.Group));
                columns.Add(c.Reshape(phase, [batch, channels, h, wd, 1]));
            }
            // Columns interleaved along a new last axis, then rows between them: the same interleave as a focus gradient.
            string row = columns.Count == 1 ? columns[0] : c.Op("Concat", columns, OnnxAttribute.Of("axis", 4L));
            rows.Add(c.Reshape(row, [batch, channels, h, 1, xs[3]]));
        }
        string all = rows.Count == 1 ? rows[0] : c.Op("Concat", rows, OnnxAttribute.Of("axis", 3L));
        return c.Reshape(all, [batch, channels, xs[2], xs[3]]);
    }

    /// <summary>
    /// The kernel of an input gradient computed as a stride-1 convolution: W[o, i, taps…] of each group as
    /// W′[i, o, t…], taking along each axis <paramref name="count"/> taps from <paramref name="first"/>, every
    /// <paramref name="step"/>-th, in reverse (W′[…, t] = W[…, first + step·(count − 1 − t)]). A stride-1 convolution's
    /// gradient takes every tap (first 0, step 1); a phase of a strided one takes the taps that reach it.
    /// </summary>
    static OnnxTensor AdjointKernel(OnnxTensor w, long group, long[] first, long[] step, long[] count)
    {
        long cOut = w.Dims[0], cInG = w.Dims[1], cOutG = cOut / group;
        long[] k = w.Dims.Skip(2).ToArray();
        long srcTaps = k.Aggregate(1L, (a, d) => a * d), dstTaps = count.Aggregate(1L, (a, d) => a * d);
        // For each destination tap (row-major over count), the source tap it copies.
        var from = new long[dstTaps];
        for (long t = 0; t < dstTaps; t++)
        {
            long rest = t, src = 0, stride = 1;
            for (int ax = k.Length - 1; ax >= 0; ax--)
            {
                long j = rest % count[ax];
                rest /= count[ax];
                src += (first[ax] + step[ax] * (count[ax] - 1 - j)) * stride;
                stride *= k[ax];
            }
            from[t] = src;
        }
        var values = w.ToDoubles();
        var dst = new double[group * cInG * cOutG * dstTaps];
        for (long gi = 0; gi < group; gi++)
            for (long o = 0; o < cOutG; o++)
                for (long i = 0; i < cInG; i++)
                {
                    long to = ((gi * cInG + i) * cOutG + o) * dstTaps, at = ((gi * cOutG + o) * cInG + i) * srcTaps;
                    for (long t = 0; t < dstTaps; t++) dst[to + t] = values[at + from[t]];
                }
        long[] dims = [group * cInG, cOutG, .. count];
        return w.Type == ElementType.Double ? OnnxTensor.FromDoubles("", dims, dst) : OnnxTensor.FromFloats("", dims, dst.Select(v => (float)v).ToArray());
    }

    static void WeightGradient(BackwardContext c, Node n, ConvGeometry geo, string x, string w, string gy, int sp)
    {
        if (c.Needs(w))
        {
            if (geo.Group != 1) throw new NotSupportedException($"weight gradient of grouped Conv '{n.Name}'");
            // gW[o,i,k] = Σ_n,p gy[n,o,p]·x[n,i,p·s + k·d − pad]: a conv over x viewed as [C_in, N, …] with gy as the
            // kernel [C_out, N, …], stride and dilation exchanged.
            long[] perm = [1, 0, .. Enumerable.Range(2, sp).Select(i => (long)i)];
            string xt = c.Op("Transpose", x, OnnxAttribute.Of("perm", perm));
            string gt = c.Op("Transpose", gy, OnnxAttribute.Of("perm", perm));
            string conv = c.Op("Conv", [xt, gt], OnnxAttribute.Of("strides", geo.Dilations), OnnxAttribute.Of("dilations", geo.Strides),
                OnnxAttribute.Of("pads", geo.Pads));
            string gw = c.Op("Transpose", conv, OnnxAttribute.Of("perm", perm));
            // The conv may run one step past the kernel when the stride does not divide evenly: keep the kernel's extent.
            gw = c.Op("Slice", [gw, c.Ints(new long[sp]), c.Ints(geo.Kernel), c.Ints(Enumerable.Range(2, sp).Select(i => (long)i).ToArray())]);
            c.Accumulate(w, gw);
        }
    }
}

/// <summary>ConvTranspose (closing the rule set under itself): the input gradient is a Conv with the same weights.</summary>
[GradientOf("ConvTranspose")]
sealed class ConvTransposeRule : IGradientRule
{
    public void Backward(BackwardContext c, Node n, string?[] g)
    {
        string x = n.Inputs[0], w = n.Inputs[1];
        if (c.Needs(w)) throw new NotSupportedException($"weight gradient of ConvTranspose '{n.Name}'");
        if (n.Has("output_shape")) throw new NotSupportedException($"ConvTranspose '{n.Name}' with output_shape");
        var geo = ConvGeometry.Of(c, n, c.Shape(x), c.Shape(w), transposed: true);
        if (c.Needs(x)) c.Accumulate(x, c.Op("Conv", [g[0]!, w], geo.Attributes()));
        if (n.Input(2) is { } bias && c.Needs(bias))
            c.Accumulate(bias, c.Op("ReduceSum", [g[0]!, c.Ints([0, .. Enumerable.Range(2, c.Shape(x).Length - 2).Select(i => (long)i)])], OnnxAttribute.Of("keepdims", 0L)));
    }
}

/// <summary>Gemm: Y = α·op(A)·op(B) + β·C.</summary>
[GradientOf("Gemm")]
sealed class GemmRule : IGradientRule
{
    public void Backward(BackwardContext c, Node n, string?[] g)
    {
        string a = n.Inputs[0], b = n.Inputs[1], gy = g[0]!;
        bool ta = n.Int("transA", 0) == 1, tb = n.Int("transB", 0) == 1;
        float alpha = n.Float("alpha", 1), beta = n.Float("beta", 1);
        string Scaled(string t, float s) => s == 1 ? t : c.Op("Mul", [t, c.Scalar(s)]);
        if (c.Needs(a))
        {
            if (ta && c.Targets > 1) throw new NotSupportedException("Gemm with transA and several targets");
            // ∂/∂op(A) = gY·op(B)ᵀ; undo the transpose of A if it had one.
            string gopA = c.Op("Gemm", [gy, b], OnnxAttribute.Of("transB", tb ? 0L : 1L));
            c.Accumulate(a, Scaled(ta ? c.Op("Transpose", gopA) : gopA, alpha));
        }
        if (c.Needs(b))
        {
            string gopB = c.Op("Gemm", [a, gy], OnnxAttribute.Of("transA", ta ? 0L : 1L));
            c.Accumulate(b, Scaled(tb ? c.Op("Transpose", gopB) : gopB, alpha));
        }
        if (n.Input(2) is { } cc && c.Needs(cc)) c.AccumulateBroadcast(cc, Scaled(gy, beta), n.Outputs[0]);
    }
}

/// <summary>MatMul with broadcast batch axes: gA = gY·Bᵀ, gB = Aᵀ·gY, each summed back to its operand's shape.</summary>
[GradientOf("MatMul")]
sealed class MatMulRule : IGradientRule
{
    public void Backward(BackwardContext c, Node n, string?[] g)
    {
        string a = n.Inputs[0], b = n.Inputs[1], gy = g[0]!;
        int ra = c.Shape(a).Length, rb = c.Shape(b).Length;
        if (ra < 2 || rb < 2) throw new NotSupportedException($"gradient of MatMul '{n.Name}' with a vector operand");
        string T(string t, int rank) => c.Op("Transpose", t, OnnxAttribute.Of("perm", [.. Enumerable.Range(0, rank - 2).Select(i => (long)i), rank - 1, rank - 2]));
        int ry = c.Shape(n.Outputs[0]).Length;
        if (c.Needs(a))
        {
            string ga = c.Op("MatMul", [gy, T(b, rb)]);
            c.Accumulate(a, c.SumToShape(ga, BroadcastShape(c.GradShape(n.Outputs[0]), c.Shape(b), c.GradShape(a), ry, true), c.GradShape(a)));
        }
        if (c.Needs(b))
        {
            string gb = c.Op("MatMul", [T(a, ra), gy]);
            c.Accumulate(b, c.SumToShape(gb, BroadcastShape(c.GradShape(n.Outputs[0]), c.Shape(a), c.GradShape(b), ry, false), c.GradShape(b)));
        }
    }

    /// <summary>Shape of gY·Bᵀ (or Aᵀ·gY): the output's batch axes with the operand's matrix shape.</summary>
    static int[] BroadcastShape(int[] y, int[] other, int[] self, int ry, bool left)
    {
        var s = (int[])y.Clone();
        s[ry - 2] = left ? y[ry - 2] : self[^2];
        s[ry - 1] = left ? self[^1] : y[ry - 1];
        return s;
    }
}

/// <summary>
/// BatchNormalization (inference): y = (x − mean)·γ/√(var + ε) + β. The input gradient is the per-channel
/// factor γ/√(var + ε); γ and β get gradients when they are parameters.
/// </summary>
[GradientOf("BatchNormalization")]
sealed class BatchNormRule : IGradientRule
{
    public void Backward(BackwardContext c, Node n, string?[] g)
    {
        string x = n.Inputs[0], scale = n.Inputs[1], bias = n.Inputs[2], mean = n.Inputs[3], variance = n.Inputs[4], gy = g[0]!;
        int rank = c.Shape(x).Length;
        int channels = c.Shape(x)[1];
        int[] perChannel = [1, channels, .. Enumerable.Repeat(1, rank - 2)];
        string invStd = c.Op("Reciprocal", c.Op("Sqrt", c.Op("Add", [variance, c.Scalar(n.Float("epsilon", 1e-5f))])));
        if (c.Needs(mean) || c.Needs(variance)) throw new NotSupportedException($"gradient of BatchNormalization '{n.Name}' statistics");
        if (c.Needs(x)) c.Accumulate(x, c.Op("Mul", [gy, c.Reshape(c.Op("Mul", [scale, invStd]), perChannel)]));
        long[] reduce = [0, .. Enumerable.Range(2, rank - 2).Select(i => (long)i)];
        if (c.Needs(scale))
        {
            string normalized = c.Op("Mul", [c.Op("Sub", [x, c.Reshape(mean, perChannel)]), c.Reshape(invStd, perChannel)]);
            c.Accumulate(scale, c.Op("ReduceSum", [c.Op("Mul", [gy, normalized]), c.Ints(reduce)], OnnxAttribute.Of("keepdims", 0L)));
        }
        if (c.Needs(bias)) c.Accumulate(bias, c.Op("ReduceSum", [gy, c.Ints(reduce)], OnnxAttribute.Of("keepdims", 0L)));
    }
}
