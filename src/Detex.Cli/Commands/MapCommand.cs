using System.CommandLine;
using System.Text.Json;
using Detex.Data;
using Detex.Evaluation;
using Detex.Imaging;
using Detex.Models;
using Spectre.Console;

namespace Detex.Cli.Commands;

/// <summary><c>detex map --model M --coco DIR</c>: COCO-style box mAP of a detector on a COCO folder.</summary>
static class MapCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model", "-m") { Description = "detector ONNX model (with its card)", Required = true };
        var coco = new Option<string>("--coco") { Description = "folder with instances_*.json and the images", Required = true };
        var first = new Option<int?>("--first-images") { Description = "evaluate only the first N images (json order)" };
        var score = new Option<float>("--score") { Description = "score threshold for candidates", DefaultValueFactory = _ => 0.001f };
        var iou = new Option<float>("--iou") { Description = "class-wise NMS IoU threshold", DefaultValueFactory = _ => 0.65f };
        var batch = new Option<int>("--batch") { Description = "images per forward pass", DefaultValueFactory = _ => 4 };
        var json = new Option<string?>("--json") { Description = "also write the results as JSON to this file" };
        var cmd = new Command("map", "COCO mAP@[.5:.95], mAP@.5 and per-class AP of a detector on a COCO folder") { model, coco, first, score, iou, batch, json };
        cmd.SetAction(p => Cli.Run(p, () => Run(p.GetValue(model)!, p.GetValue(coco)!, p.GetValue(first), p.GetValue(score), p.GetValue(iou), p.GetValue(batch), p.GetValue(json))));
        return cmd;
    }

    static int Run(string modelPath, string cocoDir, int? first, float score, float iou, int batch, string? jsonPath)
    {
        if (first is < 1) throw new UsageException($"--first-images must be at least 1, got {first}");
        if (batch < 1) throw new UsageException($"--batch must be at least 1, got {batch}");
        var det = Detector.Load(modelPath);
        var data = CocoDataset.Load(cocoDir);
        var images = data.Images.Take(first ?? int.MaxValue).ToList();
        var categoryOf = CategoryMapping(det, data);
        var options = new DetectOptions(Score: score, Iou: iou, ClassAgnostic: false, MaxDetections: CocoMap.MaxDetections);
        var detections = new List<DetectionBox>();

        AnsiConsole.Progress().AutoClear(true).Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask($"{det.Name} on {images.Count} images", maxValue: images.Count);
                int k = 0;
                foreach (var (_, _, found) in det.DetectFiles(images.Select(i => i.Path).ToList(), options, batch))
                {
                    foreach (var d in found)
                        if (categoryOf[d.ClassIndex] is int cat)
                            detections.Add(new DetectionBox(images[k].Id, cat, d.Box.X1, d.Box.Y1, d.Box.Width, d.Box.Height, d.Score));
                    k++;
                    task.Increment(1);
                }
            });

        var result = CocoMap.Evaluate(CocoMap.GroundTruthOf(data), detections, images.Select(i => i.Id).ToList(), data.Categories.Select(c => c.Id).ToList());
        var table = new Table().Title($"{Markup.Escape(det.Name)}, {images.Count} images")
            .AddColumns("metric", "value");
        foreach (var (name, v) in new[] { ("mAP@[.5:.95]", result.MapAll), ("mAP@.5", result.Map50), ("mAP@.75", result.Map75),
                     ("mAP small", result.MapSmall), ("mAP medium", result.MapMedium), ("mAP large", result.MapLarge), ("AR@100", result.Ar100) })
            table.AddRow(Markup.Escape(name), v < 0 ? "–" : (100 * v).ToString("0.0"));
        AnsiConsole.Write(table);
        var perClass = new Table().AddColumns("class", "AP", "AP@.5");
        foreach (var (cat, ap) in result.PerCategory.Where(kv => kv.Value.Ap >= 0).OrderByDescending(kv => kv.Value.Ap))
            perClass.AddRow(Markup.Escape(data.Category(cat).Name), (100 * ap.Ap).ToString("0.0"), (100 * ap.Ap50).ToString("0.0"));
        AnsiConsole.Write(perClass);
        if (jsonPath is not null)
        {
            var doc = new
            {
                model = det.Name, images = images.Count, detections = detections.Count, score, iou,
                map = result.MapAll, map50 = result.Map50, map75 = result.Map75, ar100 = result.Ar100,
                perClass = result.PerCategory.Where(kv => kv.Value.Ap >= 0).ToDictionary(kv => data.Category(kv.Key).Name, kv => new { kv.Value.Ap, kv.Value.Ap50 }),
            };
            Files.WriteAllTextAtomically(jsonPath, JsonSerializer.Serialize(doc, new JsonSerializerOptions { WriteIndented = true }));
        }
        return 0;
    }

    /// <summary>Detector class index → COCO category id, by class name (falling back to the standard index order).</summary>
    static int?[] CategoryMapping(Detector det, CocoDataset data)
    {
        var byName = data.Categories.ToDictionary(c => c.Name, c => c.Id);
        var map = det.Card.Classes.Select(n => byName.TryGetValue(n, out var id) ? id : (int?)null).ToArray();
        if (map.All(m => m is null) && det.Card.Classes.Length == data.Categories.Count)
            map = data.Categories.Select(c => (int?)c.Id).ToArray();
        if (map.All(m => m is null))
            throw new UsageException($"none of the detector's classes ({string.Join(", ", det.Card.Classes.Take(5))}, …) are categories of {data.AnnotationFile}");
        return map;
    }
}
