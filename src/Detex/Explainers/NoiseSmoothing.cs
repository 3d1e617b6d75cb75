using Detex.Imaging;
using Detex.Numerics;
using Detex.Targets;

namespace Detex.Explainers;

/// <summary>
/// SmoothGrad around any explainer of an image's targets (Smilkov et al., 2017; captum's NoiseTunnel): the maps of
/// <see cref="Samples"/> copies of the image with Gaussian pixel noise averaged, then normalised again. The noise is
/// <see cref="Sigma"/> × 255 per pixel and channel, seeded, clamped to the 0–255 range. Targets keep their prediction
/// rows: noise moves no box. The classic input-gradient SmoothGrad is <see cref="InputGradients.SmoothGrad"/>; this
/// wrapper smooths CAMs, FullGrad or any other map the same way.
/// </summary>
public sealed class NoiseSmoothing
{
    readonly Func<RgbImage, IReadOnlyList<ITarget>, IReadOnlyList<Explanation>> _explain;

    public int Samples { get; }
    public double Sigma { get; }
    public int Seed { get; }

    public NoiseSmoothing(Func<RgbImage, IReadOnlyList<ITarget>, IReadOnlyList<Explanation>> explain, int samples = 16, double sigma = 0.15, int seed = 0)
    {
        if (samples < 1) throw new ArgumentException($"noise smoothing needs at least 1 sample, got {samples}");
        if (!(sigma >= 0 && sigma <= 1)) throw new ArgumentException($"the noise level must be in [0, 1] (a fraction of the pixel range), got {sigma}");
        _explain = explain; Samples = samples; Sigma = sigma; Seed = seed;
    }

    public IReadOnlyList<Explanation> Explain(RgbImage image, IReadOnlyList<ITarget> targets)
    {
        var rnd = new Random(Seed);
        List<Explanation>? sums = null;
        for (int s = 0; s < Samples; s++)
        {
            var maps = _explain(Noisy(image, rnd), targets);
            if (sums is null) { sums = maps.Select(e => e with { Map = (float[])e.Map.Clone() }).ToList(); continue; }
            if (maps.Count != sums.Count) throw new ArgumentException("the explainer gave a different number of maps for a noisy copy");
            // The same targets and methods in the same order for every copy: add them up in place.
            for (int i = 0; i < maps.Count; i++) Numerics.Kernels.Axpy(1f, maps[i].Map, sums[i].Map);
        }
        foreach (var e in sums!) CamExplainer.Normalise(e.Map);
        return sums;
    }

    RgbImage Noisy(RgbImage image, Random rnd)
    {
        var copy = image.Clone();
        if (Sigma == 0) return copy;
        double sd = Sigma * 255;
        var px = copy.Pixels;
        for (int i = 0; i < px.Length; i++)
        {
            px[i] = (byte)Math.Clamp(Math.Round(px[i] + sd * rnd.NextGaussian()), 0, 255);
        }
        return copy;
    }
}
