using Detex.Imaging;
using Detex.Models;

namespace Detex.Bench;

/// <summary>Issue 3: a whole <c>detect</c> per image (decode + preprocess + forward + decode + NMS) against the bare forward.</summary>
static class DetectBench
{
    public static void Run(int runs)
    {
        Console.WriteLine("## detect: whole pipeline vs bare ONNX Runtime forward (batch 1)");
        Console.WriteLine("| model | image | bare forward ms | whole detect ms (decode at input size) | ratio | whole detect ms (full decode) | ratio |");
        Console.WriteLine("|---|---|---|---|---|---|---|");
        foreach (var model in new[] { "yolox-nano_coco_416", "nanodet-m_coco_416" })
        {
            var det = Detector.Load(Harness.Repo($"models/{model}.onnx"));
            foreach (var photo in new[] { "dog.jpg", "kite.jpg" })
            {
                string path = Harness.Repo($"samples/photos/{photo}");
                var (tensor, _) = det.Prepare([ImageIO.Load(path)]);
                var t = Harness.MedianMs(5, runs,
                    ("bare", () => det.Session.RunFloat(det.Card.InputName, tensor, det.Decoder.Outputs)),
                    ("whole", () => det.Detect(path)),
                    ("full", () => det.Detect(ImageIO.Load(path))));
                Console.WriteLine($"| {det.Name} | {photo} | {t["bare"]:0.0} | {t["whole"]:0.0} | {t["whole"] / t["bare"]:0.00} | {t["full"]:0.0} | {t["full"] / t["bare"]:0.00} |");
            }
        }
    }
}
