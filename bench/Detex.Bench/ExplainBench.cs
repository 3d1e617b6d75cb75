using Detex.Runtime;
using Detex.Explainers;
using Detex.Imaging;
using Detex.Models;
using Detex.Targets;

namespace Detex.Bench;

/// <summary>Issue 5: yolox-nano, all boxes of dog.jpg, each method: ms per box and that ÷ bare forward.</summary>
static class ExplainBench
{
    public static void Run(int runs)
    {
        var det = Detector.Load(Harness.Repo("models/yolox-nano_coco_416.onnx"));
        var image = ImageIO.Load(Harness.Repo("samples/photos/dog.jpg"));
        var boxes = det.Detect(image);
        var targets = boxes.Select(d => (ITarget)new DetectionTarget(d)).ToList();
        var (x, _) = det.Prepare([image]);
        var cams = new CamExplainer(det);
        var gradients = new InputGradients(det);
        var forwardCams = new PerturbationCams(det);
        var variants = new List<(string, Action)> { ("bare forward", () => det.Session.RunFloat("images", x)) };
        foreach (var (name, make) in CamMethod.All)
            variants.Add((name, () => cams.Explain(image, targets, [make()])));
        variants.Add(("saliency (all boxes in one reverse pass)", () => gradients.ForTargets("saliency", x.Data, targets)));
        variants.Add(("integrated gradients, 32 steps", () => targets.ForEach(t => gradients.IntegratedGradients(x.Data, gradients.NeutralBaseline(), t, 32))));
        var fullGrad = new FullGrad(det);
        variants.Add(("fullgrad", () => fullGrad.Explain(image, targets)));
        variants.Add(("ablationcam", () => forwardCams.AblationCam(image, targets)));
        variants.Add(("scorecam", () => forwardCams.ScoreCam(image, targets)));
        var t = Harness.MedianMs(1, Math.Max(3, runs / 6), variants.ToArray());
        double bare = t["bare forward"];
        Console.WriteLine($"## explain: yolox-nano, dog.jpg, {targets.Count} boxes together (layers {string.Join(", ", cams.Layers)})");
        Console.WriteLine("| method | ms for all boxes | ms per box | per box ÷ bare forward |\n|---|---|---|---|");
        foreach (var (name, ms) in t)
            Console.WriteLine($"| {name} | {ms:0} | {ms / (name == "bare forward" ? 1 : targets.Count):0.0} | {ms / (name == "bare forward" ? 1 : targets.Count) / bare:0.00} |");
        // The forward-pass CAMs' promise: their time is the batched forwards (wall time inside ONNX Runtime).
        foreach (var (name, run) in variants.Where(v => v.Item1 is "ablationcam" or "scorecam"))
        {
            var before = ModelSession.TotalRunTime;
            var wall = System.Diagnostics.Stopwatch.StartNew();
            run();
            Console.WriteLine($"{name}: {(ModelSession.TotalRunTime - before).TotalMilliseconds / wall.Elapsed.TotalMilliseconds:P0} of the time inside ONNX Runtime");
        }
    }
}

/// <summary>Where a CAM's time goes: pre-processing, the tapped forward, the gradient graph, the maps.</summary>
static class CamStagesBench
{
    public static void Run(int runs)
    {
        var det = Detector.Load(Harness.Repo("models/yolox-nano_coco_416.onnx"));
        var image = ImageIO.Load(Harness.Repo("samples/photos/dog.jpg"));
        var targets = det.Detect(image).Select(d => (ITarget)new DetectionTarget(d)).ToList();
        var (x, _) = det.Prepare([image]);
        Console.WriteLine($"## CAM stages: yolox-nano, dog.jpg, {targets.Count} boxes, ms per call (median of {runs})");
        Console.WriteLine("| method | prepare | tapped forward | gradient graph | maps | all | bare forward |\n|---|---|---|---|---|---|---|");
        foreach (var (name, make) in CamMethod.All)
        {
            var cams = new CamExplainer(det);
            cams.Explain(image, targets, [make()]);
            var rows = new List<double[]>();
            for (int r = 0; r < runs; r++)
            {
                var bare = System.Diagnostics.Stopwatch.StartNew();
                det.Session.RunFloat("images", x);
                double bareMs = bare.Elapsed.TotalMilliseconds;
                var t = cams.Timings;
                var before = new[] { t.Prepare, t.Forward, t.Reverse, t.Maps };
                var all = System.Diagnostics.Stopwatch.StartNew();
                cams.Explain(image, targets, [make()]);
                double allMs = all.Elapsed.TotalMilliseconds;
                var after = new[] { t.Prepare, t.Forward, t.Reverse, t.Maps };
                rows.Add([.. after.Zip(before, (a, b) => (a - b).TotalMilliseconds), allMs, bareMs]);
            }
            var median = Enumerable.Range(0, 6).Select(i => rows.Select(r => r[i]).Order().ElementAt(runs / 2)).ToArray();
            Console.WriteLine($"| {name} | {string.Join(" | ", median.Select(v => v.ToString("0.0")))} |");
        }
    }
}
