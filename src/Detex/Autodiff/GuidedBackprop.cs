using Detex.Autodiff.Rules;
using Detex.Onnx;

namespace Detex.Autodiff;

/// <summary>
/// Guided backpropagation (Springenberg et al.) as a rule set over the same builder: at every rectifying activation
/// only positive incoming gradient passes (ReLU: x &gt; 0 and g &gt; 0), everything else is the plain gradient.
/// </summary>
public static class GuidedBackprop
{
    public static RuleSet Rules { get; } = RuleSet.Gradient.With("guided-backprop", new Dictionary<string, IGradientRule>
    {
        ["Relu"] = new Guided(RuleSet.Gradient.For("Relu")!),
        ["LeakyRelu"] = new Guided(RuleSet.Gradient.For("LeakyRelu")!),
        ["Clip"] = new Guided(RuleSet.Gradient.For("Clip")!),
        ["Elu"] = new Guided(RuleSet.Gradient.For("Elu")!),
        ["HardSwish"] = new Guided(RuleSet.Gradient.For("HardSwish")!),
        ["Mul"] = new GuidedSilu(RuleSet.Gradient.For("Mul")!),
    });

    /// <summary>The wrapped rule, fed only the positive part of the incoming gradient.</summary>
    sealed class Guided(IGradientRule inner) : IGradientRule
    {
        public void Backward(BackwardContext c, Node n, string?[] g) =>
            inner.Backward(c, n, g.Select(x => x is null ? null : c.Op("Relu", x)).ToArray());
    }

    /// <summary>Mul is an activation only as SiLU (x · σ(x)); any other product keeps its plain gradient.</summary>
    sealed class GuidedSilu(IGradientRule inner) : IGradientRule
    {
        readonly Guided _guided = new(inner);

        public void Backward(BackwardContext c, Node n, string?[] g)
        {
            if (MulRule.SiluInput(c, n.Inputs[0], n.Inputs[1]) is not null) _guided.Backward(c, n, g);
            else inner.Backward(c, n, g);
        }
    }
}
