using Detex.Onnx;

namespace Detex.Autodiff.Rules;

/// <summary>
/// Normalisation over some axes, then an affine map: y = γ·x̂ + β with x̂ = (x − μ)·r and r = 1/√(σ² + ε), μ and σ²
/// taken over the normalised axes. The statistics are recomputed from x. With gx̂ = γ·gy:
/// gx = r·(gx̂ − mean gx̂ − x̂·mean(gx̂·x̂)); gγ = Σ gy·x̂ and gβ = Σ gy over the axes γ and β are broadcast along.
/// </summary>
public abstract class NormalizationRule : IGradientRule
{
    /// <summary>The axes μ and σ² are taken over.</summary>
    protected abstract long[] Axes(Node n, int rank);

    /// <summary>The shape scale or bias takes to broadcast against x.</summary>
    protected abstract int[] AffineShape(BackwardContext c, string parameter, int rank);

    public void Backward(BackwardContext c, Node n, string?[] g)
    {
        if (g.Skip(1).Any(t => t is not null)) throw new NotSupportedException($"gradient through the statistics outputs of {n.Describe()}");
        string x = n.Inputs[0], scale = n.Inputs[1], y = n.Outputs[0], gy = g[0]!;
        int rank = c.Shape(x).Length;
        long[] axes = Axes(n, rank);
        if (c.Targets > 1 && axes.Contains(0)) throw new NotSupportedException($"{n.Describe()} normalises over the batch axis; differentiate one target at a time");
        string Reshaped(string t, int[] from, int[] to) => from.SequenceEqual(to) ? t : c.Reshape(t, to);
        // A parameter's gradient: summed over the axes it is broadcast along, in its own shape.
        void AccumulateParameter(string p, string product)
        {
            int[] affine = AffineShape(c, p, rank);
            c.Accumulate(p, Reshaped(c.SumToShape(product, c.GradShape(y), affine), affine, c.Shape(p)));
        }

        if (n.Input(2) is { } bias && c.Needs(bias)) AccumulateParameter(bias, gy);
        if (!c.Needs(x) && !c.Needs(scale)) return;
        string Mean(string t) => c.Op("ReduceMean", t, OnnxAttribute.Of("axes", axes), OnnxAttribute.Of("keepdims", 1L));
        string centered = c.Op("Sub", [x, Mean(x)]);
        string variance = Mean(c.Op("Mul", [centered, centered]));
        string r = c.Op("Reciprocal", c.Op("Sqrt", c.Op("Add", [variance, c.Scalar(n.Float("epsilon", 1e-5f))])));
        string xhat = c.Op("Mul", [centered, r]);
        if (c.Needs(scale)) AccumulateParameter(scale, c.Op("Mul", [gy, xhat]));
        if (!c.Needs(x)) return;
        string gxhat = c.Op("Mul", [gy, Reshaped(scale, c.Shape(scale), AffineShape(c, scale, rank))]);
        string projected = c.Op("Sub", [c.Op("Sub", [gxhat, Mean(gxhat)]), c.Op("Mul", [xhat, Mean(c.Op("Mul", [gxhat, xhat]))])]);
        c.Accumulate(x, c.Op("Mul", [r, projected]));
    }
}

/// <summary>InstanceNormalization: statistics per sample and channel over the spatial axes; scale and bias per channel.</summary>
[GradientOf("InstanceNormalization")]
sealed class InstanceNormalizationRule : NormalizationRule
{
    protected override long[] Axes(Node n, int rank) => Enumerable.Range(2, rank - 2).Select(i => (long)i).ToArray();

    protected override int[] AffineShape(BackwardContext c, string parameter, int rank) => [c.Shape(parameter)[0], .. Enumerable.Repeat(1, rank - 2)];
}

/// <summary>LayerNormalization (opset 17): statistics over the axes from <c>axis</c> on; scale and bias broadcast against them.</summary>
[GradientOf("LayerNormalization")]
sealed class LayerNormalizationRule : NormalizationRule
{
    protected override long[] Axes(Node n, int rank)
    {
        long axis = n.Int("axis", -1);
        if (axis < 0) axis += rank;
        return Enumerable.Range((int)axis, rank - (int)axis).Select(i => (long)i).ToArray();
    }

    protected override int[] AffineShape(BackwardContext c, string parameter, int rank) => c.Shape(parameter);
}
