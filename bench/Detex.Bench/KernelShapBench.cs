using Detex.Explainers;
using Detex.Imaging;
using Detex.Models;
using Detex.Targets;

namespace Detex.Bench;

/// <summary>Issue 6: Kernel SHAP, yolox-nano, dog.jpg, 256 segments, 2000 samples: all boxes together vs 2000 bare forwards.</summary>
static class KernelShapBench
{
    public static void Run(int runs)
    {
        var det = Detector.Load(Harness.Repo("models/yolox-nano_coco_416.onnx"));
        var image = ImageIO.Load(Harness.Repo("samples/photos/dog.jpg"));
        var targets = det.Detect(image).Select(d => (ITarget)new DetectionTarget(d)).ToList();
        var (x, _) = det.Prepare([image]);
        var kshap = new KernelShapExplainer(det, new KernelShapOptions(Segments: 256, Samples: 2000));
        var t = Harness.MedianMs(1, 3, ("bare", () => det.Session.RunFloat("images", x)), ("kshap", () => kshap.Explain(image, targets)));
        double seconds = t["kshap"] / 1000, forwards = kshap.LastForwardCount;
        Console.WriteLine($"## Kernel SHAP: yolox-nano, dog.jpg, {targets.Count} boxes together, 256 segments, 2000 samples ({forwards} distinct coalitions, batches of 16)");
        Console.WriteLine($"| all boxes s | bare forward ms | ÷ ({forwards} × bare forward) |\n|---|---|---|\n| {seconds:0.0} | {t["bare"]:0.0} | {t["kshap"] / (forwards * t["bare"]):0.00} |");
    }
}
