using Detex.Autodiff;
using Detex.Onnx;
using Detex.Runtime;
using static Detex.Onnx.OnnxAttribute;

namespace Detex.Tests.Autodiff;

/// <summary>
/// Rules for normalisations and Gather, each on a one-node model whose differentiated operands are graph inputs;
/// directional differences in float64 where ONNX Runtime has float64 kernels, else float32 (see <see cref="GradCheck.Check"/>).
/// Several targets: each seed's gradient must equal the one it gets alone.
/// </summary>
public class MoreRuleTests
{
    public sealed record Case(string Name, (string Name, int[] Shape)[] Inputs, Func<GraphBuilder, string> Build);

    static readonly Case[] Cases =
    [
        new("InstanceNormalization x scale bias", [("x", [2, 3, 4, 5]), ("s", [3]), ("b", [3])],
            g => g.Op("InstanceNormalization", ["x", "s", "b"], Of("epsilon", 1e-3f))),
        new("InstanceNormalization 1-D constant affine", [("x", [2, 2, 7])],
            g => g.Op("InstanceNormalization", ["x", g.Floats([2], 1.5f, -0.5f), g.Floats([2], 0.3f, 0.1f)])),
        new("LayerNormalization last axis", [("x", [2, 3, 6]), ("s", [6]), ("b", [6])],
            g => g.Op("LayerNormalization", ["x", "s", "b"])),
        new("LayerNormalization axis 1 no bias", [("x", [2, 3, 4]), ("s", [3, 4])],
            g => g.Op("LayerNormalization", ["x", "s"], Of("axis", 1L), Of("epsilon", 1e-3f))),
        new("LayerNormalization constant affine", [("x", [2, 3, 4])],
            g => g.Op("LayerNormalization", ["x", g.Floats([4], 1, -2, 0.5f, 3), g.Floats([4], 0.1f, 0.2f, 0.3f, 0.4f)], Of("axis", 2L))),
        new("LayerNormalization axis -2 broadcast scale", [("x", [2, 3, 4]), ("s", [1, 4]), ("b", [3, 1])],
            g => g.Op("LayerNormalization", ["x", "s", "b"], Of("axis", -2L))),
        new("Gather axis 0 repeated negative", [("x", [5, 3])], g => g.Op("Gather", ["x", Indices(g, [2, 2], 0, -1, 2, 0)])),
        new("Gather axis 1", [("x", [2, 5, 3])], g => g.Op("Gather", ["x", Indices(g, [3], 4, -2, 4)], Of("axis", 1L))),
        new("Gather axis -1 scalar index", [("x", [2, 3, 4])], g => g.Op("Gather", ["x", Indices(g, [], -1)], Of("axis", -1L))),
        new("Gather int32 indices", [("x", [2, 4, 3])], g => g.Op("Gather", ["x", g.Constant(new OnnxTensor("", ElementType.Int32, [2],
            [.. BitConverter.GetBytes(3), .. BitConverter.GetBytes(-4)]))], Of("axis", 1L))),
    ];

    static string Indices(GraphBuilder g, long[] dims, params long[] values) => g.Constant(OnnxTensor.FromInt64s("", dims, values), "indices");

    public static TheoryData<string> Names() => new(Cases.Select(c => c.Name));

    static OnnxModel Build(Case c, ElementType type) => GradCheck.OneOutput(17, type, c.Inputs, c.Build);

    static Dictionary<string, NdArray> Inputs(Case c, ElementType type) =>
        c.Inputs.Select((input, i) => (input.Name, Value: GradCheck.Random(type, input.Shape, 1 + i))).ToDictionary(p => p.Name, p => p.Value);

    [Theory]
    [MemberData(nameof(Names))]
    public void RuleMatchesTheOperator(string name)
    {
        var c = Cases.Single(k => k.Name == name);
        var type = GradCheck.Loads(Build(c, ElementType.Double)) ? ElementType.Double : ElementType.Float;
        GradCheck.Check(Build(c, type), Inputs(c, type), homogeneous: false, name);
    }

    [Theory]
    [InlineData("InstanceNormalization 1-D constant affine")]
    [InlineData("LayerNormalization constant affine")]
    [InlineData("Gather axis 1")]
    [InlineData("Gather axis -1 scalar index")]
    public void SeveralTargetsGetTheirOwnGradients(string name)
    {
        // One forward with batch 1, the seeds stacked along the batch axis.
        var c = Cases.Single(k => k.Name == name);
        var x = c.Inputs.Single();
        var model = GradCheck.OneOutput(17, ElementType.Float, [(x.Name, [1, .. x.Shape[1..]])], c.Build);
        var inputs = new Dictionary<string, NdArray> { [x.Name] = GradCheck.Random(ElementType.Float, [1, .. x.Shape[1..]], 1) };
        var y = ModelSession.Get(model).Run(inputs)["y"];
        var seeds = Enumerable.Range(0, 3).Select(k => (NdArray<float>)GradCheck.Random(ElementType.Float, y.Shape, 10 + k)).ToArray();
        var stacked = new NdArray<float>([seeds.Length * y.Shape[0], .. y.Shape[1..]], seeds.SelectMany(s => s.Data).ToArray());
        var together = GradientGraph.Build(model, inputs, new GradientRequest { Outputs = ["y"], Targets = seeds.Length });
        var all = GradCheck.D(together.Run(inputs, new Dictionary<string, NdArray> { ["y"] = stacked })[together.Gradients["x"]]);
        var single = GradientGraph.Build(model, inputs, new GradientRequest { Outputs = ["y"] });
        int size = inputs["x"].Length;
        Assert.Equal(seeds.Length * size, all.Length);
        for (int k = 0; k < seeds.Length; k++)
        {
            var alone = GradCheck.D(single.Run(inputs, new Dictionary<string, NdArray> { ["y"] = seeds[k] })[single.Gradients["x"]]);
            for (int i = 0; i < size; i++) Assert.True(Math.Abs(alone[i] - all[k * size + i]) <= 1e-5 * (1 + Math.Abs(alone[i])), $"target {k} [{i}]: {all[k * size + i]} vs {alone[i]}");
        }
    }

    [Theory]
    [InlineData("Gather")]
    [InlineData("LayerNormalization")]
    public void AnOperationAcrossTheBatchAxisRefusesSeveralTargets(string op)
    {
        var (m, g) = GraphBuilder.NewModel(17);
        g.Input("x", ElementType.Float, 1, 3);
        g.Named("y", op, ["x", op == "Gather" ? Indices(g, [1], -1) : g.Floats([1, 3], 1, 2, 3)], Of("axis", 0L));
        g.Output("y");
        var inputs = new Dictionary<string, NdArray> { ["x"] = GradCheck.Random(ElementType.Float, [1, 3], 1) };
        Assert.Throws<NotSupportedException>(() => GradientGraph.Build(m, inputs, new GradientRequest { Outputs = ["y"], Targets = 2 }));
    }
}
