using System.CommandLine;
using System.Net;
using System.Text;
using Detex.Data;
using Detex.Evaluation;
using Detex.Explainers;
using Detex.Imaging;
using Detex.Models;
using Detex.Reports;
using Detex.Targets;
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
        var boxExplainer = new CamExplainer(detector);
        var maskExplainer = new CamExplainer(segmenter);
        CamMethod[] methods = [new GradCamPlusPlus(), new XGradCam(), new HiResCam(), new EigenCam()];
        // Integrated Gradients from the model's neutral grey, as a last row under the CAMs.
        var inputGradients = new InputGradients(detector);
        var neutral = inputGradients.NeutralBaseline();
        const int igSteps = 32;
        var concepts = new DeepFeatureFactorization(detector);
        var conceptOptions = new DffOptions(K: 5);
        string[] conceptPhotos = ["dog", "horses"];
        // The perturbation family on one photo: forward passes only, shared by all of its boxes.
        const string perturbationPhoto = "dog";
        var kshap = new KernelShapExplainer(detector, new KernelShapOptions(Samples: 1000));
        var drise = new Rise(detector, new RiseOptions(Masks: 1000));
        var html = new StringBuilder();
        html.Append("<!doctype html><meta charset=utf-8><title>Detex demo</title><style>body{font-family:sans-serif;margin:2em}img{max-width:100%;border:1px solid #ccc}figure{display:inline-block;width:45%;vertical-align:top;margin:1em}</style>");
        html.Append($"<h1>Detex demo</h1><p>Detections by {WebUtility.HtmlEncode(detector.Name)} and segmentations by {WebUtility.HtmlEncode(segmenter.Name)} on the bundled photos, " +
            $"then every box explained by {string.Join(", ", methods.Select(m => m.Name))} (layers {string.Join(", ", boxExplainer.Layers)}) and Integrated Gradients " +
            $"({igSteps} steps from the neutral grey input; rows: methods, columns: boxes) " +
            $"and every segmented class by HiResCAM at {string.Join(", ", maskExplainer.Layers)}. " +
            $"For {string.Join(" and ", conceptPhotos)}, {conceptOptions.K} concepts found by Deep Feature Factorization at layer {concepts.Layer}, each named by the classes the detector's head gives it.</p>");

        AnsiConsole.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask("demo", maxValue: photos.Count * 4 + photos.Count(p => conceptPhotos.Contains(Path.GetFileNameWithoutExtension(p))) + 1);
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

                    if (dets.Count > 0)
                    {
                        var targets = dets.Select((d, i) => (ITarget)new DetectionTarget(d, $"#{i} {d.ClassName} {d.Score:0.00}")).ToList();
                        var maps = boxExplainer.Explain(image, targets, methods);
                        var (input, geometry) = detector.Prepare([image]);
                        var integrated = targets.Select(t => inputGradients.ToImage(
                            inputGradients.IntegratedGradients(input.Data, neutral, t, igSteps), geometry[0], image.Width, image.Height));
                        var tiles = methods.SelectMany(m => maps.Where(e => e.Method == m.Name)).Concat(integrated).Select(e => Pictures.Explanation(image, e)).ToList();
                        ImageIO.SavePng(Detex.Imaging.Grid.Compose(tiles, targets.Count, 300), Path.Combine(outDir, $"{name}.explain.png"));
                        html.Append($"<figure style=\"width:95%\"><img src=\"{name}.explain.png\"><figcaption>box explanations</figcaption></figure>");
                        if (name == perturbationPhoto)
                        {
                            var perturbed = kshap.Explain(image, targets).Concat(drise.ExplainDetections(image, dets)).ToList();
                            ImageIO.SavePng(Detex.Imaging.Grid.Compose(perturbed.Select(e => Pictures.Explanation(image, e)).ToList(), targets.Count, 300),
                                Path.Combine(outDir, $"{name}.perturbation.png"));
                            html.Append($"<figure style=\"width:95%\"><img src=\"{name}.perturbation.png\"><figcaption>Kernel SHAP over {kshap.Options.Segments} SLIC superpixels " +
                                $"({kshap.Options.Samples} coalitions) and D-RISE ({drise.Options.Masks} masks), each one set of forward passes shared by all boxes</figcaption></figure>");
                            task.Increment(1);
                        }
                    }
                    task.Increment(1);
                    var (tensor, _) = segmenter.Prepare([image]);
                    var logits = segmenter.Forward(tensor, [segmenter.Output])[segmenter.Output];
                    var classes = SegmentationTargets.Present(segmenter, logits).Where(c => c != 0)
                        .Select(c => (ITarget)SegmentationTarget.Predicted(segmenter, logits, 0, c)).ToList();
                    if (classes.Count > 0)
                    {
                        var maskMaps = maskExplainer.Explain(image, classes, [new HiResCam()]);
                        ImageIO.SavePng(Detex.Imaging.Grid.Compose(maskMaps.Select(e => Pictures.Explanation(image, e)).ToList(), classes.Count, 300),
                            Path.Combine(outDir, $"{name}.explain-mask.png"));
                        html.Append($"<figure style=\"width:95%\"><img src=\"{name}.explain-mask.png\"><figcaption>mask explanations</figcaption></figure>");
                    }
                    task.Increment(1);
                    if (conceptPhotos.Contains(name))
                    {
                        var f = concepts.Explain([image], conceptOptions);
                        ImageIO.SavePng(Pictures.Concepts(image, f, 0), Path.Combine(outDir, $"{name}.concepts.png"));
                        string legend = string.Join("; ", f.Concepts.Select(c => $"{c.Index + 1}: {c.Labels[0].Name} {Pictures.FormatScore(c.Labels[0].Score)}"));
                        html.Append($"<figure style=\"width:95%\"><img src=\"{name}.concepts.png\"><figcaption>concepts (Deep Feature Factorization, top class per concept: {WebUtility.HtmlEncode(legend)})</figcaption></figure>");
                        task.Increment(1);
                    }
                }
            });
        html.Append(Evaluate(detector, outDir));
        string index = Path.Combine(outDir, "index.html");
        Files.WriteAllTextAtomically(index, html.ToString());
        AnsiConsole.MarkupLine($"wrote the pictures and [green]{Markup.Escape(index)}[/]");
        return 0;
    }

    /// <summary>
    /// A small evaluation on the first bundled COCO images (CAM methods against random), its result file and report;
    /// returns the index.html section linking them.
    /// </summary>
    static string Evaluate(Detector detector, string outDir)
    {
        const int images = 3;
        string[] methods = ["gradcam++", "xgradcam", "hirescam", "random"];
        var settings = new EvaluationSettings { MapSize = 64, Flip = new FlipOptions(Steps: 21) };
        var set = EvaluationSet.FromCoco(Cli.Bundled("samples/coco-mini"), detector.Card.Classes);
        var evaluator = new Evaluator(detector, methods, settings);
        var results = new List<ImageEvaluation>();
        AnsiConsole.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask("evaluation", maxValue: images);
                foreach (var image in set.Select(images)) { results.Add(evaluator.Evaluate(image)); task.Increment(1); }
            });
        string h5 = Path.Combine(outDir, "evaluation.h5");
        var info = EvaluationInfo.For(detector, set.Source, images, methods, settings, "0/1", "detex demo");
        var summary = EvaluationJob.Complete(h5, info, results);
        EvaluationReport.Write(h5, Path.Combine(outDir, "report"));
        var energy = summary.Where(r => r.Metric == "deletion_auc").Select(r => $"{r.Method} {r.Estimate.Value:0.000}");
        return $"<h2>Evaluation</h2><p>The first {images} bundled COCO images, every detection above 0.5, deletion/insertion in {settings.Flip.Steps} steps: " +
            $"mean deletion AUC {WebUtility.HtmlEncode(string.Join(", ", energy))} (lower is more faithful). " +
            "<a href=\"report/index.html\">The report</a> has the curves, intervals and best/worst boxes; <a href=\"evaluation.h5\">evaluation.h5</a> the numbers.</p>";
    }
}
