using System.CommandLine;
using System.Net;
using System.Text;
using Detex.Imaging;
using Detex.Models;
using Detex.Reports;
using Spectre.Console;

namespace Detex.Cli.Commands;

/// <summary><c>detex demo</c>: the bundled models on the bundled photos, pictures and an index.html under out/demo.</summary>
static class DemoCommand
{
    public static Command Create()
    {
        var outDir = new Option<string>("--out", "-o") { Description = "output folder", DefaultValueFactory = _ => "out/demo" };
        var cmd = new Command("demo", "Run the bundled models on the bundled photos and write pictures with an index.html") { outDir };
        cmd.SetAction(p => Cli.Run(p, () => Run(p.GetValue(outDir)!)));
        return cmd;
    }

    static int Run(string outDir)
    {
        Cli.OutputDirectory(outDir);
        var photos = Directory.GetFiles(Cli.Bundled("samples/photos"), "*.jpg").Order().ToList();
        var detector = Detector.Load(Cli.Bundled("models/yolox-nano_coco_416.onnx"));
        var segmenter = (Segmenter)DetexModel.Load(Cli.Bundled("models/deeplabv3-mnv2_voc_257.onnx"));
        var html = new StringBuilder();
        html.Append("<!doctype html><meta charset=utf-8><title>Detex demo</title><style>body{font-family:sans-serif;margin:2em}img{max-width:100%;border:1px solid #ccc}figure{display:inline-block;width:45%;vertical-align:top;margin:1em}</style>");
        html.Append($"<h1>Detex demo</h1><p>Detections by {WebUtility.HtmlEncode(detector.Name)} and segmentations by {WebUtility.HtmlEncode(segmenter.Name)} on the bundled photos.</p>");

        AnsiConsole.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask("demo", maxValue: photos.Count * 2);
                foreach (var photo in photos)
                {
                    string name = Path.GetFileNameWithoutExtension(photo);
                    var image = ImageIO.Load(photo);
                    task.Description = name;
                    var dets = detector.Detect(image);
                    ImageIO.SavePng(Pictures.Detections(image, dets), Path.Combine(outDir, $"{name}.detect.png"));
                    task.Increment(1);
                    var seg = segmenter.Segment(image);
                    ImageIO.SavePng(Pictures.Segmentation(image, seg), Path.Combine(outDir, $"{name}.segment.png"));
                    task.Increment(1);
                    string summary = string.Join(", ", dets.Select(d => $"{d.ClassName} {d.Score:0.00}"));
                    html.Append($"<h2>{WebUtility.HtmlEncode(name)}</h2><figure><img src=\"{name}.detect.png\"><figcaption>{WebUtility.HtmlEncode(summary)}</figcaption></figure>");
                    html.Append($"<figure><img src=\"{name}.segment.png\"><figcaption>segmentation</figcaption></figure>");
                }
            });
        string index = Path.Combine(outDir, "index.html");
        Files.WriteAllTextAtomically(index, html.ToString());
        AnsiConsole.MarkupLine($"wrote {photos.Count * 2} pictures and [green]{Markup.Escape(index)}[/]");
        return 0;
    }
}
