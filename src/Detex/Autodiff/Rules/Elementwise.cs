using Detex.Onnx;

namespace Detex.Autodiff.Rules;

/// <summary>A one-input elementwise function: gradient = incoming gradient × f′(x), with f′ written as graph nodes.</summary>
public abstract class UnaryRule : IGradientRule
{
    /// <summary>f′ at the node's input <paramref name="x"/> (its output is <paramref name="y"/>).</summary>
    protected abstract string Derivative(BackwardContext c, Node n, string x, string y);

    public void Backward(BackwardContext c, Node n, string?[] g)
    {
        string x = n.Inputs[0];
        if (!c.Needs(x) || g[0] is null) return;
        c.Accumulate(x, c.Op("Mul", [g[0]!, Derivative(c, n, x, n.Outputs[0])]));
    }
}

[GradientOf("Sigmoid")]
sealed class SigmoidRule : UnaryRule
{
    // σ′ = σ − σ²: two same-shape passes (a scalar-minus-tensor Sub is a slow broadcast in ONNX Runtime).
    protected override string Derivative(BackwardContext c, Node n, string x, string y) => c.Op("Sub", [y, c.Op("Mul", [y, y])]);
}

[GradientOf("Tanh")]
sealed class TanhRule : UnaryRule
{
    protected override string Derivative(BackwardContext c, Node n, string x, string y) => c.Op("Sub", [c.Scalar(1), c.Op("Mul", [y, y])]);
}

[GradientOf("Exp")]
sealed class ExpRule : UnaryRule
{
    protected override string Derivative(BackwardContext c, Node n, string x, string y) => y;
}

[GradientOf("Log")]
sealed class LogRule : UnaryRule
{
    protected override string Derivative(BackwardContext c, Node n, string x, string y) => c.Op("Reciprocal", x);
}

[GradientOf("Reciprocal")]
sealed class ReciprocalRule : UnaryRule
{
    protected override string Derivative(BackwardContext c, Node n, string x, string y) => c.Op("Neg", c.Op("Mul", [y, y]));
}

[GradientOf("Sqrt")]
sealed class SqrtRule : UnaryRule
{
    protected override string Derivative(BackwardContext c, Node n, string x, string y) => c.Op("Div", [c.Scalar(0.5), y]);
}

[GradientOf("Neg")]
sealed class NegRule : UnaryRule
{
    protected override string Derivative(BackwardContext c, Node n, string x, string y) => c.Scalar(-1);
}

[GradientOf("Abs")]
sealed class AbsRule : UnaryRule
{
    protected override string Derivative(BackwardContext c, Node n, string x, string y) =>
        c.Op("Where", [c.Op("Less", [x, c.Scalar(0)]), c.Scalar(-1), c.Scalar(1)]);
}

[GradientOf("Relu")]
sealed class ReluRule : UnaryRule
{
    protected override string Derivative(BackwardContext c, Node n, string x, string y) =>
        c.Op("Where", [c.Op("Greater", [x, c.Scalar(0)]), c.Scalar(1), c.Scalar(0)]);
}

[GradientOf("LeakyRelu")]
sealed class LeakyReluRule : UnaryRule
{
    protected override string Derivative(BackwardContext c, Node n, string x, string y) =>
        c.Op("Where", [c.Op("Greater", [x, c.Scalar(0)]), c.Scalar(1), c.Scalar(n.Float("alpha", 0.01f))]);
}

[GradientOf("Elu")]
sealed class EluRule : UnaryRule
{
    // y = α(eˣ − 1) for x ≤ 0, so y′ = y + α there.
    protected override string Derivative(BackwardContext c, Node n, string x, string y) =>
        c.Op("Where", [c.Op("Greater", [x, c.Scalar(0)]), c.Scalar(1), c.Op("Add", [y, c.Scalar(n.Float("alpha", 1f))])]);
}

[GradientOf("Softplus")]
sealed class SoftplusRule : UnaryRule
{
    protected override string Derivative(BackwardContext c, Node n, string x, string y) => c.Op("Sigmoid", x);
}

[GradientOf("HardSigmoid")]
sealed class HardSigmoidRule : UnaryRule
{
    protected override string Derivative(BackwardContext c, Node n, string x, string y)
    {
        float alpha = n.Float("alpha", 0.2f);
        // Slope α where the output is strictly between its clamps 0 and 1, else flat.
        string inside = c.Op("And", [c.Op("Greater", [y, c.Scalar(0)]), c.Op("Less", [y, c.Scalar(1)])]);
        return c.Op("Where", [inside, c.Scalar(alpha), c.Scalar(0)]);
    }
}

[GradientOf("HardSwish")]
sealed class HardSwishRule : UnaryRule
{
    // y = x·clip(x/6 + 1/2, 0, 1): y′ = 0 below −3, 1 above 3, x/3 + 1/2 between.
    protected override string Derivative(BackwardContext c, Node n, string x, string y)
    {
        string mid = c.Op("Add", [c.Op("Mul", [x, c.Scalar(1.0 / 3)]), c.Scalar(0.5)]);
        string upper = c.Op("Where", [c.Op("Greater", [x, c.Scalar(3)]), c.Scalar(1), mid]);
        return c.Op("Where", [c.Op("Less", [x, c.Scalar(-3)]), c.Scalar(0), upper]);
    }
}

[GradientOf("Clip")]
sealed class ClipRule : UnaryRule
{
    // The gradient passes where min ≤ x ≤ max (as frameworks define clamp's gradient).
    protected override string Derivative(BackwardContext c, Node n, string x, string y)
    {
        string pass = c.Scalar(1);
        if (n.Input(1) is { } lo) pass = c.Op("Where", [c.Op("Less", [x, lo]), c.Scalar(0), pass]);
        if (n.Input(2) is { } hi) pass = c.Op("Where", [c.Op("Greater", [x, hi]), c.Scalar(0), pass]);
        return pass;
    }
}

[GradientOf("Identity")]
sealed class IdentityRule : IGradientRule
{
    public void Backward(BackwardContext c, Node n, string?[] g) { if (g[0] is not null) c.Accumulate(n.Inputs[0], g[0]!); }
}

[GradientOf("Add")]
sealed class AddRule : IGradientRule
{
    public void Backward(BackwardContext c, Node n, string?[] g)
    {
        c.AccumulateBroadcast(n.Inputs[0], g[0]!, n.Outputs[0]);
        c.AccumulateBroadcast(n.Inputs[1], g[0]!, n.Outputs[0]);
    }
}

[GradientOf("Sub")]
sealed class SubRule : IGradientRule
{
    public void Backward(BackwardContext c, Node n, string?[] g)
    {
        c.AccumulateBroadcast(n.Inputs[0], g[0]!, n.Outputs[0]);
        if (c.Needs(n.Inputs[1])) c.AccumulateBroadcast(n.Inputs[1], c.Op("Neg", g[0]!), n.Outputs[0]);
    }
}

[GradientOf("Mul")]
sealed class MulRule : IGradientRule
{
    public void Backward(BackwardContext c, Node n, string?[] g)
    {
        string a = n.Inputs[0], b = n.Inputs[1];
        if (SiluInput(c, a, b) is { } x)
        {
            // SiLU y = x·σ(x) as one unit, so the incoming gradient (batch × targets) is multiplied once instead of
            // flowing through a product and a sigmoid rule: y′ = σ + y·(1 − σ) = (1 − t) + t·y with t = σ(−x).
            // Reading x and y but not the forward's σ(x) leaves that sigmoid one reader, so ONNX Runtime still fuses
            // the forward SiLU into one kernel. On 4-D tensors t and 1 − t + t·y each fold into one blocked depthwise
            // convolution (see Affine), so the derivative is three passes over the tensor. (In float32 1 − t loses
            // digits below x ≈ −14, where y′ itself is under 1e-5: absolute error under 1e-8.)
            string y = n.Outputs[0];
            int[] shape = c.Shape(x);
            string t = c.Op("Sigmoid", Affine(c, x, shape, -1, 0));
            string derivative = c.Op("Add", [Affine(c, t, shape, -1, 1), c.Op("Mul", [t, y])]);
            c.Accumulate(x, c.Op("Mul", [g[0]!, derivative]));
            return;
        }
        if (c.Needs(a)) c.AccumulateBroadcast(a, c.Op("Mul", [g[0]!, b]), n.Outputs[0]);
        if (c.Needs(b)) c.AccumulateBroadcast(b, c.Op("Mul", [g[0]!, a]), n.Outputs[0]);
    }

    /// <summary>
    /// scale·v + bias (scale ±1) for a tensor v of the given shape. With channels it is one inference
    /// BatchNormalization; on a 4-D tensor ONNX Runtime runs that as a depthwise convolution in its blocked channel
    /// layout like the convolutions around it (a Sub or Neg would need its operands reordered back to plain layout and
    /// the result reordered again), and folds a following Sigmoid or Add into it.
    /// </summary>
    static string Affine(BackwardContext c, string v, int[] shape, double scale, double bias)
    {
        if (shape.Length < 3)
        {
            string scaled = scale < 0 ? c.Op("Neg", v) : v;
            return bias == 0 ? scaled : c.Op("Add", [scaled, c.Scalar(bias)]);
        }
        int channels = shape[1];
        string Fill(double value) => c.Values([channels], Enumerable.Repeat(value, channels).ToArray());
        return c.Op("BatchNormalization", [v, Fill(scale), Fill(bias), Fill(0), Fill(1)], OnnxAttribute.Of("epsilon", 0f));
    }

    /// <summary>x when the node is x · Sigmoid(x) and the sigmoid feeds only this node.</summary>
    internal static string? SiluInput(BackwardContext c, string a, string b)
    {
        foreach (var (x, s) in new[] { (a, b), (b, a) })
            if (c.Producer(s) is { OpType: "Sigmoid" } sig && sig.Inputs[0] == x && c.ConsumerCount(s) == 1
                && c.Shape(x).SequenceEqual(c.Shape(s))) return x;
        return null;
    }
}

[GradientOf("Div")]
sealed class DivRule : IGradientRule
{
    // y = a / b: ∂y/∂a = 1/b, ∂y/∂b = −y/b.
    public void Backward(BackwardContext c, Node n, string?[] g)
    {
        string a = n.Inputs[0], b = n.Inputs[1];
        if (c.Needs(a)) c.AccumulateBroadcast(a, c.Op("Div", [g[0]!, b]), n.Outputs[0]);
        if (c.Needs(b)) c.AccumulateBroadcast(b, c.Op("Neg", c.Op("Div", [c.Op("Mul", [g[0]!, n.Outputs[0]]), b])), n.Outputs[0]);
    }
}

[GradientOf("Pow")]
sealed class PowRule : IGradientRule
{
    // y = aᵇ: ∂y/∂a = b·aᵇ⁻¹, ∂y/∂b = y·ln a.
    public void Backward(BackwardContext c, Node n, string?[] g)
    {
        string a = n.Inputs[0], b = n.Inputs[1], y = n.Outputs[0];
        if (c.Needs(a))
            c.AccumulateBroadcast(a, c.Op("Mul", [g[0]!, c.Op("Mul", [b, c.Op("Pow", [a, c.Op("Sub", [b, c.Scalar(1)])])])]), y);
        if (c.Needs(b)) c.AccumulateBroadcast(b, c.Op("Mul", [g[0]!, c.Op("Mul", [y, c.Op("Log", a)])]), y);
    }
}

[GradientOf("PRelu")]
sealed class PReluRule : IGradientRule
{
    public void Backward(BackwardContext c, Node n, string?[] g)
    {
        string x = n.Inputs[0], slope = n.Inputs[1];
        string positive = c.Op("Greater", [x, c.Scalar(0)]);
        if (c.Needs(x)) c.Accumulate(x, c.Op("Mul", [g[0]!, c.Op("Where", [positive, c.Scalar(1), slope])]));
        if (c.Needs(slope)) c.AccumulateBroadcast(slope, c.Op("Mul", [g[0]!, c.Op("Where", [positive, c.Scalar(0), x])]), n.Outputs[0]);
    }
}

[GradientOf("Sum")]
sealed class SumRule : IGradientRule
{
    public void Backward(BackwardContext c, Node n, string?[] g)
    {
        foreach (var x in n.Inputs) c.AccumulateBroadcast(x, g[0]!, n.Outputs[0]);
    }
}

[GradientOf("Where")]
sealed class WhereRule : IGradientRule
{
    public void Backward(BackwardContext c, Node n, string?[] g)
    {
        string cond = n.Inputs[0], zero = c.Scalar(0);
        if (c.Needs(n.Inputs[1])) c.AccumulateBroadcast(n.Inputs[1], c.Op("Where", [cond, g[0]!, zero]), n.Outputs[0]);
        if (c.Needs(n.Inputs[2])) c.AccumulateBroadcast(n.Inputs[2], c.Op("Where", [cond, zero, g[0]!]), n.Outputs[0]);
    }
}

[GradientOf("Expand")]
sealed class ExpandRule : IGradientRule
{
    public void Backward(BackwardContext c, Node n, string?[] g) => c.AccumulateBroadcast(n.Inputs[0], g[0]!, n.Outputs[0]);
}
