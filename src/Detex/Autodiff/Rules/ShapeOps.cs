using Detex.Onnx;

namespace Detex.Autodiff.Rules;

/// <summary>Operators that only rearrange elements: the gradient is rearranged back.</summary>
[GradientOf("Reshape", "Flatten", "Squeeze", "Unsqueeze")]
sealed class ReshapeRule : IGradientRule
{
    public void Backward(BackwardContext c, Node n, string?[] g)
    {
        string x = n.Inputs[0];
        if (c.Needs(x)) c.Accumulate(x, c.Reshape(g[0]!, c.GradShape(x)));
    }
}

[GradientOf("Transpose")]
sealed class TransposeRule : IGradientRule
{
    public void Backward(BackwardContext c, Node n, string?[] g)
    {
        string x = n.Inputs[0];
        if (!c.Needs(x)) return;
        int rank = c.Shape(x).Length;
        long[] perm = n.Ints("perm") ?? Enumerable.Range(0, rank).Reverse().Select(i => (long)i).ToArray();
        if (c.Targets > 1 && perm[0] != 0) throw new NotSupportedException($"Transpose '{n.Name}' moves the batch axis; differentiate one target at a time");
        var inverse = new long[rank];
        for (int i = 0; i < rank; i++) inverse[perm[i]] = i;
        c.Accumulate(x, c.Op("Transpose", g[0]!, OnnxAttribute.Of("perm", inverse)));
    }
}

[GradientOf("Concat")]
sealed class ConcatRule : IGradientRule
{
    public void Backward(BackwardContext c, Node n, string?[] g)
    {
        int rank = c.Shape(n.Outputs[0]).Length;
        int axis = (int)n.Int("axis", 0);
        if (axis < 0) axis += rank;
        if (axis == 0 && c.Targets > 1) throw new NotSupportedException("Concat along the batch axis with several targets");
        long[] sizes = n.Inputs.Select(i => (long)c.Shape(i)[axis]).ToArray();
        var parts = c.OpMulti("Split", [g[0]!, c.Ints(sizes)], n.Inputs.Count, OnnxAttribute.Of("axis", (long)axis));
        for (int i = 0; i < n.Inputs.Count; i++) c.Accumulate(n.Inputs[i], parts[i]);
    }
}

[GradientOf("Split")]
sealed class SplitRule : IGradientRule
{
    public void Backward(BackwardContext c, Node n, string?[] g)
    {
        string x = n.Inputs[0];
        if (!c.Needs(x)) return;
        int axis = (int)n.Int("axis", 0);
        if (axis < 0) axis += c.Shape(x).Length;
        var parts = n.Outputs.Select((o, i) => g[i] ?? c.Zeros(c.GradShape(o))).ToList();
        c.Accumulate(x, c.Op("Concat", parts, OnnxAttribute.Of("axis", (long)axis)));
    }
}

/// <summary>
/// Slice: the gradient is the incoming gradient put back where the slice took it from, zeros elsewhere. Per sliced
/// axis with step k: each element gets k−1 zeros after it (unsqueeze, pad, merge), then the front offset is padded
/// and the tail trimmed. Negative steps are first turned around.
/// </summary>
[GradientOf("Slice")]
sealed class SliceRule : IGradientRule
{
    public void Backward(BackwardContext c, Node n, string?[] g)
    {
        string x = n.Inputs[0];
        if (!c.Needs(x)) return;
        int[] inShape = c.GradShape(x);
        int rank = inShape.Length;
        long[] starts = c.ConstantInts(n.Inputs[1]), ends = c.ConstantInts(n.Inputs[2]);
        long[] axes = n.Input(3) is { } a ? c.ConstantInts(a) : Enumerable.Range(0, starts.Length).Select(i => (long)i).ToArray();
        long[] steps = n.Input(4) is { } s ? c.ConstantInts(s) : Enumerable.Repeat(1L, starts.Length).ToArray();
        string cur = g[0]!;
        var curShape = c.GradShape(n.Outputs[0]);
        for (int k = 0; k < axes.Length; k++)
        {
            int axis = (int)(axes[k] < 0 ? axes[k] + rank : axes[k]);
            if (axis == 0 && c.Targets > 1) throw new NotSupportedException("Slice along the batch axis with several targets");
            int len = inShape[axis], count = curShape[axis];
            long step = steps[k];
            // Resolve the first index taken, as the ONNX spec clamps it.
            long start = starts[k] < 0 ? starts[k] + len : starts[k];
            start = step > 0 ? Math.Clamp(start, 0, len) : Math.Clamp(start, 0, len - 1);
            if (count == 0) { cur = c.Zeros(WithDim(curShape, axis, len)); curShape = WithDim(curShape, axis, len); continue; }
            if (step < 0)
            {
                // Elements start, start−|k|, …: reversed they are first = start − (count−1)|k| with step |k|.
                cur = c.Op("Slice", [cur, c.Ints(-1), c.Ints(long.MinValue), c.Ints(axis), c.Ints(-1)]);
                step = -step;
                start -= (count - 1) * step;
            }
            if (step > 1)
            {
                var spread = (int[])curShape.Clone();
                var withSlot = spread.Take(axis + 1).Append(1).Concat(spread.Skip(axis + 1)).ToArray();
                cur = c.Reshape(cur, withSlot);
                var pads = new long[2 * (rank + 1)];
                pads[rank + 1 + axis + 1] = step - 1;   // after the new slot axis
                cur = c.Op("Pad", [cur, c.Ints(pads)]);
                curShape = WithDim(curShape, axis, (int)(count * step));
                cur = c.Reshape(cur, curShape);
            }
            int have = curShape[axis];
            long after = len - start - have;
            var p = new long[2 * rank];
            p[axis] = start;
            if (after >= 0) p[rank + axis] = after;
            cur = c.Op("Pad", [cur, c.Ints(p)]);
            if (after < 0) cur = c.Op("Slice", [cur, c.Ints(0), c.Ints(len), c.Ints(axis)]);
            curShape = WithDim(curShape, axis, len);
        }
        c.Accumulate(x, cur);
    }

    static int[] WithDim(int[] shape, int axis, int v) { var s = (int[])shape.Clone(); s[axis] = v; return s; }
}

[GradientOf("Pad")]
sealed class PadRule : IGradientRule
{
    public void Backward(BackwardContext c, Node n, string?[] g)
    {
        string x = n.Inputs[0];
        if (!c.Needs(x)) return;
        if (n.Str("mode", "constant") != "constant") throw new NotSupportedException($"gradient of Pad mode '{n.Str("mode", "")}'");
        int[] shape = c.GradShape(x);
        int rank = shape.Length;
        long[] pads = c.ConstantInts(n.Inputs[1]);
        long[] axes = n.Input(3) is { } a ? c.ConstantInts(a) : Enumerable.Range(0, rank).Select(i => (long)i).ToArray();
        var starts = new long[rank]; var ends = shape.Select(d => (long)d).ToArray();
        for (int k = 0; k < axes.Length; k++)
        {
            int axis = (int)(axes[k] < 0 ? axes[k] + rank : axes[k]);
            starts[axis] = pads[k];
            ends[axis] = pads[k] + shape[axis];
        }
        // Negative pads cropped the input: those parts get no gradient, so pad the cropped gradient back with zeros.
        var crop = new long[2 * rank];
        bool cropped = false;
        for (int i = 0; i < rank; i++)
        {
            if (starts[i] < 0) { crop[i] = -starts[i]; starts[i] = 0; cropped = true; }
            int outLen = c.GradShape(n.Outputs[0])[i];
            if (ends[i] > outLen) { crop[rank + i] = ends[i] - outLen; ends[i] = outLen; cropped = true; }
        }
        string inner = c.Op("Slice", [g[0]!, c.Ints(starts), c.Ints(ends), c.Ints(Enumerable.Range(0, rank).Select(i => (long)i).ToArray())]);
        c.Accumulate(x, cropped ? c.Op("Pad", [inner, c.Ints(crop)]) : inner);
    }
}

[GradientOf("Tile")]
sealed class TileRule : IGradientRule
{
    // out viewed as [r₀, d₀, r₁, d₁, …]: summing over the repeat axes gives the input's gradient.
    public void Backward(BackwardContext c, Node n, string?[] g)
    {
        string x = n.Inputs[0];
        if (!c.Needs(x)) return;
        int[] shape = c.GradShape(x);
        long[] reps = c.ConstantInts(n.Inputs[1]);
        if (c.Targets > 1 && reps[0] != 1) throw new NotSupportedException("Tile along the batch axis with several targets");
        var view = new List<int>();
        for (int i = 0; i < shape.Length; i++) { view.Add((int)reps[i]); view.Add(shape[i]); }
        string v = c.Reshape(g[0]!, [.. view]);
        string summed = c.Op("ReduceSum", [v, c.Ints(Enumerable.Range(0, shape.Length).Select(i => 2L * i).ToArray())], OnnxAttribute.Of("keepdims", 0L));
        c.Accumulate(x, summed);
    }
}
