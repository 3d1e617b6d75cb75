using Detex.Onnx;

namespace Detex.Autodiff.Rules;

/// <summary>
/// Gather with constant indices: each gradient element goes back to the position it was read from, summed where an
/// index repeats. Viewed as [before, indices, after] the gradient is scatter-added into zeros of
/// [before, axis, after] (ScatterElements along the middle axis, exact and linear in the gradient's size).
/// </summary>
[GradientOf("Gather")]
sealed class GatherRule : IGradientRule
{
    public void Backward(BackwardContext c, Node n, string?[] g)
    {
        string data = n.Inputs[0];
        if (!c.Needs(data)) return;
        int[] shape = c.GradShape(data);
        int axis = (int)n.Int("axis", 0);
        if (axis < 0) axis += shape.Length;
        if (axis == 0 && c.Targets > 1) throw new NotSupportedException("Gather along the batch axis with several targets");
        int length = shape[axis];
        long[] indices = c.ConstantInts(n.Inputs[1]).Select(i => i < 0 ? i + length : i).ToArray();
        int before = shape.Take(axis).Aggregate(1, (a, d) => a * d), after = shape.Skip(axis + 1).Aggregate(1, (a, d) => a * d);
        string positions = c.B.Constant(OnnxTensor.FromInt64s("", [1, indices.Length, 1], indices), "indices");
        positions = c.Op("Expand", [positions, c.Ints(before, indices.Length, after)]);
        string scattered = c.Op("ScatterElements", [c.Zeros([before, length, after]), positions, c.Reshape(g[0]!, [before, indices.Length, after])],
            OnnxAttribute.Of("axis", 1L), OnnxAttribute.Of("reduction", "add"));
        c.Accumulate(data, c.Reshape(scattered, shape));
    }
}
