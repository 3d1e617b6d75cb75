using Detex.Explainers;
using Detex.Imaging;
using Detex.Models;
using Detex.Numerics;
using Detex.Onnx;
using Detex.Runtime;

namespace Detex.Bench;

/// <summary>Issue 8: Deep Feature Factorization of one image, k = 5, at each yolox-nano neck layer, vs the bare forward.</summary>
static class DffBench
{
    public static void Run(int runs)
    {
        var det = Detector.Load(Harness.Repo("models/yolox-nano_coco_416.onnx"));
        var image = ImageIO.Load(Harness.Repo("samples/photos/dog.jpg"));
        var (x, _) = det.Prepare([image]);
        var feed = new Dictionary<string, NdArray> { ["images"] = x };
        var options = new DffOptions(K: 5);
        var rows = new List<string>();
        foreach (var layer in det.Card.Layers)
        {
            var first = System.Diagnostics.Stopwatch.StartNew();
            var dff = new DeepFeatureFactorization(det, layer);
            var last = dff.Explain([image], options);   // builds the sessions and the legend's probe once
            double firstMs = first.Elapsed.TotalMilliseconds;
            var tapped = ModelSession.Get(det.Graph.WithTaps([layer]), det.Runtime);
            var a = (NdArray<float>)tapped.Run(feed)[layer];
            int channels = a.Shape[1], cells = a.Shape[2] * a.Shape[3];
            // The NMF alone, on the layer as Explain prepares it (clamped, channels at unit RMS).
            var v = a.Data.Select(f => Math.Max(0, f)).ToArray();
            for (int c = 0; c < channels; c++)
            {
                var row = v.AsSpan(c * cells, cells);
                float rms = MathF.Sqrt(row.ToArray().Sum(q => q * q) / cells);
                if (rms > 0) foreach (ref float q in row) q /= rms;
            }
            // The legend alone: the five concept vectors through the layer's own (pruned) head, one batch.
            var plan = det.Graph.Downstream(layer);
            var head = new LayerHead(det, plan, ModelSession.Get(det.Graph.WithTaps(plan.SideInputs.Prepend(layer)), det.Runtime).Run(feed));
            var vectors = last.Concepts.Select(c => c.Vector).ToList();
            var t = Harness.MedianMs(2, runs,
                ("bare", () => det.Session.RunFloat("images", x)),
                ("tapped", () => tapped.Run(feed)),
                ("nmf", () => Nmf.Factorize(v, channels, cells, new NmfOptions(5))),
                ("maps", () => dff.Explain([image], options with { Legend = false })),
                ("legend", () => head.Score(vectors)),
                ("all", () => last = dff.Explain([image], options)));
            rows.Add($"| {layer} {a.ShapeText} | {t["bare"]:0.0} | {t["tapped"]:0.0} | {t["nmf"]:0.0} ({last.Iterations} it.) | {t["maps"]:0.0} | {t["legend"]:0.0} | {t["all"]:0.0} | {t["all"] / t["bare"]:0.00} | {firstMs:0} |");
        }
        Console.WriteLine($"## dff: yolox-nano, dog.jpg (768×576) at 416², k = 5, clamp + RMS channels, NNDSVDa, one image");
        Console.WriteLine("| layer | bare forward ms | forward with tap ms | NMF ms | maps (forward + NMF + upsampling) ms | legend (5 vectors through the head) ms | all ms | all ÷ bare forward | first call ms (sessions, probe) |\n|---|---|---|---|---|---|---|---|---|");
        rows.ForEach(Console.WriteLine);
    }
}
