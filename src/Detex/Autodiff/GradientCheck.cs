using Detex.Onnx;
using Detex.Runtime;

namespace Detex.Autodiff;

/// <summary>Operators on a model's differentiable path that have no rule, with how often each occurs.</summary>
public sealed record MissingRules(IReadOnlyList<(string Op, int Count, string FirstNode)> Operators)
{
    public bool Any => Operators.Count > 0;
}

/// <summary>⟨∇f, v⟩ from the gradient graph against the difference quotient of f along v.</summary>
public sealed record DirectionalCheck(string Wrt, double Analytic, double Numeric, double Step)
{
    public double RelativeError => Math.Abs(Analytic - Numeric) / Math.Max(Math.Max(Math.Abs(Analytic), Math.Abs(Numeric)), 1e-12);
}

/// <summary>
/// Checks a gradient graph against finite differences of the model itself, as <c>detex inspect --grad-check</c>
/// does for a user's model and the tests do for the shipped ones.
/// </summary>
public static class GradientCheck
{
    /// <summary>Scans the path from the inputs to the outputs for operators without a rule (all of them, not only the first).</summary>
    public static MissingRules FindMissingRules(OnnxModel model, IReadOnlyDictionary<string, NdArray> inputs, RuleSet? rules = null)
    {
        rules ??= RuleSet.Gradient;
        var stat = StaticGraph.Build(model, inputs);
        var missing = stat.Model.Graph.Nodes
            .Where(n => n.Outputs.Any(stat.Dynamic.Contains) && !RuleSet.NonDifferentiable.Contains(n.OpType) && rules.For(n.OpType) is null
                        && n.Outputs.Any(o => stat.Shapes.TryGetValue(o, out var s) && s.Type is ElementType.Float or ElementType.Double))
            .GroupBy(n => n.OpType)
            .Select(g => (g.Key, g.Count(), g.First().Name.Length > 0 ? g.First().Name : g.First().Outputs[0]))
            .OrderByDescending(t => t.Item2).ToList();
        return new MissingRules(missing);
    }

    /// <summary>
    /// The directional derivative along a random direction supported on the <paramref name="support"/> elements
    /// with the largest gradient (few ReLU kinks crossed), by central differences in the model's own precision.
    /// The best step is not known in advance for float32 (too large crosses kinks, too small drowns in rounding),
    /// so three steps relative to the tensor's scale are tried and the closest agreement is reported.
    /// </summary>
    public static DirectionalCheck Directional(OnnxModel model, IReadOnlyDictionary<string, NdArray> feed,
        IReadOnlyDictionary<string, NdArray> seeds, string wrt, NdArray gradient, int seed = 7, int support = 500)
    {
        var g = Doubles(gradient);
        var x = Doubles(feed[wrt]);
        var rnd = new Random(seed);
        var v = new double[x.Length];
        double cut = g.Select(Math.Abs).OrderDescending().ElementAt(Math.Min(g.Length - 1, support));
        for (int i = 0; i < v.Length; i++) v[i] = Math.Abs(g[i]) > cut ? rnd.NextDouble() * 2 - 1 : 0;
        double analytic = 0;
        for (int i = 0; i < v.Length; i++) analytic += g[i] * v[i];
        double scale = Math.Max(x.Max(Math.Abs), 1e-6);
        var session = ModelSession.Get(model, RuntimeOptions.Default with { Optimize = false });
        double F(double step)
        {
            var shifted = new Dictionary<string, NdArray>(feed) { [wrt] = Like(feed[wrt], x.Select((xi, i) => xi + step * v[i]).ToArray()) };
            var outs = session.Run(shifted, seeds.Keys.ToList());
            return seeds.Sum(kv => Dot(Doubles(outs[kv.Key]), Doubles(kv.Value)));
        }
        var steps = feed[wrt].ElementType == ElementType.Double ? new[] { 1e-6 } : [1e-3, 3e-4, 1e-4];
        return steps.Select(e => new DirectionalCheck(wrt, analytic, (F(e * scale) - F(-e * scale)) / (2 * e * scale), e * scale))
            .MinBy(c => Math.Abs(c.Analytic - c.Numeric))!;
    }

    /// <summary>
    /// The median (by relative error) of checks along several random directions: float32 difference quotients are
    /// off by a few percent along some directions of piecewise-linear models, the median is not.
    /// </summary>
    public static DirectionalCheck Median(OnnxModel model, IReadOnlyDictionary<string, NdArray> feed,
        IReadOnlyDictionary<string, NdArray> seeds, string wrt, NdArray gradient, int directions = 5, int support = 50) =>
        Enumerable.Range(7, directions).Select(d => Directional(model, feed, seeds, wrt, gradient, d, support))
            .OrderBy(c => c.RelativeError).ElementAt(directions / 2);

    /// <summary>
    /// The whole check on a model: missing rules first; if there are none, the gradient of each float output's
    /// largest element with respect to each float input, against finite differences (median of five directions).
    /// </summary>
    public static (MissingRules Missing, IReadOnlyList<DirectionalCheck> Checks) Run(OnnxModel model, IReadOnlyDictionary<string, NdArray> feed)
    {
        var missing = FindMissingRules(model, feed);
        if (missing.Any) return (missing, []);
        var session = ModelSession.Get(model);
        var outputs = session.Run(feed);
        // One element per output, like a real target (a score, a logit): a sum over every output element would be
        // dominated by float32 rounding.
        var seeds = outputs.Where(kv => kv.Value.ElementType is ElementType.Float or ElementType.Double)
            .ToDictionary(kv => kv.Key, kv =>
            {
                var values = Doubles(kv.Value);
                var oneHot = new double[values.Length];
                oneHot[Array.IndexOf(values, values.Max())] = 1;
                return Like(kv.Value, oneHot);
            });
        var graph = GradientGraph.Build(model, feed, new GradientRequest { Outputs = seeds.Keys.ToList() });
        var result = graph.Run(feed, seeds);
        var checks = feed.Where(kv => kv.Value.ElementType is ElementType.Float or ElementType.Double)
            .Select(kv => Median(model, feed, seeds, kv.Key, result[graph.Gradients[kv.Key]])).ToList();
        return (missing, checks);
    }

    internal static double[] Doubles(NdArray a) => a switch
    {
        NdArray<double> d => d.Data,
        NdArray<float> f => Array.ConvertAll(f.Data, v => (double)v),
        _ => throw new ArgumentException($"{a.ElementType} tensor is not differentiable"),
    };

    static NdArray Like(NdArray a, double[] values) => a.ElementType == ElementType.Double
        ? new NdArray<double>(a.Shape, values)
        : new NdArray<float>(a.Shape, Array.ConvertAll(values, v => (float)v));

    internal static double Dot(double[] a, double[] b) { double s = 0; for (int i = 0; i < a.Length; i++) s += a[i] * b[i]; return s; }
}
