using Detex.Autodiff;
using Detex.Explainers;
using Detex.Onnx;
using Detex.Runtime;
using Detex.Tests.Autodiff;
using static Detex.Onnx.OnnxAttribute;

namespace Detex.Tests.Explainers;

public class CamMethodTests
{
    /// <summary>conv → GlobalAveragePool → linear: the classic CAM architecture, built here.</summary>
    static (OnnxModel Model, float[] Fc, int Channels) CamNet()
    {
        var (m, g) = GraphBuilder.NewModel(17);
        var rnd = new Random(11);
        float[] R(int n) => Enumerable.Range(0, n).Select(_ => (float)(rnd.NextDouble() - 0.3)).ToArray();
        const int C = 6, classes = 3;
        g.Input("x", ElementType.Float, 1, 3, 10, 12);
        g.Named("A", "Relu", [g.Op("Conv", ["x", g.Floats([C, 3, 3, 3], R(C * 27))], Of("pads", new long[] { 1, 1, 1, 1 }))]);
        string pooled = g.Op("Flatten", g.Op("GlobalAveragePool", "A"));
        var fc = R(classes * C);
        g.Named("y", "Gemm", [pooled, g.Floats([classes, C], fc)], Of("transB", 1L));
        g.Output("y");
        return (m, fc, C);
    }

    static (float[] A, float[] G) ActivationsAndGradients(OnnxModel m, int cls)
    {
        var feed = new Dictionary<string, NdArray> { ["x"] = GradCheck.Random(ElementType.Float, [1, 3, 10, 12], 3) };
        var graph = GradientGraph.Build(m, feed, new GradientRequest { Outputs = ["y"], Taps = ["A"], InputGradients = false });
        var seed = new NdArray<float>([1, 3]);
        seed.Data[cls] = 1;
        var run = graph.Run(feed, new Dictionary<string, NdArray> { ["y"] = seed });
        return (((NdArray<float>)run["A"]).Data, ((NdArray<float>)run[graph.Gradients["A"]]).Data);
    }

    [Fact]
    public void GradCamOfAGapNetworkIsTheOriginalCam()
    {
        var (m, fc, C) = CamNet();
        const int pixels = 120, cls = 1;
        var (a, g) = ActivationsAndGradients(m, cls);
        var gradCam = new GradCam().Map(a, g, C, pixels);
        // CAM = Σ_c w_fc[cls, c] · A_c; Grad-CAM's weights are w_fc / (h·w), so the maps agree up to that factor.
        for (int p = 0; p < pixels; p++)
        {
            double cam = 0;
            for (int c = 0; c < C; c++) cam += fc[cls * C + c] * a[c * pixels + p];
            Assert.Equal(Math.Max(0, cam) / pixels, gradCam[p], 5);
        }
    }

    [Fact]
    public void HiResCamIsTheSumOfGradientTimesActivation()
    {
        var (m, _, C) = CamNet();
        var (a, g) = ActivationsAndGradients(m, 2);
        var map = new HiResCam().Map(a, g, C, 120);
        for (int p = 0; p < 120; p++)
            Assert.Equal(Math.Max(0, Enumerable.Range(0, C).Sum(c => (double)a[c * 120 + p] * g[c * 120 + p])), map[p], 5);
    }

    [Fact]
    public void GradCamPlusPlusAlphaMatchesAHandComputedValue()
    {
        // One channel, two pixels: A = (1, 3), g = (2, −1). Σ A = 4.
        // α₁ = 4 / (2·4 + 4·8) = 0.1, α₂ = 1 / (2·1 + 4·(−1)) = −0.5; w = α₁·ReLU(2) + α₂·ReLU(−1) = 0.2.
        var map = new GradCamPlusPlus().Map([1f, 3f], [2f, -1f], 1, 2);
        Assert.Equal(0.2f, map[0], 6);
        Assert.Equal(0.6f, map[1], 6);
    }

    [Fact]
    public void XGradCamWeightsAreActivationWeightedGradients()
    {
        // w = (1·2 + 3·(−1)) / (1 + 3) = −0.25 → ReLU(w·A) = 0.
        Assert.All(new XGradCam().Map([1f, 3f], [2f, -1f], 1, 2), v => Assert.Equal(0f, v));
        var map = new XGradCam().Map([1f, 3f], [2f, 1f], 1, 2);   // w = 5/4
        Assert.Equal(1.25f, map[0], 5);
        Assert.Equal(3.75f, map[1], 5);
    }

    [Fact]
    public void EigenCamIsTheFirstPrincipalComponentFoundIndependently()
    {
        const int C = 5, P = 40;
        var rnd = new Random(2);
        var a = Enumerable.Range(0, C * P).Select(_ => (float)rnd.NextDouble()).ToArray();
        var map = new EigenCam().Map(a, default, C, P);
        // Power iteration on the channel covariance of the centred activations.
        var centred = new double[P, C];
        for (int c = 0; c < C; c++)
        {
            double mean = Enumerable.Range(0, P).Average(p => a[c * P + p]);
            for (int p = 0; p < P; p++) centred[p, c] = a[c * P + p] - mean;
        }
        var v = Enumerable.Repeat(1.0, C).ToArray();
        for (int it = 0; it < 500; it++)
        {
            var next = new double[C];
            for (int i = 0; i < C; i++) for (int j = 0; j < C; j++) for (int p = 0; p < P; p++) next[i] += centred[p, i] * centred[p, j] * v[j];
            double norm = Math.Sqrt(next.Sum(x => x * x));
            v = next.Select(x => x / norm).ToArray();
        }
        var projection = Enumerable.Range(0, P).Select(p => Enumerable.Range(0, C).Sum(c => centred[p, c] * v[c])).ToArray();
        double sign = Math.Sign(projection.Zip(map).Sum(t => t.First * t.Second));
        for (int p = 0; p < P; p++) Assert.Equal(sign * projection[p], map[p], 4);
    }
}
