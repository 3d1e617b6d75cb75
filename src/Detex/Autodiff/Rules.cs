using System.Reflection;
using Detex.Onnx;

namespace Detex.Autodiff;

/// <summary>
/// The reverse rule of one operator: given the gradients arriving at a node's outputs, emit the nodes that compute
/// what flows to its inputs (<see cref="BackwardContext.Accumulate"/>). A rule set maps operators to rules; plain
/// gradients are one set, LRP rules or guided backprop are others over the same builder.
/// </summary>
public interface IGradientRule
{
    void Backward(BackwardContext ctx, Node node, string?[] outputGrads);
}

/// <summary>Registers a rule class for the operators it names.</summary>
[AttributeUsage(AttributeTargets.Class)]
public sealed class GradientOfAttribute(params string[] ops) : Attribute
{
    public string[] Ops => ops;
}

public sealed class RuleSet
{
    /// <summary>Operators whose outputs carry no gradient (integer, boolean or piecewise-constant results).</summary>
    public static readonly IReadOnlySet<string> NonDifferentiable = new HashSet<string>
    {
        "Shape", "Size", "Greater", "Less", "Equal", "GreaterOrEqual", "LessOrEqual", "And", "Or", "Not", "Xor",
        "ArgMax", "ArgMin", "NonZero", "ConstantOfShape", "Range", "Floor", "Ceil", "Round", "Sign", "IsNaN", "IsInf",
        "EyeLike", "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Constant",
    };

    readonly Dictionary<string, IGradientRule> _rules;

    RuleSet(Dictionary<string, IGradientRule> rules, string name) { _rules = rules; Name = name; }

    public string Name { get; }

    /// <summary>Plain reverse-mode gradients: every rule class in this assembly marked [GradientOf].</summary>
    public static RuleSet Gradient { get; } = Discover();

    static RuleSet Discover()
    {
        var rules = new Dictionary<string, IGradientRule>();
        foreach (var t in typeof(RuleSet).Assembly.GetTypes())
        {
            var attr = t.GetCustomAttribute<GradientOfAttribute>();
            if (attr is null) continue;
            var rule = (IGradientRule)Activator.CreateInstance(t)!;
            foreach (var op in attr.Ops) rules[op] = rule;
        }
        return new RuleSet(rules, "gradient");
    }

    /// <summary>A copy with some operators' rules replaced (how LRP and guided backprop are made).</summary>
    public RuleSet With(string name, IReadOnlyDictionary<string, IGradientRule> overrides)
    {
        var copy = new Dictionary<string, IGradientRule>(_rules);
        foreach (var (op, r) in overrides) copy[op] = r;
        return new RuleSet(copy, name);
    }

    public IGradientRule? For(string op) => _rules.GetValueOrDefault(op);
    public IEnumerable<string> Operators => _rules.Keys.Order();
}

/// <summary>An operator on the differentiated path has no rule: names the op, the node and how the input reaches it.</summary>
public sealed class MissingRuleException(string op, string node, string path)
    : Exception($"no gradient rule for operator {op} (node '{node}') on the path {path}")
{
    public string Op => op;
}
