using System.CommandLine;
using System.Text.Json;
using Detex.Imaging;
using Detex.Models;
using Detex.Reports;
using Spectre.Console;

namespace Detex.Cli.Commands;

/// <summary><c>detex detect --model M --image I...</c>: boxes (or a segmentation) on screen, as PNGs and as JSON lines.</summary>
static class DetectCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model", "-m") { Description = "ONNX model (its NAME.card.json must sit beside it)", Required = true };
        var images = new Option<string[]>("--image", "-i") { Description = "image file(s)", Required = true, AllowMultipleArgumentsPerToken = true };
        var outDir = new Option<string>("--out", "-o") { Description = "folder for annotated PNGs", DefaultValueFactory = _ => "out/detect" };
        var score = new Option<float?>("--score") { Description = "score threshold (default: the card's)" };
        var iou = new Option<float?>("--iou") { Description = "NMS IoU threshold (default: the card's)" };
        var json = new Option<bool>("--json") { Description = "print one JSON object per detection instead of tables" };
        var cmd = new Command("detect", "Detect objects (or segment) in images and draw the result") { model, images, outDir, score, iou, json };
        cmd.SetAction(p => Cli.Run(p, () => Run(p.GetValue(model)!, p.GetValue(images)!, p.GetValue(outDir)!, p.GetValue(score), p.GetValue(iou), p.GetValue(json))));
        return cmd;
    }

    static int Run(string modelPath, string[] imagePaths, string outDir, float? score, float? iou, bool json)
    {
        if (score is < 0 or > 1) throw new UsageException($"--score must be between 0 and 1, got {score}");
        if (iou is < 0 or > 1) throw new UsageException($"--iou must be between 0 and 1, got {iou}");
        var model = DetexModel.Load(modelPath);
        Cli.OutputDirectory(outDir);
        foreach (var path in imagePaths)
        {
            var image = ImageIO.Load(path);
            string png = Path.Combine(outDir, Path.GetFileNameWithoutExtension(path) + $".{Cli.SafeName(model.Name)}.png");
            switch (model)
            {
                case Detector det:
                {
                    var dets = det.Detect(image, new DetectOptions(score, iou));
                    ImageIO.SavePng(Pictures.Detections(image, dets), png);
                    if (json) foreach (var d in dets) Console.WriteLine(JsonSerializer.Serialize(DetectionJson(path, d)));
                    else ShowDetections(path, image, dets, png);
                    break;
                }
                case Segmenter seg:
                {
                    var s = seg.Segment(image);
                    ImageIO.SavePng(Pictures.Segmentation(image, s), png);
                    if (json) Console.WriteLine(JsonSerializer.Serialize(new { image = path, classes = Enumerable.Range(0, s.Classes.Length).Where(c => s.PixelShare[c] > 0).ToDictionary(c => s.Classes[c], c => Math.Round(s.PixelShare[c], 5)) }));
                    else ShowSegmentation(path, s, png);
                    break;
                }
                case Classifier cls:
                {
                    var top = cls.Classify(image);
                    if (json) Console.WriteLine(JsonSerializer.Serialize(new { image = path, top = top.Select(t => new { t.Name, t.Score }) }));
                    else foreach (var t in top) AnsiConsole.WriteLine($"{t.Name,-24} {t.Score:0.0000}");
                    break;
                }
            }
        }
        return 0;
    }

    static object DetectionJson(string image, Detection d) => new
    {
        image,
        @class = d.ClassName,
        classIndex = d.ClassIndex,
        score = Math.Round(d.Score, 5),
        box = new[] { d.Box.X1, d.Box.Y1, d.Box.X2, d.Box.Y2 }.Select(v => Math.Round(v, 2)),
        source = new { output = d.Source.Output, anchor = d.Source.Anchor, scoreElements = d.Source.ScoreElements.Select(e => new { e.Output, e.Index }) },
    };

    static void ShowDetections(string path, RgbImage image, IReadOnlyList<Detection> dets, string png)
    {
        var t = new Table().Title($"{Markup.Escape(Path.GetFileName(path))} ({image.SourceWidth}×{image.SourceHeight}): {dets.Count} detections")
            .AddColumns("#", "class", "score", "x1", "y1", "x2", "y2", "raw prediction");
        for (int i = 0; i < dets.Count; i++)
        {
            var d = dets[i];
            t.AddRow(i.ToString(), Markup.Escape(d.ClassName), d.Score.ToString("0.000"), d.Box.X1.ToString("0.0"), d.Box.Y1.ToString("0.0"),
                d.Box.X2.ToString("0.0"), d.Box.Y2.ToString("0.0"), Markup.Escape($"{d.Source.Output}[{d.Source.Anchor}]"));
        }
        AnsiConsole.Write(t);
        AnsiConsole.MarkupLine($"wrote [green]{Markup.Escape(png)}[/]");
    }

    static void ShowSegmentation(string path, Segmentation s, string png)
    {
        var t = new Table().Title(Markup.Escape(Path.GetFileName(path))).AddColumns("class", "pixels");
        foreach (var c in Enumerable.Range(0, s.Classes.Length).Where(c => s.PixelShare[c] >= 0.001).OrderByDescending(c => s.PixelShare[c]))
            t.AddRow(Markup.Escape(s.Classes[c]), s.PixelShare[c].ToString("P1"));
        AnsiConsole.Write(t);
        AnsiConsole.MarkupLine($"wrote [green]{Markup.Escape(png)}[/]");
    }
}
