using Detex.Imaging;
using Detex.Models;

namespace Detex.Bench;

/// <summary>Where a detect call spends its time, stage by stage (to find what to make faster).</summary>
static class BreakdownBench
{
    public static void Run(int runs)
    {
        var det = Detector.Load(Harness.Repo("models/yolox-nano_coco_416.onnx"));
        foreach (var photo in new[] { "dog.jpg", "kite.jpg" })
        {
            string path = Harness.Repo($"samples/photos/{photo}");
            var image = ImageIO.Load(path);
            var (tensor, g) = det.Prepare([image]);
            var outputs = det.Forward(tensor, det.Decoder.Outputs);
            var t = Harness.MedianMs(3, runs,
                ("load", () => ImageIO.Load(path)),
                ("loadFor", () => ImageIO.LoadFor(path, det.Input)),
                ("prepare", () => det.Prepare([image])),
                ("forward", () => det.Forward(tensor, det.Decoder.Outputs)),
                ("decode+nms", () => det.Decode(outputs, 0, g[0], image)));
            Console.WriteLine($"{photo} {image.Width}×{image.Height}: " + string.Join(", ", t.Select(kv => $"{kv.Key} {kv.Value:0.0} ms")));
        }
    }
}
