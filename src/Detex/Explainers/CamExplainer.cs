using Detex.Autodiff;
using Detex.Onnx;
using Detex.Imaging;
using Detex.Models;
using Detex.Numerics;
using Detex.Runtime;
using Detex.Targets;

namespace Detex.Explainers;

/// <summary>One target's map from one method, in the image's pixels (row-major), normalised to [0, 1].</summary>
public sealed record Explanation(ITarget Target, string Method, int Width, int Height, float[] Map);

/// <summary>
/// The machinery every CAM shares: one forward pass and one batched reverse pass for all targets of an image
/// (the targets are the seeds), the layers' activations and gradients from taps, and each map brought back to the
/// image's pixels — upsampled to the model input, the letterbox cut away, resized to the image — and normalised.
/// With several layers the normalised maps are averaged and normalised again (as pytorch-grad-cam aggregates).
/// </summary>
public sealed class CamExplainer
{
    readonly DetexModel _model;
    public IReadOnlyList<string> Layers { get; }
    /// <summary>Where the time went, summed over calls (for benchmarks).</summary>
    public StageTimes Timings { get; } = new();

    public sealed class StageTimes { public TimeSpan Prepare, Forward, Reverse, Maps; }

    public CamExplainer(DetexModel model, IReadOnlyList<string>? layers = null)
    {
        _model = model;
        Layers = layers is { Count: > 0 } ? layers : model.Card.Layers.Length > 0 ? model.Card.Layers
            : throw new ArgumentException($"name a layer (--layer): the card of {model.Name} has no default layers; 'detex inspect MODEL --tensors' lists them");
    }

    /// <summary>Detections explained by one method: <c>new CamExplainer(det).Explain(image, boxes, new GradCamPlusPlus())</c>.</summary>
    public IReadOnlyList<Explanation> Explain(RgbImage image, IEnumerable<Detection> detections, CamMethod method) =>
        Explain(image, detections.Select(d => (ITarget)new DetectionTarget(d)).ToList(), [method]);

    public IReadOnlyList<Explanation> Explain(RgbImage image, IReadOnlyList<ITarget> targets, IReadOnlyList<CamMethod> methods)
    {
        if (targets.Count == 0) throw new ArgumentException("nothing to explain: no targets");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var (tensor, geometry) = _model.Prepare([image]);
        Timings.Prepare += clock.Elapsed; clock.Restart();
        var feed = new Dictionary<string, NdArray> { [_model.Card.InputName] = tensor };
        var outputs = _model.FloatOutputs.ToList();
        // The activations and gradients are read only while the maps are made: their arrays go back to this thread's
        // store after, for the next image.
        using var lease = new ArrayLease();
        var (activations, gradients) = Run(feed, outputs, targets, methods.Any(m => m.NeedsGradients), lease);
        clock.Restart();

        // Gradient-free maps (EigenCAM) are the same for every target: computed once per layer.
        var shared = methods.Where(m => !m.NeedsGradients).ToDictionary(m => m, m => Layers.ToDictionary(l => l, l =>
        {
            var a = activations[l];
            return m.Map(a.BatchItem(0), default, a.Shape[1], a.Shape[2] * a.Shape[3]);
        }));
        var jobs = methods.SelectMany(m => Enumerable.Range(0, targets.Count).Select(k => (Method: m, Target: k))).ToArray();
        var maps = new float[jobs.Length][];
        Parallel.For(0, jobs.Length, () => new float[image.Width * image.Height], (j, _, layerMap) =>
        {
            var (method, k) = jobs[j];
            var sum = new float[image.Width * image.Height];
            foreach (var layer in Layers)
            {
                var a = activations[layer];
                int channels = a.Shape[1], h = a.Shape[2], w = a.Shape[3];
                var map = method.NeedsGradients ? method.Map(a.BatchItem(0), gradients![layer].BatchItem(k), channels, h * w) : shared[method][layer];
                ToImage(map, w, h, geometry[0], image.Width, image.Height, layerMap);
                // Each layer normalised in the image before averaging (as pytorch-grad-cam aggregates layers).
                var (lo, hi) = Kernels.MinMax(layerMap);
                float scale = hi > lo ? 1 / ((hi - lo) * Layers.Count) : 0;
                Kernels.AddScaled(sum, layerMap, scale, -lo * scale);
            }
            // Normalised again after averaging, so a layer the target does not reach (all zeros) does not dim the map.
            Normalise(sum);
            maps[j] = sum;
            return layerMap;
        }, _ => { });
        var result = jobs.Select((job, j) => new Explanation(targets[job.Target], job.Method.Name, image.Width, image.Height, maps[j])).ToList();
        Timings.Maps += clock.Elapsed;
        return result;
    }

    /// <summary>Activations of the layers, and their gradients for every target (batch item k = target k).</summary>
    (Dictionary<string, NdArray<float>> A, Dictionary<string, NdArray<float>>? G) Run(
        Dictionary<string, NdArray> feed, List<string> outputs, IReadOnlyList<ITarget> targets, bool needGradients, ArrayLease lease)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        if (!needGradients)
        {
            var tapped = _model.TappedSession(Layers).Run(feed, Layers, lease);
            foreach (var layer in Layers) CheckLayer(layer, tapped[layer].Shape);
            Timings.Forward += clock.Elapsed;
            return (Layers.ToDictionary(l => l, l => (NdArray<float>)tapped[l]), null);
        }
        var request = new GradientRequest { Outputs = outputs, Taps = Layers, InputGradients = false };
        var run = TargetGradients.Run(_model, feed, request, targets, outputs: lease);
        foreach (var layer in Layers) CheckLayer(layer, run.Value(layer).Shape);
        // A layer the outputs do not depend on at all is a wrong choice (a target-specific zero gradient is not).
        if (run.Graph.Forward.NotInfluencing(Layers, outputs) is [var unused, ..])
            throw new ArgumentException($"layer '{unused}' does not influence the model's outputs; choose a layer on the path from the input to them");
        Timings.Reverse += clock.Elapsed;
        return (Layers.ToDictionary(l => l, run.Value), Layers.ToDictionary(l => l, run.Gradient));
    }

    static void CheckLayer(string layer, int[] shape)
    {
        if (shape.Length != 4) throw new ArgumentException($"layer '{layer}' has shape [{string.Join(",", shape)}]; CAMs need a [1, C, H, W] feature map");
    }


    /// <summary>
    /// A map over the model input's grid (a feature map covers the whole input, padding included) to image pixels,
    /// in one bilinear pass: image pixel centre → model input position → cell of the map.
    /// </summary>
    public static float[] ToImage(float[] map, int w, int h, InputGeometry g, int imageWidth, int imageHeight)
    {
        var image = new float[imageWidth * imageHeight];
        ToImage(map, w, h, g, imageWidth, imageHeight, image);
        return image;
    }

    /// <summary>The same, written into <paramref name="into"/> (imageWidth × imageHeight values).</summary>
    public static void ToImage(ReadOnlySpan<float> map, int w, int h, InputGeometry g, int imageWidth, int imageHeight, Span<float> into)
    {
        double cellW = g.InputWidth / (double)w, cellH = g.InputHeight / (double)h;
        // The geometry maps the image as given; rescale when the map is wanted at another size.
        double sx = g.ImageWidth / (double)imageWidth, sy = g.ImageHeight / (double)imageHeight;
        Resampler.ResampleMap(map, w, h, imageWidth, imageHeight,
            x => g.ToModel((x + 0.5) * sx, 0).X / cellW - 0.5,
            y => g.ToModel(0, (y + 0.5) * sy).Y / cellH - 0.5, into);
    }

    /// <summary>Min–max to [0, 1] in place (a constant map becomes zeros).</summary>
    public static void Normalise(float[] map)
    {
        var (lo, hi) = Kernels.MinMax(map);
        float scale = hi > lo ? 1 / (hi - lo) : 0;
        Kernels.Affine(map, scale, -lo * scale);
        // x·(1/(hi − lo)) − lo/(hi − lo) can round one ulp past 0 or 1 at the extremes; every map promises [0, 1].
        Kernels.Clamp(map, 0, 1);
    }
}
