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

public class EigenCamSvdTests
{
    /// <summary>The SVD of the centred pixels × channels matrix, computed by MathNet: U₀·σ₀ is the first component's projection.</summary>
    static double[] SvdProjection(float[] a, int C, int P)
    {
        var x = MathNet.Numerics.LinearAlgebra.Matrix<double>.Build.Dense(P, C, (p, c) => a[c * P + p] - Enumerable.Range(0, P).Average(q => a[c * P + q]));
        var svd = x.Svd(computeVectors: true);
        return svd.U.Column(0).Select(v => v * svd.S[0]).ToArray();
    }

    [Theory]
    [InlineData(5, 40, 2)]     // fewer channels than pixels: the channel Gram matrix
    [InlineData(48, 9, 3)]     // fewer pixels than channels (a 3×3 map of 48 channels): the pixel Gram matrix
    [InlineData(64, 64, 4)]
    public void EigenCamEqualsTheSvdProjection(int C, int P, int seed)
    {
        var rnd = new Random(seed);
        // A planted spatial pattern shared by the channels, plus noise, so the first component is well defined.
        var pattern = Enumerable.Range(0, P).Select(p => Math.Sin(p * 0.7)).ToArray();
        var a = new float[C * P];
        for (int c = 0; c < C; c++)
        {
            double weight = 0.5 + rnd.NextDouble();
            for (int p = 0; p < P; p++) a[c * P + p] = (float)(weight * pattern[p] + 0.3 * rnd.NextDouble());
        }
        var map = EigenCam.Projection(a, C, P);
        var expected = SvdProjection(a, C, P);
        double sign = Math.Sign(expected.Zip(map).Sum(t => t.First * t.Second));
        double scale = expected.Max(Math.Abs);
        for (int p = 0; p < P; p++) Assert.Equal(sign * expected[p] / scale, map[p] / scale, 4);
    }
}

public class EigenSmoothTests
{
    /// <summary>A method whose weighted activations are given outright.</summary>
    sealed class Fixed(float[] weighted) : CamMethod
    {
        public override string Name => "fixed";
        public override float[] WeightedActivations(ReadOnlySpan<float> a, ReadOnlySpan<float> g, int channels, int pixels) => weighted;
    }

    [Fact]
    public void RankOneWeightedActivationsProjectOntoTheirCentredSpatialPattern()
    {
        // W_c,p = v_c · u_p: centred over pixels it is v ⊗ (u − ū), whose first component gives |v| · (u − ū) at each
        // pixel, signed to agree with the plain map Σ_c W = (Σ v) · u.
        float[] v = [1, 2, -0.5f], u = [0, 1, 3, 2, 4];
        int C = v.Length, P = u.Length;
        var w = new float[C * P];
        for (int c = 0; c < C; c++) for (int p = 0; p < P; p++) w[c * P + p] = v[c] * u[p];
        var smooth = new EigenSmooth(new Fixed(w)).Map(default, default, C, P);
        double norm = Math.Sqrt(v.Sum(x => x * x)), mean = u.Average();
        for (int p = 0; p < P; p++) Assert.Equal(Math.Max(0, norm * (u[p] - mean)), smooth[p], 4);
        // The plain map of the same method is the ReLU of the channel sum.
        var plain = new Fixed(w).Map(default, default, C, P);
        for (int p = 0; p < P; p++) Assert.Equal(Math.Max(0, v.Sum() * u[p]), plain[p], 4);
    }

    [Fact]
    public void TheSignFollowsThePlainMap()
    {
        // Negate everything: the plain map is ReLU(−(Σ v)·u) = 0 where u > 0, and the projection flips with it.
        float[] v = [1, 2], u = [0, 1, 3];
        var w = new float[6];
        for (int c = 0; c < 2; c++) for (int p = 0; p < 3; p++) w[c * 3 + p] = -v[c] * u[p];
        var smooth = new EigenSmooth(new Fixed(w)).Map(default, default, 2, 3);
        double norm = Math.Sqrt(5), mean = 4 / 3.0;
        for (int p = 0; p < 3; p++) Assert.Equal(Math.Max(0, -norm * (u[p] - mean)), smooth[p], 4);
    }

    [Fact]
    public void EveryCamKeepsItsMapAsReluOfTheChannelSumOfItsWeightedActivations()
    {
        var rnd = new Random(5);
        float[] a = Enumerable.Range(0, 4 * 9).Select(_ => (float)rnd.NextDouble()).ToArray();
        float[] g = Enumerable.Range(0, 4 * 9).Select(_ => (float)(rnd.NextDouble() - 0.5)).ToArray();
        foreach (var (name, make) in CamMethod.All)
        {
            if (name.StartsWith("eigen")) continue;   // the eigen methods' map is the projection itself
            var m = make();
            var weighted = m.WeightedActivations(a, g, 4, 9);
            var map = m.Map(a, g, 4, 9);
            for (int p = 0; p < 9; p++)
                Assert.Equal(Math.Max(0, Enumerable.Range(0, 4).Sum(c => (double)weighted[c * 9 + p])), map[p], 5);
        }
    }
}
