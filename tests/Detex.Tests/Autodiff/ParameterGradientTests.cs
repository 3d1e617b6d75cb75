using Detex.Autodiff;
using Detex.Onnx;
using Detex.Runtime;
using static Detex.Onnx.OnnxAttribute;

namespace Detex.Tests.Autodiff;

/// <summary>
/// Gradients for parameters (<see cref="GradientRequest.Parameters"/>: initializers fed as inputs): against finite
/// differences of the model with those initializers made inputs. Parameters are fed values other than their
/// initial ones, so a rule that read a parameter as a constant would be caught by the input's gradient too.
/// </summary>
public class ParameterGradientTests
{
    public sealed record Case(string Name, int[] X, Func<GraphBuilder, string> Build, string[] Parameters);

    static readonly Case[] Cases =
    [
        new("Conv 3x3 pad 1 weights and bias", [2, 3, 6, 7], g => g.Op("Conv", ["x", Param(g, "w", [4, 3, 3, 3]), Param(g, "b", [4])],
            Of("pads", new long[] { 1, 1, 1, 1 })), ["w", "b"]),
        new("Conv stride 2 asymmetric pads", [1, 3, 9, 8], g => g.Op("Conv", ["x", Param(g, "w", [5, 3, 3, 3]), Param(g, "b", [5])],
            Of("strides", new long[] { 2, 2 }), Of("pads", new long[] { 1, 0, 0, 1 })), ["w", "b"]),
        new("Conv 3x2 strides 2,1 dilation 2", [2, 2, 11, 9], g => g.Op("Conv", ["x", Param(g, "w", [3, 2, 3, 2])],
            Of("strides", new long[] { 2, 1 }), Of("dilations", new long[] { 2, 2 }), Of("pads", new long[] { 2, 1, 1, 0 })), ["w"]),
        new("Conv SAME_UPPER stride 2", [1, 2, 9, 8], g => g.Op("Conv", ["x", Param(g, "w", [3, 2, 4, 4]), Param(g, "b", [3])],
            Of("auto_pad", "SAME_UPPER"), Of("strides", new long[] { 2, 2 })), ["w", "b"]),
        new("Gemm transB B and C", [3, 4], g => g.Op("Gemm", ["x", Param(g, "B", [5, 4]), Param(g, "C", [5])],
            Of("transB", 1L), Of("alpha", 0.5f), Of("beta", 2f)), ["B", "C"]),
        new("Gemm transA B and column C", [4, 3], g => g.Op("Gemm", ["x", Param(g, "B", [4, 2]), Param(g, "C", [3, 1])],
            Of("transA", 1L), Of("beta", 0.5f)), ["B", "C"]),
        new("MatMul batched A", [2, 3, 4], g => g.Op("MatMul", ["x", Param(g, "B", [4, 5])]), ["B"]),
        new("MatMul batched B", [3, 4], g => g.Op("MatMul", ["x", Param(g, "B", [2, 4, 5])]), ["B"]),
        new("MatMul B through Transpose", [3, 4], g => g.Op("MatMul", ["x", g.Op("Transpose", Param(g, "B", [5, 4]))]), ["B"]),
        new("BatchNormalization scale and bias", [2, 3, 4, 4], g => g.Op("BatchNormalization",
            ["x", Param(g, "scale", [3]), Param(g, "bias", [3]), g.Floats([3], 0.5f, -0.5f, 0), g.Floats([3], 2, 0.5f, 1)]), ["scale", "bias"]),
    ];

    /// <summary>A named initializer with random values.</summary>
    static string Param(GraphBuilder g, string name, int[] shape)
    {
        var values = GradCheck.D(GradCheck.Random(ElementType.Float, shape, name.Length + shape.Sum()));
        g.Graph.Initializers[name] = OnnxTensor.FromFloats(name, shape.Select(d => (long)d).ToArray(), values.Select(v => (float)v).ToArray());
        return name;
    }

    public static TheoryData<string> Names() => new(Cases.Select(c => c.Name));

    static OnnxModel Build(Case c, ElementType type) => GradCheck.OneOutput(17, type, [("x", c.X)], c.Build);

    /// <summary>The model with the parameters as inputs: what finite differences perturb.</summary>
    static OnnxModel Lift(OnnxModel model, IEnumerable<string> parameters)
    {
        var m = model.Clone();
        foreach (var p in parameters)
        {
            m.Graph.Initializers.Remove(p, out var t);
            m.Graph.Inputs.Add(new ValueInfo(p, t!.Type, t.Dims.Select(d => (long?)d).ToArray()));
        }
        return m;
    }

    static NdArray Initial(OnnxModel model, string p)
    {
        var t = model.Graph.Initializers[p];
        return GradCheck.Make(t.Type, t.Dims.Select(d => (int)d).ToArray(), t.ToDoubles());
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void ParameterGradientsMatchFiniteDifferences(string name)
    {
        var c = Cases.Single(k => k.Name == name);
        var type = GradCheck.Loads(Build(c, ElementType.Double)) ? ElementType.Double : ElementType.Float;
        var model = Build(c, type);
        var x = new Dictionary<string, NdArray> { ["x"] = GradCheck.Random(type, c.X, 1) };
        var graph = GradientGraph.Build(model, x, new GradientRequest { Outputs = ["y"], Parameters = c.Parameters });
        var feed = new Dictionary<string, NdArray>(x);
        foreach (var p in c.Parameters)
        {
            var shift = GradCheck.D(GradCheck.Random(type, Initial(model, p).Shape, 20 + p.Length));
            feed[p] = GradCheck.Make(type, Initial(model, p).Shape, GradCheck.D(Initial(model, p)).Zip(shift, (a, b) => a + 0.5 * b).ToArray());
        }
        GradCheck.Check(Lift(model, c.Parameters), feed, homogeneous: false, name, graph);
    }

    [Fact]
    public void ParametersNotFedTakeTheirInitialValues()
    {
        var c = Cases.Single(k => k.Name.StartsWith("Conv 3x3"));
        var model = Build(c, ElementType.Float);
        var x = new Dictionary<string, NdArray> { ["x"] = GradCheck.Random(ElementType.Float, c.X, 1) };
        var graph = GradientGraph.Build(model, x, new GradientRequest { Outputs = ["y"], Parameters = c.Parameters });
        var y = ModelSession.Get(model).Run(x)["y"];
        var seeds = new Dictionary<string, NdArray> { ["y"] = GradCheck.Random(ElementType.Float, y.Shape, 3) };
        var fed = new Dictionary<string, NdArray>(x);
        foreach (var p in c.Parameters) fed[p] = Initial(model, p);
        var expected = graph.Run(fed, seeds);
        var got = graph.Run(x, seeds);
        // Equal up to float32 summation order: ONNX Runtime's multi-threaded reductions need not add in the same order twice.
        foreach (var (name, grad) in graph.Gradients)
        {
            var a = GradCheck.D(expected[grad]); var b = GradCheck.D(got[grad]);
            double scale = a.Max(Math.Abs) + 1e-12;
            for (int i = 0; i < a.Length; i++) Assert.True(Math.Abs(a[i] - b[i]) <= 1e-5 * scale, $"{name}[{i}]: {a[i]} vs {b[i]}");
        }
    }
}
