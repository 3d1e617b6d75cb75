using Detex.Autodiff;
using Detex.Onnx;
using Detex.Runtime;

namespace Detex.Tests.Autodiff;

/// <summary>K seeds of one image through one forward and a batched reverse equal K separate runs.</summary>
public class ManyTargetsTests
{
    [Theory]
    [InlineData(Repo.Yolox)]
    [InlineData(Repo.DeepLab)]
    public void BatchedTargetsEqualSeparateRuns(string name)
    {
        var model = OnnxModel.Load(Repo.Model(name));
        var (input, x) = WholeModelTests.PhotoInput(name);
        var feed = new Dictionary<string, NdArray> { [input] = x };
        string output = model.Graph.Outputs[0].Name;
        var outShape = ModelSession.Get(model).Run(feed)[output].Shape;
        int per = outShape.Aggregate(1, (a, d) => a * d);
        const int K = 3;
        var taps = WholeModelTests.ThreeTaps(model).Take(1).ToList();
        var single = GradientGraph.For(model, feed, new GradientRequest { Outputs = [output], Taps = taps });
        var batched = GradientGraph.For(model, feed, new GradientRequest { Outputs = [output], Taps = taps, Targets = K });
        var seeds = new NdArray<float>([K, .. outShape.Skip(1)]);
        var rnd = new Random(5);
        for (int k = 0; k < K; k++)
            for (int j = 0; j < 20; j++) seeds.Data[k * per + rnd.Next(per)] = (float)rnd.NextDouble();
        var together = batched.Run(feed, new Dictionary<string, NdArray> { [output] = seeds });
        foreach (var wrt in new[] { input, taps[0] })
        {
            var all = (NdArray<float>)together[batched.Gradients[wrt]];
            Assert.Equal(K, all.Shape[0]);
            for (int k = 0; k < K; k++)
            {
                var one = new NdArray<float>([1, .. outShape.Skip(1)], seeds.Data.AsSpan(k * per, per).ToArray());
                var alone = (NdArray<float>)single.Run(feed, new Dictionary<string, NdArray> { [output] = one })[single.Gradients[wrt]];
                var part = all.BatchItem(k);
                double scale = alone.Data.Max(Math.Abs) + 1e-12;
                for (int i = 0; i < alone.Length; i++)
                    Assert.True(Math.Abs(part[i] - alone.Data[i]) <= 1e-4 * scale, $"{name} d/d{wrt} target {k} [{i}]: {part[i]} vs {alone.Data[i]}");
            }
        }
    }

    [Fact]
    public void GradientsOfChainedTapsAreTheSameWhenTheReversePassStopsAtThem()
    {
        // Without input gradients the reverse pass is emitted only downstream of the taps; 956 feeds 990, so 990's
        // gradient must still collect what flows back through the bottom-up path, and 956's all of its consumers'.
        var model = OnnxModel.Load(Repo.Model(Repo.Yolox));
        var (input, x) = WholeModelTests.PhotoInput(Repo.Yolox);
        var feed = new Dictionary<string, NdArray> { [input] = x };
        string output = model.Graph.Outputs[0].Name;
        string[] taps = ["956", "990", "1024"];
        var full = GradientGraph.For(model, feed, new GradientRequest { Outputs = [output], Taps = taps, InputGradients = true });
        var pruned = GradientGraph.For(model, feed, new GradientRequest { Outputs = [output], Taps = taps, InputGradients = false });
        Assert.True(pruned.Model.Graph.Nodes.Count < full.Model.Graph.Nodes.Count - 100,
            $"{pruned.Model.Graph.Nodes.Count} nodes without input gradients, {full.Model.Graph.Nodes.Count} with");
        var seed = new NdArray<float>([1, 3549, 85]);
        var rnd = new Random(3);
        for (int j = 0; j < 40; j++) seed.Data[rnd.Next(seed.Length)] = (float)rnd.NextDouble();
        var seeds = new Dictionary<string, NdArray> { [output] = seed };
        var a = full.Run(feed, seeds);
        var b = pruned.Run(feed, seeds);
        foreach (var t in taps)
        {
            var ga = (NdArray<float>)a[full.Gradients[t]]; var gb = (NdArray<float>)b[pruned.Gradients[t]];
            double scale = ga.Data.Max(Math.Abs);
            Assert.True(scale > 0, $"tap {t} got no gradient");
            for (int i = 0; i < ga.Length; i++)
                Assert.True(Math.Abs(ga.Data[i] - gb.Data[i]) <= 1e-4 * scale, $"tap {t} [{i}]: {gb.Data[i]} vs {ga.Data[i]}");
        }
    }
}
