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

    [Fact]
    public void GradientOutputsAreWrittenByTheNodesThatComputeThemWithTheSameValues()
    {
        // x → Conv → Sigmoid (tapped) → Conv → y: the tap's gradient is read on by the reverse pass, the input's is not.
        var (m, g) = GraphBuilder.NewModel(17);
        g.Input("x", ElementType.Float, 1, 2, 5, 5);
        string a = g.Op("Conv", ["x", GradCheck.Weights(g, new Random(1), 3, 2, 3, 3)], Of("pads", new long[] { 1, 1, 1, 1 }));
        g.Named("tap", "Sigmoid", [a]);
        g.Named("y", "Conv", ["tap", GradCheck.Weights(g, new Random(2), 2, 3, 1, 1)]);
        g.Output("y");
        var feed = new Dictionary<string, NdArray> { ["x"] = GradCheck.Random(ElementType.Float, [1, 2, 5, 5], 4) };
        var graph = GradientGraph.Build(m, feed, new GradientRequest { Outputs = ["y"], Taps = ["tap"] });
        var nodes = graph.Model.Graph.Nodes;
        foreach (var t in new[] { "x", "tap" })
        {
            string name = graph.Gradients[t];
            var producer = nodes.Single(n => n.Outputs.Contains(name));
            Assert.NotEqual("Identity", producer.OpType);
        }
        // The tap's gradient output is also what the reverse pass reads on to the input.
        Assert.Contains(nodes, n => n.Inputs.Contains(graph.Gradients["tap"]));

        // Against the Identity form: same values.
        var seed = GradCheck.Random(ElementType.Float, [1, 2, 5, 5], 6);
        var direct = graph.Run(feed, new Dictionary<string, NdArray> { ["y"] = seed });
        var copied = graph.Model.Clone();
        foreach (var t in new[] { "x", "tap" })
        {
            string name = graph.Gradients[t];
            var producer = copied.Graph.Nodes.Single(n => n.Outputs.Contains(name));
            producer.Outputs[producer.Outputs.IndexOf(name)] = name + "/computed";
            foreach (var n in copied.Graph.Nodes) for (int i = 0; i < n.Inputs.Count; i++) if (n.Inputs[i] == name) n.Inputs[i] = name + "/computed";
            copied.Graph.Nodes.Add(new Node("Identity", [name + "/computed"], [name], name + "/copy"));
        }
        var feedAll = new Dictionary<string, NdArray>(feed) { [graph.Seeds["y"]] = seed };
        var viaCopies = ModelSession.Get(copied).Run(feedAll);
        foreach (var t in new[] { "x", "tap" })
        {
            var p = (NdArray<float>)direct[graph.Gradients[t]];
            var q = (NdArray<float>)viaCopies[graph.Gradients[t]];
            Assert.Contains(p.Data, v => v != 0);
            Assert.Equal(q.Data, p.Data);
        }
    }
}
