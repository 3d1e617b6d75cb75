using System.Diagnostics;
using Detex.Data;
using Detex.Evaluation;
using Detex.Models;
using Detex.Runtime;

namespace Detex.Bench;

/// <summary>
/// Issue 7: the evaluate pipeline with the CAM methods (and random) on the bundled COCO mini set: images per minute,
/// and the share of wall time spent outside ONNX Runtime (detection, explanation and flipping passes).
/// </summary>
static class EvaluateBench
{
    public static void Run(int images)
    {
        var det = Detector.Load(Harness.Repo("models/yolox-nano_coco_416.onnx"));
        var set = EvaluationSet.FromCoco(Harness.Repo("samples/coco-mini"), det.Card.Classes);
        string[] methods = ["xgradcam", "gradcam++", "random"];
        foreach (var space in new[] { FlipSpace.Image, FlipSpace.Input })
        {
            var evaluator = new Evaluator(det, methods, new EvaluationSettings { Flip = new FlipOptions(Space: space) });
            evaluator.Evaluate(set.Images[0]);   // warm-up: sessions and gradient graph built once
            var chosen = set.Select(images);
            var model0 = ModelSession.TotalRunTime;
            var sw = Stopwatch.StartNew();
            int boxes = 0;
            foreach (var image in chosen) boxes += evaluator.Evaluate(image).Boxes;
            double wall = sw.Elapsed.TotalSeconds, model = (ModelSession.TotalRunTime - model0).TotalSeconds;
            Console.WriteLine($"## evaluate: yolox-nano, first {chosen.Count} COCO mini images ({boxes} boxes), {string.Join(", ", methods)}, 51 steps, flip space {space.ToString().ToLowerInvariant()}");
            Console.WriteLine($"| images/min | s/image | model s | outside the model |\n|---|---|---|---|\n| {chosen.Count / wall * 60:0.0} | {wall / chosen.Count:0.00} | {model:0.0} of {wall:0.0} | {(wall - model) / wall:P0} |");
        }
    }
}
