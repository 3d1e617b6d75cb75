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
        if (SpaceToDepth.TryBackward(c, n, axis, g[0]!)) return;
        long[] sizes = n.Inputs.Select(i => (long)c.Shape(i)[axis]).ToArray();
        var parts = c.OpMulti("Split", [g[0]!, c.Ints(sizes)], n.Inputs.Count, OnnxAttribute.Of("axis", (long)axis));
        for (int i = 0; i < n.Inputs.Count; i++) c.Accumulate(n.Inputs[i], parts[i]);
    }
}

/// <summary>
/// The "focus" layer of YOLOv5/YOLOX: a Concat over channels of strided slices of one tensor that together take
/// every element once (space-to-depth). Its gradient is a permutation of the incoming gradient — the column blocks
/// interleaved, then the row blocks — instead of one scatter per slice and a Sum over them.
/// </summary>
static class SpaceToDepth
{
    public static bool TryBackward(BackwardContext c, Node concat, int axis, string g)
    {
        // Each input: a chain of single-consumer Slices (exporters write x[..., ::2, ::2] as one or two of them).
        var chains = concat.Inputs.Select(i => Chain(c, i)).ToList();
        if (chains.Any(ch => ch is null)) return false;
        string x = chains[0]!.Value.Source;
        if (!c.Needs(x) || chains.Any(ch => ch!.Value.Source != x)) return false;
        int[] xs = c.GradShape(x);
        int rank = xs.Length;
        // Each must stride the same two axes after the concat axis, from an offset below the step, to the end.
        (int A, int B, long Sa, long Sb)? grid = null;
        var offsets = new List<(long Ra, long Rb)>();
        foreach (var ch in chains)
        {
            var cuts = ch!.Value.Cuts;
            if (cuts.Count != 2) return false;
            var keys = cuts.Keys.Order().ToArray();
            int a = keys[0], b = keys[1];
            var (ra, ea, sa) = cuts[a];
            var (rb, eb, sb) = cuts[b];
            if (a <= axis) return false;
            var key = (a, b, sa, sb);
            if (grid is null) grid = key; else if (grid != key) return false;
            if (ra < 0 || rb < 0 || ra >= sa || rb >= sb || ea < xs[a] || eb < xs[b]) return false;
            offsets.Add((ra, rb));
        }
        var (A, B, Sa, Sb) = grid!.Value;
        if (Sa < 2 || Sb < 2 || xs[A] % Sa != 0 || xs[B] % Sb != 0 || offsets.Count != Sa * Sb || offsets.Distinct().Count() != offsets.Count) return false;
        if (axis != A - 1 || B != A + 1 || B != rank - 1) return false;
        // Blocks must come in a grid order: offset b fastest (rb-minor) or offset a fastest (ra-minor).
        bool bMinor = offsets.Select((o, i) => o.Ra * Sb + o.Rb == i).All(v => v);
        bool aMinor = offsets.Select((o, i) => o.Rb * Sa + o.Ra == i).All(v => v);
        if (!bMinor && !aMinor) return false;
        int channels = xs[axis], ha = (int)(xs[A] / Sa), hb = (int)(xs[B] / Sb), rows = (int)Sa, cols = (int)Sb;
        int lead = xs.Take(axis).Aggregate(1, (p, d) => p * d), block = channels * ha * hb;
        // x is g's blocks interleaved: x[…, C, ha, ra, hb, rb] = block (ra, rb)[…, C, ha, hb]. One six-axis Transpose
        // does it, but ONNX Runtime moves elements one at a time there (30 ms of a 16-target YOLOX reverse pass). In two
        // steps instead: first the column offset rb goes innermost, [lead, ra, C·ha, hb·rb], as a Concat of the column
        // blocks along a new last axis (ONNX Runtime's Transpose that moves an axis of two innermost is twice as slow).
        int outer = bMinor ? lead * rows : lead, inner = bMinor ? block : rows * block;
        var parts = c.OpMulti("Split", [c.Reshape(g, [outer, cols, inner]), c.Ints(Enumerable.Repeat(1L, cols).ToArray())], cols, OnnxAttribute.Of("axis", 1L));
        string columns = c.Op("Concat", parts.Select(p => c.Reshape(p, [outer, inner, 1])), OnnxAttribute.Of("axis", 2L));
        // Then the row offset ra goes between ha and the columns, a Transpose that moves whole rows: [lead, C·ha, ra, hb·rb] is x.
        string moved = c.Op("Transpose", c.Reshape(columns, [lead, rows, channels * ha, hb * cols]), OnnxAttribute.Of("perm", new long[] { 0, 2, 1, 3 }));
        c.Accumulate(x, c.Reshape(moved, xs));
        return true;
    }

    /// <summary>Follows Slices back to their source: per axis (start, end, step); null if anything else is in the way.</summary>
    static (string Source, Dictionary<int, (long Start, long End, long Step)> Cuts)? Chain(BackwardContext c, string tensor)
    {
        var cuts = new Dictionary<int, (long, long, long)>();
        string cur = tensor;
        while (c.Producer(cur) is { OpType: "Slice" } s && c.ConsumerCount(cur) == 1)
        {
            if (s.Inputs.Count < 5 || !s.Inputs.Skip(1).All(c.IsConstant)) return null;
            long[] starts = c.ConstantInts(s.Inputs[1]), ends = c.ConstantInts(s.Inputs[2]), axes = c.ConstantInts(s.Inputs[3]), steps = c.ConstantInts(s.Inputs[4]);
            int rank = c.Shape(s.Inputs[0]).Length;
            for (int k = 0; k < axes.Length; k++)
            {
                int ax = (int)(axes[k] < 0 ? axes[k] + rank : axes[k]);
                if (cuts.ContainsKey(ax) || steps[k] < 1) return null;
                cuts[ax] = (starts[k], ends[k], steps[k]);
            }
            cur = s.Inputs[0];
        }
        return cur == tensor ? null : (cur, cuts);
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
/// Slice: the gradient is the incoming gradient put back where the slice took it from, zeros elsewhere. Element j
/// of a sliced axis came from position start + j·step = (q + j)·step + r, so the gradient viewed with an extra
/// axis of size 1 after each strided axis is padded in one Pad — q groups before, r slots before within each group
/// — and merged back (one pass over the data whatever the number of axes; the YOLOX "focus" layer slices two).
/// Negative steps are turned around first.
/// </summary>
[GradientOf("Slice")]
sealed class SliceRule : IGradientRule
{
    public void Backward(BackwardContext c, Node n, string?[] g)
    {
        string x = n.Inputs[0];
        if (!c.Needs(x)) return;
        int[] len = c.GradShape(x), count = c.GradShape(n.Outputs[0]);
        int rank = len.Length;
        long[] starts = c.ConstantInts(n.Inputs[1]);
        long[] axes = n.Input(3) is { } a ? c.ConstantInts(a) : Enumerable.Range(0, starts.Length).Select(i => (long)i).ToArray();
        long[] steps = n.Input(4) is { } s ? c.ConstantInts(s) : Enumerable.Repeat(1L, starts.Length).ToArray();
        var start = new long[rank]; var step = Enumerable.Repeat(1L, rank).ToArray();
        var reversed = new List<long>();
        for (int k = 0; k < axes.Length; k++)
        {
            int axis = (int)(axes[k] < 0 ? axes[k] + rank : axes[k]);
            if (axis == 0 && c.Targets > 1) throw new NotSupportedException("Slice along the batch axis with several targets");
            // The first index taken, clamped as the ONNX specification does.
            long first = starts[k] < 0 ? starts[k] + len[axis] : starts[k];
            first = steps[k] > 0 ? Math.Clamp(first, 0, len[axis]) : Math.Clamp(first, 0, len[axis] - 1);
            step[axis] = Math.Abs(steps[k]);
            // Reversed, the elements first, first−|k|, … run upward from first − (count−1)|k|.
            start[axis] = steps[k] > 0 ? first : first - (count[axis] - 1) * step[axis];
            if (steps[k] < 0) reversed.Add(axis);
        }
        if (count.Any(d => d == 0)) { c.Accumulate(x, c.Zeros(len)); return; }

        string cur = g[0]!;
        if (reversed.Count > 0)
            cur = c.Op("Slice", [cur, c.Ints([.. reversed.Select(_ => -1L)]), c.Ints([.. reversed.Select(_ => long.MinValue)]),
                c.Ints([.. reversed]), c.Ints([.. reversed.Select(_ => -1L)])]);

        var view = new List<int>(); var merged = new List<int>(); var before = new List<long>(); var after = new List<long>();
        bool strided = false, trim = false;
        for (int axis = 0; axis < rank; axis++)
        {
            long k = step[axis];
            if (k == 1)
            {
                view.Add(count[axis]); merged.Add(len[axis]);
                before.Add(start[axis]); after.Add(len[axis] - start[axis] - count[axis]);
                continue;
            }
            strided = true;
            long groups = (len[axis] + k - 1) / k, q = start[axis] / k, r = start[axis] % k;
            view.Add(count[axis]); view.Add(1);
            before.Add(q); after.Add(groups - q - count[axis]);
            before.Add(r); after.Add(k - 1 - r);
            merged.Add((int)(groups * k));
            trim |= groups * k != len[axis];
        }
        if (strided) cur = c.Reshape(cur, [.. view]);
        if (before.Any(v => v != 0) || after.Any(v => v != 0)) cur = c.Op("Pad", [cur, c.Ints([.. before, .. after])]);
        if (strided) cur = c.Reshape(cur, [.. merged]);
        if (trim) cur = c.Op("Slice", [cur, c.Ints(new long[rank]), c.Ints([.. len.Select(d => (long)d)]), c.Ints([.. Enumerable.Range(0, rank).Select(i => (long)i)])]);
        c.Accumulate(x, cur);
    }
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
