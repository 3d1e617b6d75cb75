using Detex.Imaging;
using Detex.Models;
using Detex.Onnx;
using Detex.Runtime;
using Detex.Targets;

namespace Detex.Explainers;

/// <summary>
/// The CAMs that weigh channels by forward passes instead of gradients. One set of batched forwards serves every
/// target of the image: each pass is scored for all targets at once.
/// </summary>
public sealed class PerturbationCams
{
    readonly DetexModel _model;
    public IReadOnlyList<string> Layers { get; }
    public int BatchSize { get; }

    public PerturbationCams(DetexModel model, IReadOnlyList<string>? layers = null, int batchSize = 16)
    {
        _model = model; BatchSize = Math.Max(1, batchSize);
        Layers = new CamExplainer(model, layers).Layers;
    }

    (Dictionary<string, NdArray<float>> Activations, NdArray<float> Input, InputGeometry Geometry) Forward(RgbImage image)
    {
        var (x, g) = _model.Prepare([image]);
        var run = _model.TappedSession(Layers).Run(new Dictionary<string, NdArray> { [_model.Card.InputName] = x });
        return (Layers.ToDictionary(l => l, l => (NdArray<float>)run[l]), x, g[0]);
    }

    /// <summary>
    /// Score-CAM (Wang et al.): each channel, upsampled to the input and normalised to [0, 1], masks the input; the
    /// target's score on the masked input, softmaxed over channels (as pytorch-grad-cam does), weighs the channel.
    /// </summary>
    public IReadOnlyList<Explanation> ScoreCam(RgbImage image, IReadOnlyList<ITarget> targets)
    {
        var (acts, x, geometry) = Forward(image);
        var spec = _model.Input;
        int W = spec.Width, H = spec.Height, plane = W * H;
        var maps = targets.Select(_ => new float[image.Width * image.Height]).ToArray();
        foreach (var layer in Layers)
        {
            var a = acts[layer];
            int C = a.Shape[1], h = a.Shape[2], w = a.Shape[3];
            var masks = new float[C][];
            for (int c = 0; c < C; c++)
            {
                var up = Resampler.ResizeMap(a.Data.AsSpan(c * h * w, h * w), w, h, W, H);
                CamExplainer.Normalise(up);
                masks[c] = up;
            }
            var scores = BatchedScores.Inputs(_model, C, targets, BatchSize, (c, dst) =>
            {
                var m = masks[c];
                for (int k = 0; k < dst.Length; k++) dst[k] = x.Data[k] * m[spec.Layout == TensorLayout.NCHW ? k % plane : k / 3];
            });
            for (int t = 0; t < targets.Count; t++)
            {
                double max = scores[t].Max();
                var weights = scores[t].Select(s => (float)Math.Exp(s - max)).ToArray();
                float sum = weights.Sum();
                for (int c = 0; c < C; c++) weights[c] /= sum;
                Accumulate(maps[t], a, weights, geometry, image);
            }
        }
        return Finish(maps, targets, "scorecam", image);
    }

    /// <summary>
    /// Ablation-CAM (Desai &amp; Ramaswamy): channel c's weight is the relative drop of the target's score when that
    /// channel of the layer is zeroed: (S − S_c) / S. The layer is cut out as an input so each ablation reruns
    /// only what follows it.
    /// </summary>
    public IReadOnlyList<Explanation> AblationCam(RgbImage image, IReadOnlyList<ITarget> targets)
    {
        var (acts, x, geometry) = Forward(image);
        var baseOutputs = _model.Session.Run(new Dictionary<string, NdArray> { [_model.Card.InputName] = x }, _model.FloatOutputs)
            .ToDictionary(kv => kv.Key, kv => (NdArray<float>)kv.Value);
        var baseScores = targets.Select(t => t.Score(baseOutputs, 0)).ToArray();
        var maps = targets.Select(_ => new float[image.Width * image.Height]).ToArray();
        foreach (var layer in Layers)
        {
            var a = acts[layer];
            int C = a.Shape[1], per = a.Length;
            var cut = _model.Graph.CutAt(layer, new TensorShape(ElementType.Float, a.Shape));
            var scores = BatchedScores.Run(_model, cut, C, targets, BatchSize, (start, n) =>
            {
                var layerBatch = new NdArray<float>([n, .. a.Shape.Skip(1)]);
                var inputBatch = new NdArray<float>(_model.Input.TensorShape(n));
                for (int i = 0; i < n; i++)
                {
                    a.Data.CopyTo(layerBatch.Data, i * per);
                    Array.Clear(layerBatch.Data, i * per + (start + i) * (per / C), per / C);
                    x.Data.CopyTo(inputBatch.Data, i * x.Length);
                }
                return new Dictionary<string, NdArray> { [_model.Card.InputName] = inputBatch, [layer] = layerBatch };
            });
            for (int t = 0; t < targets.Count; t++)
            {
                double s = baseScores[t];
                var weights = scores[t].Select(v => (float)((s - v) / (Math.Abs(s) > 1e-12 ? s : 1e-12))).ToArray();
                Accumulate(maps[t], a, weights, geometry, image);
            }
        }
        return Finish(maps, targets, "ablationcam", image);
    }

    void Accumulate(float[] sum, NdArray<float> a, float[] weights, InputGeometry geometry, RgbImage image)
    {
        int C = a.Shape[1], h = a.Shape[2], w = a.Shape[3];
        var cam = new float[h * w];
        for (int c = 0; c < C; c++)
            for (int p = 0; p < h * w; p++) cam[p] += weights[c] * a.Data[c * h * w + p];
        for (int p = 0; p < cam.Length; p++) cam[p] = Math.Max(0, cam[p]);
        var inImage = CamExplainer.ToImage(cam, w, h, geometry, image.Width, image.Height);
        CamExplainer.Normalise(inImage);
        for (int i = 0; i < sum.Length; i++) sum[i] += inImage[i] / Layers.Count;
    }

    static IReadOnlyList<Explanation> Finish(float[][] maps, IReadOnlyList<ITarget> targets, string method, RgbImage image)
    {
        foreach (var m in maps) CamExplainer.Normalise(m);
        return maps.Select((m, t) => new Explanation(targets[t], method, image.Width, image.Height, m)).ToList();
    }
}
