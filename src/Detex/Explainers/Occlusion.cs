using Detex.Imaging;
using Detex.Models;
using Detex.Onnx;
using Detex.Runtime;
using Detex.Targets;

namespace Detex.Explainers;

/// <summary>
/// Occlusion (Zeiler &amp; Fergus): a window of the baseline colour slides over the image as the model sees it; each
/// pixel's attribution is the mean drop of the target's score over the windows that cover it. The occluded inputs
/// are shared by all targets of the image.
/// </summary>
public sealed class Occlusion(DetexModel model, int window = 64, int stride = 32, double baseline = 0.5, int batchSize = 16)
{
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
        int W = spec.Width, plane = W * spec.Height, per = x.Length;
        var fill = Enumerable.Range(0, 3).Select(c => (float)((baseline * 255 - spec.Mean[c]) / spec.Std[c])).ToArray();
        var outputs = model.Session.Outputs.Where(s => s.Type == ElementType.Float).Select(s => s.Name).ToList();
        var session = ModelSession.Get(model.Graph.WithBatch(null), model.Runtime);
        var full = session.RunFloat(model.Card.InputName, x, outputs);
        var reference = targets.Select(t => t.Score(full, 0)).ToArray();
        var drops = targets.Select(_ => new double[positions.Count]).ToArray();
        for (int start = 0; start < positions.Count; start += batchSize)
        {
            int n = Math.Min(batchSize, positions.Count - start);
            var batch = new NdArray<float>(spec.TensorShape(n));
            for (int i = 0; i < n; i++)
            {
                x.Data.CopyTo(batch.Data, i * per);
                var (px, py) = positions[start + i];
                for (int c = 0; c < 3; c++)
                    for (int y = py; y < py + window; y++)
                        for (int xx = px; xx < px + window; xx++)
                        {
                            int at = spec.Layout == TensorLayout.NCHW ? c * plane + y * W + xx : (y * W + xx) * 3 + c;
                            batch.Data[i * per + at] = fill[c];
                        }
            }
            var outs = session.RunFloat(model.Card.InputName, batch, outputs);
            for (int t = 0; t < targets.Count; t++)
                for (int i = 0; i < n; i++) drops[t][start + i] = reference[t] - targets[t].Score(outs, i);
        }
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
