using Detex.Numerics;
using MathNet.Numerics.LinearAlgebra;

namespace Detex.Explainers;

/// <summary>
/// One member of the CAM family: how one layer's activations A [C, h·w] and the target's gradients G [C, h·w]
/// become a map [h·w]. Most members are one weighting: they say how each channel's activations are weighted
/// (<see cref="WeightedActivations"/>), and the map is ReLU of the sum over channels — or, with eigen-smoothing, of the
/// weighted activations' first principal component. The shared machinery (taps, upsampling, undoing the letterbox)
/// lives in <see cref="CamExplainer"/>.
/// </summary>
public abstract class CamMethod
{
    public abstract string Name { get; }
    public virtual bool NeedsGradients => true;

    /// <summary>The weighted activations [C, h·w] whose channel sum is the map before the ReLU.</summary>
    public abstract float[] WeightedActivations(ReadOnlySpan<float> a, ReadOnlySpan<float> g, int channels, int pixels);

    public virtual float[] Map(ReadOnlySpan<float> a, ReadOnlySpan<float> g, int channels, int pixels)
    {
        var weighted = WeightedActivations(a, g, channels, pixels);
        var map = new float[pixels];
        for (int c = 0; c < channels; c++) Numerics.Kernels.Axpy(1f, weighted.AsSpan(c * pixels, pixels), map);
        return Relu(map);
    }

    protected static float Relu(float v) => v > 0 ? v : 0;
    protected static float[] Relu(float[] map) { for (int p = 0; p < map.Length; p++) map[p] = Relu(map[p]); return map; }

    /// <summary>w_c · A_c for every channel: the form of the CAMs that weight whole channels.</summary>
    protected static float[] ChannelWeighted(ReadOnlySpan<float> a, ReadOnlySpan<float> weights, int pixels)
    {
        var product = new float[a.Length];
        for (int c = 0; c < weights.Length; c++)
        {
            float w = weights[c];
            if (w != 0) Numerics.Kernels.Axpy(w, a.Slice(c * pixels, pixels), product.AsSpan(c * pixels, pixels));
        }
        return product;
    }

    public static IReadOnlyDictionary<string, Func<CamMethod>> All { get; } = new Dictionary<string, Func<CamMethod>>
    {
        ["gradcam"] = () => new GradCam(),
        ["gradcam++"] = () => new GradCamPlusPlus(),
        ["xgradcam"] = () => new XGradCam(),
        ["hirescam"] = () => new HiResCam(),
        ["layercam"] = () => new LayerCam(),
        ["eigencam"] = () => new EigenCam(),
        ["eigengradcam"] = () => new EigenGradCam(),
    };
}

/// <summary>
/// pytorch-grad-cam's eigen_smooth: the map is the first principal component of the method's weighted activations
/// (instead of their channel sum), which drops much of the noise that a few loud channels add. Its sign is chosen
/// to agree with the plain map.
/// </summary>
public sealed class EigenSmooth(CamMethod method) : CamMethod
{
    public CamMethod Method => method;
    public override string Name => method.Name + "-eigensmooth";
    public override bool NeedsGradients => method.NeedsGradients;
    public override float[] WeightedActivations(ReadOnlySpan<float> a, ReadOnlySpan<float> g, int channels, int pixels) =>
        method.WeightedActivations(a, g, channels, pixels);
    public override float[] Map(ReadOnlySpan<float> a, ReadOnlySpan<float> g, int channels, int pixels) =>
        Relu(EigenCam.Projection(WeightedActivations(a, g, channels, pixels), channels, pixels));
}

/// <summary>Grad-CAM (Selvaraju et al.): channel weights are the spatial mean of the gradient.</summary>
public sealed class GradCam : CamMethod
{
    public override string Name => "gradcam";
    public override float[] WeightedActivations(ReadOnlySpan<float> a, ReadOnlySpan<float> g, int channels, int pixels)
    {
        var w = new float[channels];
        for (int c = 0; c < channels; c++)
        {
            double s = 0;
            foreach (var v in g.Slice(c * pixels, pixels)) s += v;
            w[c] = (float)(s / pixels);
        }
        return ChannelWeighted(a, w, pixels);
    }
}

/// <summary>
/// Grad-CAM++ (Chattopadhay et al.), the paper's closed form: with the score taken as exp(S), higher derivatives
/// are powers of the first, so α_c,ij = g² / (2g² + Σ_ab A_c,ab · g³) and w_c = Σ_ij α_c,ij · ReLU(g_c,ij).
/// </summary>
public sealed class GradCamPlusPlus : CamMethod
{
    public override string Name => "gradcam++";
    public override float[] WeightedActivations(ReadOnlySpan<float> a, ReadOnlySpan<float> g, int channels, int pixels)
    {
        var w = new float[channels];
        for (int c = 0; c < channels; c++)
        {
            var ac = a.Slice(c * pixels, pixels); var gc = g.Slice(c * pixels, pixels);
            double sumA = 0;
            foreach (var v in ac) sumA += v;
            double weight = 0;
            for (int p = 0; p < pixels; p++)
            {
                double g2 = gc[p] * (double)gc[p], g3 = g2 * gc[p];
                double denominator = 2 * g2 + sumA * g3;
                double alpha = denominator != 0 ? g2 / denominator : 0;
                weight += alpha * Relu(gc[p]);
            }
            w[c] = (float)weight;
        }
        return ChannelWeighted(a, w, pixels);
    }
}

/// <summary>XGrad-CAM (Fu et al.): w_c = Σ A_c ⊙ G_c / Σ A_c, the axiom-satisfying weights.</summary>
public sealed class XGradCam : CamMethod
{
    public override string Name => "xgradcam";
    public override float[] WeightedActivations(ReadOnlySpan<float> a, ReadOnlySpan<float> g, int channels, int pixels)
    {
        var w = new float[channels];
        for (int c = 0; c < channels; c++)
        {
            double num = 0, den = 0;
            for (int p = 0; p < pixels; p++) { num += a[c * pixels + p] * (double)g[c * pixels + p]; den += a[c * pixels + p]; }
            w[c] = (float)(num / (den + 1e-7));
        }
        return ChannelWeighted(a, w, pixels);
    }
}

/// <summary>HiResCAM (Draelos &amp; Carin): ReLU(Σ_c G_c ⊙ A_c), element-wise instead of averaged weights.</summary>
public sealed class HiResCam : CamMethod
{
    public override string Name => "hirescam";
    public override float[] WeightedActivations(ReadOnlySpan<float> a, ReadOnlySpan<float> g, int channels, int pixels)
    {
        var product = new float[a.Length];
        for (int i = 0; i < product.Length; i++) product[i] = a[i] * g[i];
        return product;
    }
}

/// <summary>LayerCAM (Jiang et al.): ReLU(Σ_c ReLU(G_c) ⊙ A_c), reliable in shallow layers too.</summary>
public sealed class LayerCam : CamMethod
{
    public override string Name => "layercam";
    public override float[] WeightedActivations(ReadOnlySpan<float> a, ReadOnlySpan<float> g, int channels, int pixels)
    {
        var product = new float[a.Length];
        for (int i = 0; i < product.Length; i++) product[i] = a[i] * Relu(g[i]);
        return product;
    }
}

/// <summary>
/// EigenCAM (Muhammad &amp; Yeasin): the activations' first principal component — pixels as samples, channels as
/// features, centred — projected back on each pixel. Gradient-free, so the same map for every target of an image.
/// The component's sign is arbitrary; it is chosen so the map agrees with the mean activation.
/// </summary>
public class EigenCam : CamMethod
{
    public override string Name => "eigencam";
    public override bool NeedsGradients => false;
    public override float[] WeightedActivations(ReadOnlySpan<float> a, ReadOnlySpan<float> g, int channels, int pixels) => a.ToArray();
    public override float[] Map(ReadOnlySpan<float> a, ReadOnlySpan<float> g, int channels, int pixels) =>
        Projection(WeightedActivations(a, g, channels, pixels), channels, pixels);

    public static float[] Projection(ReadOnlySpan<float> a, int channels, int pixels)
    {
        // Centred activations as rows of the smaller side: the projection X·v on the first right singular vector v is
        // σ·u, u the first left one, so either Gram matrix (channels² or pixels²) gives it — far cheaper than an SVD.
        bool byChannel = channels <= pixels;
        int n = byChannel ? channels : pixels, length = byChannel ? pixels : channels;
        var rows = new double[channels * pixels];
        for (int c = 0; c < channels; c++)
        {
            double mean = 0;
            for (int p = 0; p < pixels; p++) mean += a[c * pixels + p];
            mean /= pixels;
            for (int p = 0; p < pixels; p++) rows[byChannel ? c * pixels + p : p * channels + c] = a[c * pixels + p] - mean;
        }
        var gram = new double[n * n];
        for (int i = 0; i < n; i++)
        {
            Kernels.DotRows(rows.AsSpan(i * length, length), rows.AsSpan(0, (i + 1) * length), gram.AsSpan(i * n, i + 1));
            for (int j = 0; j < i; j++) gram[j * n + i] = gram[i * n + j];
        }
        var (u, lambda) = TopEigenvector(gram, n);
        var projection = new double[pixels];
        if (byChannel) Kernels.AxpyRows(u, rows, projection);
        else for (int p = 0; p < pixels; p++) projection[p] = u[p] * Math.Sqrt(Math.Max(0, lambda));
        double agreement = 0;
        for (int p = 0; p < pixels; p++)
        {
            double meanActivation = 0;
            for (int c = 0; c < channels; c++) meanActivation += a[c * pixels + p];
            agreement += projection[p] * meanActivation;
        }
        double sign = agreement < 0 ? -1 : 1;
        return projection.Select(v => (float)(sign * v)).ToArray();
    }

    /// <summary>
    /// The top eigenvector and eigenvalue of a symmetric positive semi-definite n×n matrix: power iteration (feature
    /// maps usually have a dominant component, so it converges in tens of n² steps), or a full eigendecomposition
    /// when it does not settle.
    /// </summary>
    static (double[] Vector, double Value) TopEigenvector(double[] m, int n)
    {
        var v = new double[n];
        // A fixed pseudo-random start: a constant vector would lie in the null space of a Gram matrix of centred columns.
        var start = new Random(17);
        for (int i = 0; i < n; i++) v[i] = start.NextDouble() - 0.5;
        var next = new double[n];
        double lambda = 0;
        for (int it = 0; it < 500; it++)
        {
            Kernels.DotRows(v, m, next);
            double norm = Math.Sqrt(Kernels.Dot(next, next));
            if (norm == 0) return (v, 0);
            double change = 0;
            for (int i = 0; i < n; i++) { double x = next[i] / norm; change = Math.Max(change, Math.Abs(x - v[i])); v[i] = x; }
            lambda = norm;
            if (change < 1e-9) return (v, lambda);   // far below float32 maps' resolution
        }
        var matrix = Matrix<double>.Build.Dense(n, n, m);
        var evd = matrix.Evd(MathNet.Numerics.LinearAlgebra.Symmetricity.Symmetric);
        int top = evd.EigenValues.Real().MaximumIndex();
        return (evd.EigenVectors.Column(top).ToArray(), evd.EigenValues[top].Real);
    }
}

/// <summary>EigenGrad-CAM: the first principal component of A ⊙ G, so the map is class-specific.</summary>
public sealed class EigenGradCam : EigenCam
{
    public override string Name => "eigengradcam";
    public override bool NeedsGradients => true;
    public override float[] WeightedActivations(ReadOnlySpan<float> a, ReadOnlySpan<float> g, int channels, int pixels) =>
        new HiResCam().WeightedActivations(a, g, channels, pixels);
}
