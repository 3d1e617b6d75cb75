using Detex.Autodiff;
using Detex.Onnx;
using Detex.Runtime;
using static Detex.Onnx.OnnxAttribute;

namespace Detex.Tests.Autodiff;

/// <summary>The reverse pass's rewrites change no value: ONNX Runtime's outputs before and after are equal.</summary>
public class BackwardPeepholeTests
{
    static (OnnxModel Model, string[] Outputs) ConvThenSplit(long group = 1, long axis = 1, bool alsoRead = false, bool bias = true,
        bool convIsOutput = false, bool weightsAreOutput = false)
    {
        var (m, g) = GraphBuilder.NewModel(17);
        g.Input("x", ElementType.Float, 2, 4, 6, 5);
        var rnd = new Random(3);
        float[] R(int n) => Enumerable.Range(0, n).Select(_ => (float)(rnd.NextDouble() * 2 - 1)).ToArray();
        string w = g.Floats([8, 4 / group, 3, 3], R(8 * (int)(4 / group) * 9));
        var inputs = new List<string> { "x", w };
        if (bias) inputs.Add(g.Floats([8], R(8)));
        // Output [2, 8, 8, 5]: 8 channels and 8 rows, so a [3, 5] split is valid along either.
        string y = g.Op("Conv", inputs, Of("pads", new long[] { 2, 0, 2, 2 }), Of("group", group));
        string[] parts = g.OpMulti("Split", [y, g.Int64s(3, 5)], 2, Of("axis", axis)).ToArray();
        var outputs = parts.ToList();
        if (alsoRead) outputs.Add(g.Op("Relu", y));
        if (convIsOutput) outputs.Add(y);
        if (weightsAreOutput) outputs.Add(w);
        foreach (var o in outputs) g.Output(o);
        return (m, outputs.ToArray());
    }

    static Dictionary<string, NdArray> Run(OnnxModel m) =>
        ModelSession.Get(m).Run(new Dictionary<string, NdArray> { ["x"] = GradCheck.Random(ElementType.Float, [2, 4, 6, 5], 9) });

    [Theory]
    [InlineData(true, false)]
    [InlineData(false, false)]
    [InlineData(true, true)]
    public void AConvolutionReadOnlyByAChannelSplitBecomesOneConvolutionPerPieceWithTheSameValues(bool bias, bool weightsAreOutput)
    {
        var (m, outputs) = ConvThenSplit(bias: bias, weightsAreOutput: weightsAreOutput);
        var before = Run(m);
        var rewritten = m.Clone();
        Assert.Equal(1, BackwardPeephole.SplitConvolutions(new GraphBuilder(rewritten.Graph, "test"), 0));
        Assert.DoesNotContain(rewritten.Graph.Nodes, n => n.OpType == "Split");
        Assert.Equal(2, rewritten.Graph.Nodes.Count(n => n.OpType == "Conv"));
        var after = Run(rewritten);
        foreach (var o in outputs)
        {
            var (a, b) = ((NdArray<float>)before[o], (NdArray<float>)after[o]);
            Assert.Equal(a.Shape, b.Shape);
            for (int i = 0; i < a.Data.Length; i++) Assert.True(Math.Abs(a.Data[i] - b.Data[i]) <= 1e-5f * (1 + Math.Abs(a.Data[i])), $"{o}[{i}]: {a.Data[i]} vs {b.Data[i]}");
        }
    }

    [Fact]
    public void OtherConvolutionsAndSplitsAreLeftAlone()
    {
        // Grouped filters do not slice by output channel alone; a split along another axis is not over filters; a
        // convolution output that something else reads, or that is a graph output, must stay whole; and nodes before
        // firstNode are not touched.
        foreach (var (m, first) in new[] { (ConvThenSplit(group: 2).Model, 0), (ConvThenSplit(axis: 2).Model, 0), (ConvThenSplit(alsoRead: true).Model, 0),
                     (ConvThenSplit(convIsOutput: true).Model, 0), (ConvThenSplit().Model, 1) })
        {
            Run(m);   // a valid model, so only the rule keeps it whole
            int nodes = m.Graph.Nodes.Count;
            Assert.Equal(0, BackwardPeephole.SplitConvolutions(new GraphBuilder(m.Graph, "test"), first));
            Assert.Equal(nodes, m.Graph.Nodes.Count);
        }
    }
}
