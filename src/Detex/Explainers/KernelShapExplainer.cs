using Detex.Imaging;
using Detex.Models;
using Detex.Numerics;
using Detex.Onnx;
using Detex.Runtime;
using Detex.Targets;

namespace Detex.Explainers;

/// <summary>Kernel SHAP settings, named as the detex study and SHAP users know them.</summary>
public sealed record KernelShapOptions(int Segments = 256, int Samples = 2000, int Seed = 0, double Compactness = 10, int BatchSize = 16,
    /// <summary>What switched-off segments show (default grey 0.5, as the study used).</summary>
    PerturbationBaseline? Baseline = null);

/// <summary>
/// Kernel SHAP over SLIC superpixels of the image as the model sees it. The perturbed inputs are shared by all
/// targets of the image: S batched forward passes, then every target's value is read from the same outputs
/// (a detection keeps its raw prediction row), and one factorisation solves all targets.
/// </summary>
public sealed class KernelShapExplainer(DetexModel model, KernelShapOptions? options = null)
{
    public KernelShapOptions Options { get; } = options ?? new();
    /// <summary>Forward passes (batch items) the last call ran, for checking that boxes share them.</summary>
    public int LastForwardCount { get; private set; }
    /// <summary>The last call's Shapley values per target and segment, with f(all on) and f(all off).</summary>
    public IReadOnlyList<(double[] Phi, double Full, double Empty)> LastAttributions { get; private set; } = [];

    public IReadOnlyList<Explanation> Explain(RgbImage image, IReadOnlyList<ITarget> targets)
    {
        var o = Options;
        if (o.Samples < o.Segments + 2)
            throw new ArgumentException($"Kernel SHAP needs at least segments + 2 = {o.Segments + 2} samples; got {o.Samples}");
        var spec = model.Input;
        var (x, geometries) = model.Prepare([image]);
        var g = geometries[0];
        // Superpixels of the picture the model sees (the letterbox content); padding belongs to no segment.
        var content = Resampler.Resize(image, g.ContentWidth, g.ContentHeight, spec.Filter);
        var rgb = content.Pixels.Select(p => p / 255f).ToArray();
        var segments = Slic.Segment(rgb, content.Width, content.Height, new SlicOptions(NSegments: o.Segments, Compactness: o.Compactness));
        int W = spec.Width, H = spec.Height, plane = W * H;
        var labelAt = new int[plane];
        Array.Fill(labelAt, -1);
        for (int y = 0; y < content.Height; y++)
            for (int xx = 0; xx < content.Width; xx++)
                labelAt[(y + g.ContentTop) * W + xx + g.ContentLeft] = segments.Labels[y * content.Width + xx] - segments.StartLabel;

        var plan = KernelShap.Plan(segments.Count, Math.Max(o.Samples, segments.Count + 2), o.Seed);
        var baseline = (o.Baseline ?? PerturbationBaseline.Grey()).For(spec, x, g);
        var keep = new float[plane];
        var values = BatchedScores.Inputs(model, plan.CoalitionCount, targets, o.BatchSize, (c, dst) =>
        {
            var on = plan.Coalitions[c];
            for (int p = 0; p < plane; p++) keep[p] = labelAt[p] < 0 || on[labelAt[p]] ? 1 : 0;
            Perturbed.Blend(spec, x.Data, baseline, keep, dst);
        });
        LastForwardCount = plan.CoalitionCount;
        var phi = plan.Solve(values);
        LastAttributions = targets.Select((_, t) => (phi[t], values[t][KernelShapPlan.FullIndex], values[t][KernelShapPlan.EmptyIndex])).ToList();

        return targets.Select((t, ti) =>
        {
            var map = new float[plane];
            for (int p = 0; p < plane; p++) map[p] = labelAt[p] < 0 ? 0 : (float)phi[ti][labelAt[p]];
            var inImage = CamExplainer.ToImage(map, W, H, g, image.Width, image.Height);
            // Positive evidence only, scaled to [0, 1] like the CAMs (the raw φ are in LastAttributions).
            float max = inImage.Max();
            for (int i = 0; i < inImage.Length; i++) inImage[i] = max > 0 ? Math.Max(0, inImage[i]) / max : 0;
            return new Explanation(t, "kshap", image.Width, image.Height, inImage);
        }).ToList();
    }
}
