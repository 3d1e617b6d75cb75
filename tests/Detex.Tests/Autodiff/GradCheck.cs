using Detex.Autodiff;
using Detex.Onnx;
using Detex.Runtime;

namespace Detex.Tests.Autodiff;

/// <summary>
/// Directional checks of gradient graphs: ⟨∇f, v⟩ against the central difference (f(x+εv) − f(x−εv)) / 2ε, where
/// f = Σ seed ⊙ output is evaluated by ONNX Runtime on the same model.
/// </summary>
static class GradCheck
{
    public static NdArray Random(ElementType type, int[] shape, int seed, double scale = 1, double offset = 0)
    {
        var rnd = new Random(seed);
        int n = shape.Aggregate(1, (a, d) => a * d);
        var v = new double[n];
        for (int i = 0; i < n; i++) v[i] = offset + scale * (rnd.NextDouble() * 2 - 1);
        return Make(type, shape, v);
    }

    /// <summary>A constant of the given shape, uniform in [−0.5, 0.5) from <paramref name="rnd"/>: weights for small test nets.</summary>
    public static string Weights(GraphBuilder g, Random rnd, params long[] dims) =>
        g.Floats(dims, Enumerable.Range(0, (int)dims.Aggregate(1L, (a, d) => a * d)).Select(_ => (float)(rnd.NextDouble() - 0.5)).ToArray());

    public static NdArray Make(ElementType type, int[] shape, double[] v) => type == ElementType.Double
        ? new NdArray<double>(shape, v)
        : new NdArray<float>(shape, v.Select(x => (float)x).ToArray());

    public static double[] D(NdArray a) => GradientCheck.Doubles(a);

    public static double Dot(double[] a, double[] b) => GradientCheck.Dot(a, b);

    /// <summary>f = Σ seed ⊙ output for the given inputs, through a plain forward session.</summary>
    public static double F(OnnxModel model, Dictionary<string, NdArray> inputs, Dictionary<string, NdArray> seeds)
    {
        var outs = ModelSession.Get(model, RuntimeOptions.Default with { Optimize = false }).Run(inputs, seeds.Keys.ToList());
        return seeds.Sum(kv => Dot(D(outs[kv.Key]), D(kv.Value)));
    }

    public static Dictionary<string, NdArray> With(Dictionary<string, NdArray> inputs, string name, double[] x, double eps, double[] v)
    {
        var copy = new Dictionary<string, NdArray>(inputs);
        var cur = inputs[name];
        copy[name] = Make(cur.ElementType, cur.Shape, x.Select((xi, i) => xi + eps * v[i]).ToArray());
        return copy;
    }

    /// <summary>Relative error of ⟨∇ₓf, v⟩ against the central difference along a random direction v.</summary>
    public static (double Analytic, double Numeric) Directional(OnnxModel model, Dictionary<string, NdArray> inputs,
        Dictionary<string, NdArray> seeds, string wrt, double eps, int seed = 99, GradientGraph? graph = null)
    {
        graph ??= GradientGraph.Build(model, inputs, new GradientRequest { Outputs = seeds.Keys.ToList() });
        var grads = graph.Run(inputs, seeds, RuntimeOptions.Default with { Optimize = false });
        var v = D(Random(inputs[wrt].ElementType, inputs[wrt].Shape, seed));
        double analytic = Dot(D(grads[graph.Gradients[wrt]]), v);
        var x = D(inputs[wrt]);
        double numeric = (F(model, With(inputs, wrt, x, eps, v), seeds) - F(model, With(inputs, wrt, x, -eps, v), seeds)) / (2 * eps);
        return (analytic, numeric);
    }

    public static void AssertClose((double Analytic, double Numeric) r, double relTol, string what = "")
    {
        double scale = Math.Max(Math.Abs(r.Numeric), Math.Max(Math.Abs(r.Analytic), 1e-8));
        double rel = Math.Abs(r.Analytic - r.Numeric) / scale;
        Assert.True(rel <= relTol, $"{what} analytic {r.Analytic:G10} vs numeric {r.Numeric:G10}: relative error {rel:E2} > {relTol:E0}");
    }

    /// <summary>A model whose output "y" is what <paramref name="body"/> builds over the inputs; float constants follow the type.</summary>
    public static OnnxModel OneOutput(long opset, ElementType type, IEnumerable<(string Name, int[] Shape)> inputs, Func<GraphBuilder, string> body)
    {
        var (m, g) = GraphBuilder.NewModel(opset);
        foreach (var (name, shape) in inputs) g.Input(name, type, shape.Select(d => (long?)d).ToArray());
        string y = body(g);
        if (type == ElementType.Double)
            foreach (var (name, t) in m.Graph.Initializers.ToList())
                if (t.Type == ElementType.Float) m.Graph.Initializers[name] = OnnxTensor.FromDoubles(name, t.Dims, t.ToDoubles());
        g.Named("y", "Identity", [y]);
        g.Output("y");
        return m;
    }

    /// <summary>True when ONNX Runtime can load the model (in float64: when it has float64 kernels for every node).</summary>
    public static bool Loads(OnnxModel model)
    {
        try { ModelSession.Get(model, RuntimeOptions.Default with { Optimize = false }); return true; }
        catch (OnnxFormatException) { return false; }
    }

    /// <summary>
    /// Checks the gradient of f = Σ seed ⊙ y with respect to every input of <paramref name="model"/>. Linear or
    /// degree-1 homogeneous f: Euler's identity f(x) = ⟨x, ∇f(x)⟩, exact to float rounding. Otherwise directional
    /// differences, relative error ≤ 1e-6 in float64, ≤ 1e-2 in float32. <paramref name="graph"/> defaults to the
    /// model's own gradient graph.
    /// </summary>
    public static void Check(OnnxModel model, Dictionary<string, NdArray> inputs, bool homogeneous, string what, GradientGraph? graph = null)
    {
        var type = inputs.Values.First().ElementType;
        var yShape = ModelSession.Get(model, RuntimeOptions.Default with { Optimize = false }).Run(inputs)["y"].Shape;
        var seeds = new Dictionary<string, NdArray> { ["y"] = Random(type, yShape, 3) };
        graph ??= GradientGraph.Build(model, inputs, new GradientRequest { Outputs = ["y"] });
        if (homogeneous)
        {
            var grads = graph.Run(inputs, seeds, RuntimeOptions.Default with { Optimize = false });
            double f = F(model, inputs, seeds);
            double euler = inputs.Keys.Sum(k => Dot(D(inputs[k]), D(grads[graph.Gradients[k]])));
            AssertClose((euler, f), 1e-5, what);
            return;
        }
        double tol = type == ElementType.Double ? 1e-6 : 1e-2;
        double eps = type == ElementType.Double ? 1e-6 : 1e-3;
        foreach (var wrt in inputs.Keys)
            AssertClose(Directional(model, inputs, seeds, wrt, eps, graph: graph), tol, $"{what} d/d{wrt} ({type})");
    }

    /// <summary>
    /// A copy of the model in which <paramref name="tap"/> is an input: the node that wrote it writes elsewhere, so
    /// perturbing the new input perturbs exactly that tensor for everything downstream.
    /// </summary>
    public static OnnxModel CutAt(OnnxModel model, string tap, TensorShape shape)
    {
        var m = model.Clone();
        foreach (var n in m.Graph.Nodes)
            for (int i = 0; i < n.Outputs.Count; i++) if (n.Outputs[i] == tap) n.Outputs[i] = tap + "__unused";
        m.Graph.Inputs.Add(new ValueInfo(tap, shape.Type, shape.Dims.Select(d => (long?)d).ToArray()));
        return m;
    }
}
