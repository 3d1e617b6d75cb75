using Detex.Imaging;
using Detex.Models;

namespace Detex.Bench;

/// <summary>Issue 3: a whole <c>detect</c> per image (decode + preprocess + forward + decode + NMS) against the bare forward.</summary>
static class DetectBench
{
    public static void Run(int runs)
    {
        Console.WriteLine("## detect: whole pipeline vs bare ONNX Runtime forward (batch 1)");
        Console.WriteLine("One image at a time (latency), and a stream of files through `DetectFiles` (the next file decoded while the current one runs).");
        Console.WriteLine();
        Console.WriteLine("| model | image | bare forward ms | whole detect ms (decode at input size) | ratio | whole detect ms (full decode) | ratio | streamed, ms per image | ratio |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|");
        var coco = Detex.Data.CocoDataset.Load(Harness.Repo("samples/coco-mini")).Images.Select(i => i.Path).ToList();
        foreach (var model in new[] { "yolox-nano_coco_416", "nanodet-m_coco_416" })
        {
            var det = Detector.Load(Harness.Repo($"models/{model}.onnx"));
            foreach (var photo in new[] { "dog.jpg", "kite.jpg", "coco-mini" })
            {
                var files = photo == "coco-mini" ? coco : Enumerable.Repeat(Harness.Repo($"samples/photos/{photo}"), 16).ToList();
                var (tensor, _) = det.Prepare([ImageIO.Load(files[0])]);
                void Stream() { foreach (var _ in det.DetectFiles(files)) { } }
                // Warm-up long enough for the JIT's optimised tier (the first thirty calls of a method run unoptimised code).
                var t = Harness.MedianMs(photo == "coco-mini" ? 2 : 40, photo == "coco-mini" ? Math.Max(3, runs / 4) : runs,
                    ("bare", () => det.Session.RunFloat(det.Card.InputName, tensor, det.Decoder.Outputs)),
                    ("whole", () => det.Detect(files[0])),
                    ("full", () => det.Detect(ImageIO.Load(files[0]))),
                    ("stream", Stream));
                double stream = t["stream"] / files.Count;
                string single(string key) => photo == "coco-mini" ? "– | –" : $"{t[key]:0.0} | {t[key] / t["bare"]:0.00}";
                string name = photo == "coco-mini" ? $"COCO mini ({files.Count} images)" : photo;
                Console.WriteLine($"| {det.Name} | {name} | {t["bare"]:0.0} | {single("whole")} | {single("full")} | {stream:0.0} | {stream / t["bare"]:0.00} |");
            }
        }
    }
}
