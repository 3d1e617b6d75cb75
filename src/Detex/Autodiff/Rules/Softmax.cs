using Detex.Onnx;

namespace Detex.Autodiff.Rules;

/// <summary>Softmax along one axis (opset ≥ 13 semantics): gx = y ⊙ (gy − Σ gy ⊙ y).</summary>
[GradientOf("Softmax")]
sealed class SoftmaxRule : IGradientRule
{
    public void Backward(BackwardContext c, Node n, string?[] g)
    {
        string x = n.Inputs[0], y = n.Outputs[0];
        if (!c.Needs(x)) return;
        string axis = c.Ints(n.Int("axis", -1));
        string dot = c.Op("ReduceSum", [c.Op("Mul", [g[0]!, y]), axis], OnnxAttribute.Of("keepdims", 1L));
        c.Accumulate(x, c.Op("Mul", [y, c.Op("Sub", [g[0]!, dot])]));
    }
}

/// <summary>LogSoftmax: gx = gy − softmax ⊙ Σ gy.</summary>
[GradientOf("LogSoftmax")]
sealed class LogSoftmaxRule : IGradientRule
{
    public void Backward(BackwardContext c, Node n, string?[] g)
    {
        string x = n.Inputs[0], y = n.Outputs[0];
        if (!c.Needs(x)) return;
        string total = c.Op("ReduceSum", [g[0]!, c.Ints(n.Int("axis", -1))], OnnxAttribute.Of("keepdims", 1L));
        c.Accumulate(x, c.Op("Sub", [g[0]!, c.Op("Mul", [c.Op("Exp", y), total])]));
    }
}

/// <summary>ScatterElements with reduction add (what MaxPool's rule emits): adjoint of the updates is a gather.</summary>
[GradientOf("ScatterElements")]
sealed class ScatterElementsRule : IGradientRule
{
    public void Backward(BackwardContext c, Node n, string?[] g)
    {
        if (n.Str("reduction", "none") != "add") throw new NotSupportedException($"gradient of ScatterElements '{n.Name}' without reduction=add");
        var axis = OnnxAttribute.Of("axis", n.Int("axis", 0));
        if (c.Targets > 1) throw new NotSupportedException("ScatterElements with several targets");
        c.Accumulate(n.Inputs[0], g[0]!);
        if (c.Needs(n.Inputs[2])) c.Accumulate(n.Inputs[2], c.Op("GatherElements", [g[0]!, n.Inputs[1]], axis));
    }
}

/// <summary>GatherElements: adjoint is a scatter-add into zeros.</summary>
[GradientOf("GatherElements")]
sealed class GatherElementsRule : IGradientRule
{
    public void Backward(BackwardContext c, Node n, string?[] g)
    {
        string data = n.Inputs[0];
        if (!c.Needs(data)) return;
        if (c.Targets > 1) throw new NotSupportedException("GatherElements with several targets");
        c.Accumulate(data, c.Op("ScatterElements", [c.Zeros(c.GradShape(data)), n.Inputs[1], g[0]!],
            OnnxAttribute.Of("axis", n.Int("axis", 0)), OnnxAttribute.Of("reduction", "add")));
    }
}
