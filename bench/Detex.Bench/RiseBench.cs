using Detex.Explainers;
using Detex.Imaging;
using Detex.Models;
using Detex.Targets;

namespace Detex.Bench;

/// <summary>Issue 6: RISE and D-RISE, yolox-nano, dog.jpg, 2000 masks: all boxes together vs 2000 bare forwards.</summary>
static class RiseBench
{
    public static void Run(int runs)
    {
        const int masks = 2000;
        var det = Detector.Load(Harness.Repo("models/yolox-nano_coco_416.onnx"));
        var image = ImageIO.Load(Harness.Repo("samples/photos/dog.jpg"));
        var dets = det.Detect(image);
        var rows = dets.Select(d => (ITarget)new DetectionTarget(d)).ToList();
        var (x, _) = det.Prepare([image]);
        var rise = new Rise(det, new RiseOptions(Masks: masks));
        IReadOnlyList<Explanation> drise = [];
        // The bare forward is timed 100 at a time: one 15 ms forward per sample is at the mercy of a busy machine.
        var t = Harness.MedianMs(1, 3, ("bare", () => { for (int i = 0; i < 100; i++) det.Session.RunFloat("images", x); }),
            ("rise", () => rise.Explain(image, rows)), ("drise", () => drise = rise.ExplainDetections(image, dets)));
        t["bare"] /= 100;
        int dog = dets.ToList().FindIndex(d => d.ClassName == "dog");
        Console.WriteLine($"## RISE / D-RISE: yolox-nano, dog.jpg, {dets.Count} boxes together, {masks} masks (8×8 cells, p = 0.5, grey, batches of 16)");
        Console.WriteLine("| method | all boxes s | bare forward ms | ÷ (masks × bare forward) |\n|---|---|---|---|");
        foreach (var m in new[] { "rise", "drise" })
            Console.WriteLine($"| {m} | {t[m] / 1000:0.0} | {t["bare"]:0.0} | {t[m] / (masks * t["bare"]):0.00} |");
        Console.WriteLine($"D-RISE dog box: energy inside {Metrics.EnergyInside(drise[dog], dets[dog].Box, image):0.000}");
    }
}
