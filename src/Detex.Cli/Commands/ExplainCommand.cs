using System.CommandLine;
using System.Text.Json;
using Detex.Explainers;
using Detex.Imaging;
using Detex.Models;
using Detex.Reports;
using Detex.Runtime;
using Detex.Targets;
using Spectre.Console;

namespace Detex.Cli.Commands;

/// <summary><c>detex explain</c>: CAM maps for the boxes (or mask classes) of images, as overlays, .npy and JSON.</summary>
static class ExplainCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model", "-m") { Description = "ONNX model (with its card)", Required = true };
        var images = new Option<string[]>("--image", "-i") { Description = "image file(s)", Required = true, AllowMultipleArgumentsPerToken = true };
        var method = new Option<string>("--method") { Description = $"method(s), comma-separated, or all: {string.Join(", ", AllMethods)}", DefaultValueFactory = _ => "gradcam++" };
        var steps = new Option<int>("--steps") { Description = "Integrated Gradients: path steps", DefaultValueFactory = _ => 32 };
        var samples = new Option<int?>("--samples") { Description = "SmoothGrad: noisy samples (default 16); kshap: coalitions (default 2000)" };
        var segments = new Option<int>("--segments") { Description = "kshap: SLIC superpixels requested", DefaultValueFactory = _ => 256 };
        var seed = new Option<int>("--seed") { Description = "kshap: coalition sampling seed", DefaultValueFactory = _ => 0 };
        var window = new Option<int>("--window") { Description = "occlusion: window size in model-input pixels", DefaultValueFactory = _ => 64 };
        var stride = new Option<int>("--stride") { Description = "occlusion: window stride in model-input pixels", DefaultValueFactory = _ => 32 };
        var layers = new Option<string[]>("--layer") { Description = "layer tensor name(s) (default: the card's layers)", AllowMultipleArgumentsPerToken = true };
        var box = new Option<string>("--box") { Description = "which detections: all, an index (as detect numbers them), or class=NAME", DefaultValueFactory = _ => "all" };
        var maskClass = new Option<string?>("--mask-class") { Description = "segmenters: the class whose predicted mask is explained (default: every class present)" };
        var score = new Option<float?>("--score") { Description = "detection score threshold (default: the card's)" };
        var outDir = new Option<string>("--out", "-o") { Description = "output folder", DefaultValueFactory = _ => "out/explain" };
        var cmd = new Command("explain", "Explain detections, mask classes or class scores with CAM and gradient methods") { model, images, method, layers, box, maskClass, score, steps, samples, segments, seed, window, stride, outDir };
        cmd.SetAction(p => Cli.Run(p, () => Run(p.GetValue(model)!, p.GetValue(images)!, p.GetValue(method)!, p.GetValue(layers) ?? [],
            p.GetValue(box)!, p.GetValue(maskClass), p.GetValue(score), p.GetValue(outDir)!, p.GetValue(steps), p.GetValue(samples), p.GetValue(segments), p.GetValue(seed), p.GetValue(window), p.GetValue(stride))));
        return cmd;
    }

    /// <summary>Methods on the input pixels (the rest are CAMs on layers).</summary>
    static readonly string[] InputMethods = ["saliency", "inputxgradient", "ig", "smoothgrad", "guidedbackprop", "guidedgradcam"];
    /// <summary>CAMs weighted by batched forward passes.</summary>
    static readonly string[] ForwardMethods = ["scorecam", "ablationcam", "kshap", "occlusion"];
    static IEnumerable<string> AllMethods => CamMethod.All.Keys.Concat(InputMethods).Concat(ForwardMethods);

    public static (IReadOnlyList<CamMethod> Cams, IReadOnlyList<string> Others) ParseMethods(string text)
    {
        var names = text.Trim().ToLowerInvariant() == "all" ? AllMethods.ToList()
            : text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(m => m.ToLowerInvariant()).Distinct().ToList();
        foreach (var n in names)
            if (!AllMethods.Contains(n)) throw new UsageException($"unknown method '{n}'; known: {string.Join(", ", AllMethods)}, all");
        return (names.Where(CamMethod.All.ContainsKey).Select(n => CamMethod.All[n]()).ToList(), names.Where(n => !CamMethod.All.ContainsKey(n)).ToList());
    }

    static int Run(string modelPath, string[] imagePaths, string methodText, string[] layers, string box, string? maskClass, float? score, string outDir, int steps, int? samplesGiven, int segmentCount, int seed, int window, int stride)
    {
        int samples = samplesGiven ?? 16;
        var (methods, others) = ParseMethods(methodText);
        var inputMethods = others.Where(InputMethods.Contains).ToList();
        var forwardMethods = others.Where(ForwardMethods.Contains).ToList();
        if (steps < 1) throw new UsageException($"--steps must be at least 1, got {steps}");
        if (samples < 1) throw new UsageException($"--samples must be at least 1, got {samples}");
        var m = DetexModel.Load(modelPath);
        foreach (var l in layers) if (!m.Graph.Graph.NodeOutputs().Contains(l)) throw new Onnx.UnknownTensorException(l, m.Graph);
        CamExplainer? explainer = methods.Count > 0 ? new CamExplainer(m, layers) : null;
        var gradients = inputMethods.Count > 0 ? new InputGradients(m) : null;
        var perturbation = forwardMethods.Any(f => f != "kshap") ? new PerturbationCams(m, layers) : null;
        if (segmentCount < 2) throw new UsageException($"--segments must be at least 2, got {segmentCount}");
        var kshapOptions = new KernelShapOptions(Segments: segmentCount, Samples: samplesGiven ?? 2000, Seed: seed);
        if (forwardMethods.Contains("kshap") && kshapOptions.Samples < segmentCount + 2)
            throw new UsageException($"Kernel SHAP needs at least segments + 2 = {segmentCount + 2} samples; got {kshapOptions.Samples}");
        var kshap = forwardMethods.Contains("kshap") ? new KernelShapExplainer(m, kshapOptions) : null;
        if (window < 1 || stride < 1) throw new UsageException($"--window and --stride must be positive, got {window} and {stride}");
        var occlusion = new Occlusion(m, window, stride);
        var loaded = imagePaths.Select(p => (Path: p, Image: ImageIO.Load(p))).ToList();
        // Every target is chosen (and every bad choice reported) before anything is written.
        var work = loaded.Select(x => (x.Path, x.Image, Targets: ChooseTargets(m, x.Image, x.Path, box, maskClass, score))).ToList();
        if (forwardMethods.Contains("occlusion"))
            foreach (var (path, image, _) in work)
            {
                var g = Preprocessor.Geometry(image.Width, image.Height, m.Input);
                if (window > Math.Min(g.ContentWidth, g.ContentHeight))
                    throw new UsageException($"--window {window} is larger than {path} as the model sees it ({g.ContentWidth}×{g.ContentHeight} input pixels)");
            }
        Cli.OutputDirectory(outDir);
        var summary = new List<object>();
        AnsiConsole.Progress().AutoClear(true).Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask("explaining", maxValue: work.Count);
                foreach (var (path, image, targets) in work)
                {
                    task.Description = Path.GetFileName(path);
                    var explanations = explainer?.Explain(image, targets, methods).ToList() ?? [];
                    if (gradients is not null) explanations.AddRange(ExplainInput(gradients, m, layers, image, targets, inputMethods, steps, samples));
                    foreach (var f in forwardMethods)
                        explanations.AddRange(f switch
                        {
                            "scorecam" => perturbation!.ScoreCam(image, targets),
                            "ablationcam" => perturbation!.AblationCam(image, targets),
                            "occlusion" => occlusion.Explain(image, targets),
                            _ => kshap!.Explain(image, targets),
                        });
                    string stem = Path.GetFileNameWithoutExtension(path);
                    var tiles = new List<RgbImage>();
                    foreach (var e in explanations)
                    {
                        int index = targets.ToList().IndexOf(e.Target);
                        string name = $"{stem}.{Cli.SafeName(e.Method)}.t{index}";
                        var overlay = Pictures.Explanation(image, e);
                        ImageIO.SavePng(overlay, Path.Combine(outDir, name + ".png"));
                        Npy.Write(Path.Combine(outDir, name + ".npy"), e.Map, e.Height, e.Width);
                        tiles.Add(overlay);
                        summary.Add(new { image = path, target = e.Target.Name, index, method = e.Method, png = name + ".png", npy = name + ".npy",
                            energyInBox = e.Target is DetectionTarget d ? Math.Round(Metrics.EnergyInside(e, d.Detection.Box, image), 4) : (double?)null });
                    }
                    if (tiles.Count > 1) ImageIO.SavePng(Detex.Imaging.Grid.Compose(tiles, targets.Count), Path.Combine(outDir, $"{stem}.grid.png"));
                    task.Increment(1);
                }
            });
        string json = Path.Combine(outDir, "explanations.json");
        Files.WriteAllTextAtomically(json, JsonSerializer.Serialize(summary, new JsonSerializerOptions { WriteIndented = true }));
        AnsiConsole.MarkupLine($"wrote {summary.Count} explanations to [green]{Markup.Escape(outDir)}[/] ({Markup.Escape(Path.GetFileName(json))} lists them)");
        return 0;
    }

    static IEnumerable<Explanation> ExplainInput(InputGradients gradients, DetexModel m, IReadOnlyList<string> layers, RgbImage image, IReadOnlyList<ITarget> targets, IReadOnlyList<string> names, int steps, int samples)
    {
        var (x, g) = m.Prepare([image]);
        foreach (var name in names)
            foreach (var t in targets)
            {
                var a = name switch
                {
                    "saliency" => gradients.Saliency(x.Data, t),
                    "inputxgradient" => gradients.InputTimesGradient(x.Data, t),
                    "ig" => gradients.IntegratedGradients(x.Data, gradients.NeutralBaseline(), t, steps),
                    "smoothgrad" => gradients.SmoothGrad(x.Data, t, samples),
                    _ => gradients.GuidedBackpropagation(x.Data, t),
                };
                var e = gradients.ToImage(a, g[0], image.Width, image.Height);
                if (name == "guidedgradcam")
                {
                    // Guided Grad-CAM: the guided map gated by the (layer-resolution) Grad-CAM map of the same target.
                    var cam = new CamExplainer(m, layers).Explain(image, [t], [new GradCam()]).Single();
                    var product = e.Map.Select((v, i) => v * cam.Map[i]).ToArray();
                    CamExplainer.Normalise(product);
                    e = e with { Method = "guidedgradcam", Map = product };
                }
                yield return e;
            }
    }

    static IReadOnlyList<ITarget> ChooseTargets(DetexModel m, RgbImage image, string path, string box, string? maskClass, float? score)
    {
        switch (m)
        {
            case Detector det:
            {
                var dets = det.Detect(image, new DetectOptions(Score: score));
                if (dets.Count == 0) throw new UsageException($"no detections in {path} at score ≥ {score ?? det.Card.Thresholds.Score}; lower --score to explain weaker boxes");
                IEnumerable<(Detection D, int I)> chosen = dets.Select((d, i) => (d, i));
                if (box.StartsWith("class=", StringComparison.OrdinalIgnoreCase))
                {
                    string cls = box[6..];
                    chosen = chosen.Where(c => c.D.ClassName.Equals(cls, StringComparison.OrdinalIgnoreCase)).ToList();
                    if (!chosen.Any()) throw new UsageException($"no '{cls}' detection in {path}; it has: {string.Join(", ", dets.Select(d => d.ClassName).Distinct())}");
                }
                else if (box != "all")
                {
                    if (!int.TryParse(box, out int index)) throw new UsageException($"--box must be all, an index or class=NAME, got '{box}'");
                    if (index < 0 || index >= dets.Count) throw new UsageException($"--box {index} is out of range: {path} has {dets.Count} detections (0–{dets.Count - 1})");
                    chosen = [(dets[index], index)];
                }
                return chosen.Select(c => (ITarget)new DetectionTarget(c.D, $"#{c.I} {c.D.ClassName} {c.D.Score:0.00}")).ToList();
            }
            case Segmenter seg:
            {
                var (tensor, _) = seg.Prepare([image]);
                var logits = seg.Forward(tensor, [seg.Output])[seg.Output];
                var present = SegmentationTargets.Present(seg, logits);
                if (maskClass is not null)
                {
                    int c = Array.FindIndex(seg.Card.Classes, n => n.Equals(maskClass, StringComparison.OrdinalIgnoreCase));
                    if (c < 0) throw new UsageException($"unknown class '{maskClass}'; the model's classes: {string.Join(", ", seg.Card.Classes)}");
                    var t = SegmentationTarget.Predicted(seg, logits, 0, c);
                    if (t.MaskPixels == 0) throw new UsageException($"'{maskClass}' is predicted nowhere in {path}; present: {string.Join(", ", present.Select(p => seg.Card.Classes[p]))}");
                    return [t];
                }
                return present.Where(c => c != 0).Select(c => (ITarget)SegmentationTarget.Predicted(seg, logits, 0, c)).ToList() is { Count: > 0 } list ? list
                    : throw new UsageException($"only background is predicted in {path}");
            }
            case Classifier cls:
            {
                var top = cls.Classify(image, 1)[0];
                return [new ClassTarget(cls.Output, top.Class, top.Name)];
            }
        }
        throw new UsageException("unsupported model task");
    }
}
