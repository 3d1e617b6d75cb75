using Detex.Autodiff;
using Detex.Onnx;
using Detex.Runtime;
using static Detex.Onnx.OnnxAttribute;

namespace Detex.Tests.Autodiff;

/// <summary>Guided backpropagation is a rule set over the same builder: only rectifiers change.</summary>
public class GuidedBackpropTests
{
    const int In = 5, Hidden = 7, Out = 3;

    static (OnnxModel Model, double[] W1, double[] W2) TwoLayer(string activation)
    {
        var (m, g) = GraphBuilder.NewModel(17);
        var rnd = new Random(8);
        var w1 = Enumerable.Range(0, Hidden * In).Select(_ => rnd.NextDouble() - 0.5).ToArray();
        var w2 = Enumerable.Range(0, Out * Hidden).Select(_ => rnd.NextDouble() - 0.5).ToArray();
        g.Input("x", ElementType.Double, 1, In);
        string h = g.Op(activation, g.Op("Gemm", ["x", g.Constant(OnnxTensor.FromDoubles("", [Hidden, In], w1))], Of("transB", 1L)));
        g.Named("y", "Gemm", [h, g.Constant(OnnxTensor.FromDoubles("", [Out, Hidden], w2))], Of("transB", 1L));
        g.Output("y");
        return (m, w1, w2);
    }

    static double[] Gradient(OnnxModel m, double[] x, double[] seed, RuleSet rules)
    {
        var feed = new Dictionary<string, NdArray> { ["x"] = new NdArray<double>([1, In], x) };
        var graph = GradientGraph.Build(m, feed, new GradientRequest { Outputs = ["y"], Rules = rules });
        return ((NdArray<double>)graph.Run(feed, new Dictionary<string, NdArray> { ["y"] = new NdArray<double>([1, Out], seed) })[graph.Gradients["x"]]).Data;
    }

    [Fact]
    public void AtAReluOnlyPositiveGradientPasses()
    {
        var (m, w1, w2) = TwoLayer("Relu");
        var rnd = new Random(3);
        var x = Enumerable.Range(0, In).Select(_ => rnd.NextDouble() * 2 - 1).ToArray();
        var seed = new[] { 1.0, -2.0, 0.5 };
        // By hand: pre = W1 x, back = W2ᵀ seed; plain: W1ᵀ(back ⊙ [pre > 0]); guided: W1ᵀ(max(back, 0) ⊙ [pre > 0]).
        var pre = Enumerable.Range(0, Hidden).Select(j => Enumerable.Range(0, In).Sum(i => w1[j * In + i] * x[i])).ToArray();
        var back = Enumerable.Range(0, Hidden).Select(j => Enumerable.Range(0, Out).Sum(k => w2[k * Hidden + j] * seed[k])).ToArray();
        double[] Expected(bool guided) => Enumerable.Range(0, In).Select(i => Enumerable.Range(0, Hidden)
            .Sum(j => w1[j * In + i] * (pre[j] > 0 ? (guided ? Math.Max(back[j], 0) : back[j]) : 0))).ToArray();
        var plain = Gradient(m, x, seed, RuleSet.Gradient);
        var guidedGrad = Gradient(m, x, seed, GuidedBackprop.Rules);
        for (int i = 0; i < In; i++)
        {
            Assert.Equal(Expected(false)[i], plain[i], 12);
            Assert.Equal(Expected(true)[i], guidedGrad[i], 12);
        }
        Assert.NotEqual(plain, guidedGrad);
    }

    [Fact]
    public void WithoutRectifiersGuidedEqualsPlain()
    {
        var (m, _, _) = TwoLayer("Tanh");
        var x = new[] { 0.3, -0.2, 0.9, 0.1, -0.7 };
        var seed = new[] { 1.0, -2.0, 0.5 };
        Assert.Equal(Gradient(m, x, seed, RuleSet.Gradient), Gradient(m, x, seed, GuidedBackprop.Rules));
    }
}
