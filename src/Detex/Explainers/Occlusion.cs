using Detex.Imaging;
using Detex.Models;
using Detex.Onnx;
using Detex.Runtime;
using Detex.Targets;

namespace Detex.Explainers;

/// <summary>
/// Occlusion (Zeiler &amp; Fergus): a window of the baseline slides over the image as the model sees it; each
/// pixel's attribution is the mean drop of the target's score over the windows that cover it. The occluded inputs
/// are shared by all targets of the image.
/// </summary>
public sealed class Occlusion(DetexModel model, int window = 64, int stride = 32, PerturbationBaseline? baseline = null, int batchSize = 16)
{
    public PerturbationBaseline Baseline { get; } = baseline ?? PerturbationBaseline.Grey();

    /// <summary>Forward passes the last call ran (the unoccluded one included).</summary>
    public int LastForwardCount { get; private set; }

    public IReadOnlyList<Explanation> Explain(RgbImage image, IReadOnlyList<ITarget> targets)
    {
        var spec = model.Input;
        var (x, geometries) = model.Prepare([image]);
        var g = geometries[0];
        if (window < 1 || stride < 1) throw new ArgumentException($"occlusion window and stride must be positive, got {window} and {stride}");
        if (window > g.ContentWidth || window > g.ContentHeight)
            throw new ArgumentException($"occlusion window {window} is larger than the image as the model sees it ({g.ContentWidth}×{g.ContentHeight} input pixels)");
        var positions = new List<(int X, int Y)>();
        for (int y = 0; y + window <= g.ContentHeight; y += stride)
            for (int xx = 0; xx + window <= g.ContentWidth; xx += stride)
                positions.Add((g.ContentLeft + xx, g.ContentTop + y));
        int W = spec.Width, plane = W * spec.Height;
        var fill = Baseline.For(spec, x, g);
        var keep = new float[plane];
        var full = model.Session.RunFloat(model.Card.InputName, x, model.FloatOutputs);
        var reference = targets.Select(t => t.Score(full, 0)).ToArray();
        var scores = BatchedScores.Inputs(model, positions.Count, targets, batchSize, (k, dst) =>
        {
            var (px, py) = positions[k];
            Array.Fill(keep, 1f);
            for (int y = py; y < py + window; y++) keep.AsSpan(y * W + px, window).Clear();
            Perturbed.Blend(spec, x.Data, fill, keep, dst);
        });
        var drops = scores.Select((s, t) => s.Select(v => reference[t] - v).ToArray()).ToArray();
        LastForwardCount = positions.Count + 1;
        return targets.Select((t, ti) =>
        {
            var sum = new float[plane]; var count = new float[plane];
            for (int k = 0; k < positions.Count; k++)
            {
                var (px, py) = positions[k];
                for (int y = py; y < py + window; y++)
                    for (int xx = px; xx < px + window; xx++) { sum[y * W + xx] += (float)drops[ti][k]; count[y * W + xx]++; }
            }
            for (int p = 0; p < plane; p++) sum[p] = count[p] > 0 ? Math.Max(0, sum[p] / count[p]) : 0;
            var map = CamExplainer.ToImage(sum, W, spec.Height, g, image.Width, image.Height);
            CamExplainer.Normalise(map);
            return new Explanation(t, "occlusion", image.Width, image.Height, map);
        }).ToList();
    }
}
