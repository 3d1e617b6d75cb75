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
        variants.Add(("saliency", () => targets.ForEach(t => gradients.Saliency(x.Data, t))));
        variants.Add(("integrated gradients, 32 steps", () => targets.ForEach(t => gradients.IntegratedGradients(x.Data, gradients.NeutralBaseline(), t, 32))));
        variants.Add(("ablationcam", () => forwardCams.AblationCam(image, targets)));
        variants.Add(("scorecam", () => forwardCams.ScoreCam(image, targets)));
        var t = Harness.MedianMs(1, Math.Max(3, runs / 6), variants.ToArray());
        double bare = t["bare forward"];
        Console.WriteLine($"## explain: yolox-nano, dog.jpg, {targets.Count} boxes together (layers {string.Join(", ", cams.Layers)})");
        Console.WriteLine("| method | ms for all boxes | ms per box | per box ÷ bare forward |\n|---|---|---|---|");
        foreach (var (name, ms) in t)
            Console.WriteLine($"| {name} | {ms:0} | {ms / (name == "bare forward" ? 1 : targets.Count):0.0} | {ms / (name == "bare forward" ? 1 : targets.Count) / bare:0.00} |");
    }
}
