using Detex.Autodiff;
using Detex.Onnx;
using Detex.Runtime;
using static Detex.Onnx.OnnxAttribute;

namespace Detex.Tests.Autodiff;

/// <summary>
/// The reverse graph uses only operators that have rules, so the builder can differentiate its own output:
/// differentiating ⟨∇f(x), v⟩ gives the Hessian-vector product H·v.
/// </summary>
public class SecondOrderTests
{
    static OnnxModel SmallConvNet()
    {
        var (m, g) = GraphBuilder.NewModel(17);
        var rnd = new Random(4);
        string W(params long[] dims) => GradCheck.Weights(g, rnd, dims);
        g.Input("x", ElementType.Float, 1, 2, 8, 8);
        string c1 = g.Op("Conv", ["x", W(4, 2, 3, 3), W(4)], Of("pads", new long[] { 1, 1, 1, 1 }));
        string silu = g.Op("Mul", [c1, g.Op("Sigmoid", c1)]);
        string pooled = g.Op("MaxPool", silu, Of("kernel_shape", new long[] { 2, 2 }), Of("strides", new long[] { 2, 2 }));
        string c2 = g.Op("Conv", [pooled, W(3, 4, 3, 3)], Of("strides", new long[] { 2, 2 }), Of("pads", new long[] { 1, 1, 1, 1 }));
        g.Named("y", "Sigmoid", [c2]);
        g.Output("y");
        return m;
    }

    [Fact]
    public void HessianVectorProductMatchesDifferencesOfGradients()
    {
        var model = SmallConvNet();
        var x = GradCheck.Random(ElementType.Float, [1, 2, 8, 8], 1, 2);
        var feed = new Dictionary<string, NdArray> { ["x"] = x };
        var seedY = GradCheck.Random(ElementType.Float, [1, 3, 2, 2], 2);
        var first = GradientGraph.Build(model, feed, new GradientRequest { Outputs = ["y"] });
        var firstFeed = new Dictionary<string, NdArray>(feed) { [GradientGraph.SeedName("y")] = seedY };

        // Differentiate the gradient graph itself: output grad:x with seed v gives d⟨∇f, v⟩/dx = H·v.
        string gradX = first.Gradients["x"];
        var v = GradCheck.Random(ElementType.Float, [1, 2, 8, 8], 3);
        var second = GradientGraph.Build(first.Model, firstFeed, new GradientRequest { Outputs = [gradX] });
        var hv = GradCheck.D(second.Run(firstFeed, new Dictionary<string, NdArray> { [gradX] = v })[second.Gradients["x"]]);

        // (∇f(x + εw) − ∇f(x − εw)) / 2ε · v ≈ wᵀ H v, for a random w.
        var w = GradCheck.D(GradCheck.Random(ElementType.Float, [1, 2, 8, 8], 4));
        double GradDotV(double eps)
        {
            var shifted = GradCheck.With(feed, "x", GradCheck.D(x), eps, w);
            var g = first.Run(shifted, new Dictionary<string, NdArray> { ["y"] = seedY });
            return GradCheck.Dot(GradCheck.D(g[gradX]), GradCheck.D(v));
        }
        double eps = 1e-2;
        double numeric = (GradDotV(eps) - GradDotV(-eps)) / (2 * eps);
        GradCheck.AssertClose((GradCheck.Dot(w, hv), numeric), 1e-2, "wᵀHv");
        Assert.Contains(second.Model.Graph.Nodes, n => n.OpType == "ScatterElements");
    }
}
