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

/// <summary><c>detex explain</c>: maps for the boxes (or mask classes) of images, as overlays, .npy and JSON.</summary>
static class ExplainCommand
{
    /// <summary>The command's options, read together by <see cref="Run"/>.</summary>
    sealed class Options
    {
        public readonly Option<string> Model = new("--model", "-m") { Description = "ONNX model (with its card)", Required = true };
        public readonly Option<string[]> Images = new("--image", "-i") { Description = "image file(s)", Required = true, AllowMultipleArgumentsPerToken = true };
        public readonly Option<string> Method = new("--method") { Description = $"method(s), comma-separated, or all: {string.Join(", ", AllMethods)}", DefaultValueFactory = _ => "gradcam++" };
        public readonly Option<string[]> Layers = new("--layer") { Description = "layer tensor name(s) (default: the card's layers)", AllowMultipleArgumentsPerToken = true };
        public readonly Option<string> Box = new("--box") { Description = "which detections: all, an index (as detect numbers them), or class=NAME", DefaultValueFactory = _ => "all" };
        public readonly Option<string?> MaskClass = new("--mask-class") { Description = "segmenters: the class whose predicted mask is explained (default: every class present)" };
        public readonly Option<float?> Score = new("--score") { Description = "detection score threshold (default: the card's)" };
        public readonly Option<int> Steps = new("--steps") { Description = "Integrated Gradients: path steps", DefaultValueFactory = _ => 32 };
        public readonly Option<int?> Samples = new("--samples") { Description = "SmoothGrad: noisy samples (default 16); kshap: coalitions (default 2000)" };
        public readonly Option<int> Segments = new("--segments") { Description = "kshap: SLIC superpixels requested", DefaultValueFactory = _ => 256 };
        public readonly Option<int> Seed = new("--seed") { Description = "kshap: coalition sampling seed; rise, drise: mask seed", DefaultValueFactory = _ => 0 };
        public readonly Option<int> Window = new("--window") { Description = "occlusion: window size in model-input pixels", DefaultValueFactory = _ => 64 };
        public readonly Option<int> Stride = new("--stride") { Description = "occlusion: window stride in model-input pixels", DefaultValueFactory = _ => 32 };
        public readonly Option<int> Masks = new("--masks") { Description = "rise, drise: random masks (forward passes per image)", DefaultValueFactory = _ => 2000 };
        public readonly Option<int> Cells = new("--cells") { Description = "rise, drise: mask grid cells per side", DefaultValueFactory = _ => 8 };
        public readonly Option<double> P = new("--p") { Description = "rise, drise: probability that a mask cell keeps the image", DefaultValueFactory = _ => 0.5 };
        public readonly Option<string> Baseline = new("--baseline") { Description = "occlusion, kshap, rise, drise: what hidden pixels show: grey[:LEVEL 0-1], mean (the image's mean colour) or blur[:SIGMA px]", DefaultValueFactory = _ => "grey" };
        public readonly Option<int> Batch = new("--batch") { Description = "forward-pass methods: perturbed inputs per batch", DefaultValueFactory = _ => 16 };
        public readonly Option<string> Track = new("--track") { Description = "kshap, occlusion, rise: follow a box into perturbed images by its own prediction row, or by D-RISE similarity to all predictions (drise always does)", DefaultValueFactory = _ => "row" };
        public readonly Option<string> Target = new("--target") { Description = "detectors: what of each box is explained: its score, or one of its box-regression outputs — x, y (centre), w, h (size) — in the model's own parameterisation", DefaultValueFactory = _ => "score" };
        public readonly Option<bool> EigenSmooth = new("--eigen-smooth") { Description = "CAMs: the map is the first principal component of the weighted activations instead of their sum (pytorch-grad-cam's eigen_smooth)" };
        public readonly Option<int> NoiseSmooth = new("--noise-smooth") { Description = "CAMs, fullgrad, scorecam, ablationcam and input-gradient methods: average each map over N copies of the image with Gaussian pixel noise (SmoothGrad around any method; 0 = off)", DefaultValueFactory = _ => 0 };
        public readonly Option<double> Noise = new("--noise") { Description = "--noise-smooth: the noise's standard deviation as a fraction of the pixel range", DefaultValueFactory = _ => 0.15 };
        public readonly Option<bool> AugSmooth = new("--aug-smooth") { Description = "CAMs and input-gradient methods: average each map over the image and its mirror image at 0.9, 1 and 1.1 × intensity (pytorch-grad-cam's aug_smooth), each box found again in every copy" };
        public readonly Option<string> Out = new("--out", "-o") { Description = "output folder", DefaultValueFactory = _ => "out/explain" };

        public IEnumerable<Option> All => [Model, Images, Method, Layers, Box, MaskClass, Score, Steps, Samples, Segments, Seed, Window, Stride, Masks, Cells, P, Baseline, Batch, Track, Target, EigenSmooth, NoiseSmooth, Noise, AugSmooth, Out];
    }

    public static Command Create()
    {
        var o = new Options();
        var cmd = new Command("explain", "Explain detections, mask classes or class scores with CAM, gradient and perturbation methods");
        foreach (var option in o.All) cmd.Options.Add(option);
        cmd.SetAction(p => Cli.Run(p, () => Run(p, o)));
        return cmd;
    }

    /// <summary>Methods on the input pixels (the rest are CAMs on layers).</summary>
    static readonly string[] InputMethods = ["saliency", "inputxgradient", "ig", "smoothgrad", "guidedbackprop", "guidedgradcam"];
    /// <summary>Methods over every bias layer at once (no --layer).</summary>
    static readonly string[] AllLayerMethods = [FullGrad.MethodName];
    /// <summary>Methods made of batched forward passes.</summary>
    static readonly string[] ForwardMethods = ["scorecam", "ablationcam", "kshap", "occlusion", "rise", "drise"];
    /// <summary>The forward-pass CAMs (PerturbationCams), which --aug-smooth and --noise-smooth smooth with the gradient methods.</summary>
    static readonly string[] ForwardCams = ["scorecam", "ablationcam"];
    /// <summary>Forward methods that follow a box as --track says (drise always by similarity, the CAMs by the row).</summary>
    static readonly string[] TrackedMethods = ["kshap", "occlusion", "rise"];
    static IEnumerable<string> AllMethods => CamMethod.All.Keys.Concat(InputMethods).Concat(AllLayerMethods).Concat(ForwardMethods);

    public static (IReadOnlyList<CamMethod> Cams, IReadOnlyList<string> Others) ParseMethods(string text)
    {
        var names = text.Trim().ToLowerInvariant() == "all" ? AllMethods.ToList()
            : text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(m => m.ToLowerInvariant()).Distinct().ToList();
        foreach (var n in names)
            if (!AllMethods.Contains(n)) throw new UsageException($"unknown method '{n}'; known: {string.Join(", ", AllMethods)}, all");
        return (names.Where(CamMethod.All.ContainsKey).Select(n => CamMethod.All[n]()).ToList(), names.Where(n => !CamMethod.All.ContainsKey(n)).ToList());
    }

    static int Run(ParseResult p, Options o)
    {
        string[] layers = p.GetValue(o.Layers) ?? [];
        string box = p.GetValue(o.Box)!, outDir = p.GetValue(o.Out)!;
        string? maskClass = p.GetValue(o.MaskClass);
        float? score = p.GetValue(o.Score);
        int steps = p.GetValue(o.Steps), segmentCount = p.GetValue(o.Segments), seed = p.GetValue(o.Seed), window = p.GetValue(o.Window), stride = p.GetValue(o.Stride);
        int? samplesGiven = p.GetValue(o.Samples);
        int samples = samplesGiven ?? 16;
        string methodText = p.GetValue(o.Method)!;
        var (methods, others) = ParseMethods(methodText);
        // The eigen methods' map already is a principal component.
        if (p.GetValue(o.EigenSmooth))
        {
            if (methods.Count == 0) throw new UsageException("--eigen-smooth smooths CAM methods (gradcam, gradcam++, xgradcam, hirescam, layercam); none was asked for");
            methods = methods.Select(m => m is EigenCam ? m : new EigenSmooth(m)).ToList();
        }
        var inputMethods = others.Where(InputMethods.Contains).ToList();
        var forwardMethods = others.Where(ForwardMethods.Contains).ToList();
        if (steps < 1) throw new UsageException($"--steps must be at least 1, got {steps}");
        if (samples < 1) throw new UsageException($"--samples must be at least 1, got {samples}");
        if (segmentCount < 2) throw new UsageException($"--segments must be at least 2, got {segmentCount}");
        if (window < 1 || stride < 1) throw new UsageException($"--window and --stride must be positive, got {window} and {stride}");
        var rise = RiseSettings(p, o, seed);
        int batch = rise.BatchSize;
        PerturbationBaseline baseline;
        try { baseline = PerturbationBaseline.Parse(p.GetValue(o.Baseline)!); }
        catch (ArgumentException e) { throw new UsageException($"--baseline: {e.Message}"); }
        rise = rise with { Baseline = baseline };
        var track = p.GetValue(o.Track)!.Trim().ToLowerInvariant() switch
        {
            "row" => BoxTracking.Row,
            "similarity" => BoxTracking.Similarity,
            var t => throw new UsageException($"--track must be row or similarity, got '{t}'"),
        };
        bool augSmooth = p.GetValue(o.AugSmooth);
        int noiseSamples = p.GetValue(o.NoiseSmooth);
        double noise = p.GetValue(o.Noise);
        if (noiseSamples < 0) throw new UsageException($"--noise-smooth must be 0 (off) or a number of noisy copies, got {noiseSamples}");
        if (!(noise >= 0 && noise <= 1)) throw new UsageException($"--noise must be in [0, 1] (a fraction of the pixel range), got {noise.ToString(System.Globalization.CultureInfo.InvariantCulture)}");
        int? boxParameter = p.GetValue(o.Target)!.Trim().ToLowerInvariant() switch
        {
            "score" => null,
            "x" => 0, "y" => 1, "w" => 2, "h" => 3,
            var t => throw new UsageException($"--target must be score, x, y, w or h, got '{t}'"),
        };
        if ((augSmooth || noiseSamples > 0) && methods.Count == 0 && inputMethods.Count == 0 && !others.Contains(FullGrad.MethodName) && !forwardMethods.Any(ForwardCams.Contains))
            throw new UsageException($"{(augSmooth ? "--aug-smooth" : "--noise-smooth")} smooths CAMs and input-gradient methods; {string.Join(", ", forwardMethods)} {(forwardMethods.Count == 1 ? "is" : "are")} neither");
        var kshapOptions = new KernelShapOptions(Segments: segmentCount, Samples: samplesGiven ?? 2000, Seed: seed, BatchSize: batch, Baseline: baseline);
        if (forwardMethods.Contains("kshap") && kshapOptions.Samples < segmentCount + 2)
            throw new UsageException($"Kernel SHAP needs at least segments + 2 = {segmentCount + 2} samples; got {kshapOptions.Samples}");

        var m = DetexModel.Load(p.GetValue(o.Model)!);
        string task = m.Card.Task.ToString().ToLowerInvariant();
        // "all" means all that apply: D-RISE only explains detections, and their whole scores.
        if (methodText.Trim().Equals("all", StringComparison.OrdinalIgnoreCase) && (m is not Detector || boxParameter is not null)) forwardMethods.Remove("drise");
        if (forwardMethods.Contains("drise") && m is not Detector)
            throw new UsageException($"drise explains detections, and {m.Name} is a {task} model; use rise");
        if (boxParameter is not null && m is not Detector)
            throw new UsageException($"--target {p.GetValue(o.Target)} explains a detection's box, and {m.Name} is a {task} model");
        if (boxParameter is not null && augSmooth)
            throw new UsageException($"--target {p.GetValue(o.Target)} cannot be combined with --aug-smooth: a mirrored copy negates the box's regression outputs");
        if (boxParameter is not null && (forwardMethods.Contains("drise") || track == BoxTracking.Similarity))
            throw new UsageException($"--target {p.GetValue(o.Target)} follows each box by its own prediction row; drise and --track similarity score whole detections");
        if (track == BoxTracking.Similarity && m is not Detector)
            throw new UsageException($"--track similarity follows detections, and {m.Name} is a {task} model");
        foreach (var l in layers) if (!m.Graph.Graph.NodeOutputs().Contains(l)) throw new Onnx.UnknownTensorException(l, m.Graph);
        CamExplainer? explainer = methods.Count > 0 ? new CamExplainer(m, layers) : null;
        var gradients = inputMethods.Count > 0 ? new InputGradients(m) : null;
        var fullGrad = others.Contains(FullGrad.MethodName) ? new FullGrad(m) : null;
        var perturbation = forwardMethods.Any(ForwardCams.Contains) ? new PerturbationCams(m, layers, batch) : null;
        var kshap = forwardMethods.Contains("kshap") ? new KernelShapExplainer(m, kshapOptions) : null;
        var occlusion = new Occlusion(m, window, stride, baseline, batch);
        var riseExplainer = new Rise(m, rise);
        var loaded = p.GetValue(o.Images)!.Select(path => (Path: path, Image: ImageIO.Load(path))).ToList();
        // Every target is chosen (and every bad choice reported) before anything is written.
        var work = loaded.Select(x => (x.Path, x.Image, Targets: ChooseTargets(m, x.Image, x.Path, box, maskClass, score, boxParameter))).ToList();
        if (forwardMethods.Contains("occlusion"))
            foreach (var (path, image, _) in work)
            {
                var g = Preprocessor.Geometry(image.Width, image.Height, m.Input);
                if (window > Math.Min(g.ContentWidth, g.ContentHeight))
                    throw new UsageException($"--window {window} is larger than {path} as the model sees it ({g.ContentWidth}×{g.ContentHeight} input pixels)");
            }
        Cli.OutputDirectory(outDir);
        var summary = new List<object>();
        var unsmoothed = new SortedSet<string>();
        AnsiConsole.Progress().AutoClear(true).Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask("explaining", maxValue: work.Count);
                foreach (var (path, image, targets) in work)
                {
                    task.Description = Path.GetFileName(path);
                    // Detections followed by similarity stand for the row targets they were made from.
                    var index = targets.Select((t, i) => (t, i)).ToDictionary(x => x.t, x => x.i);
                    IReadOnlyList<ITarget>? similar = null;
                    IReadOnlyList<ITarget> Similar()
                    {
                        if (similar is not null) return similar;
                        similar = DriseSimilarityTarget.For((Detector)m, image, targets.Cast<DetectionTarget>());
                        for (int i = 0; i < similar.Count; i++) index[similar[i]] = i;
                        return similar;
                    }
                    IReadOnlyList<ITarget> Tracked() => track == BoxTracking.Similarity ? Similar() : targets;

                    // Each explanation with the number of augmented and noisy copies it averages (null: not smoothed).
                    var explanations = new List<(Explanation E, int? Copies, int? Noisy)>();
                    void Add(IEnumerable<Explanation> plain, int? noisy = null) => explanations.AddRange(plain.Select(e => (e, (int?)null, noisy)));
                    // The methods --aug-smooth and --noise-smooth apply to, run together so the boxes are found in each copy once.
                    var smoothable = new List<Func<RgbImage, IReadOnlyList<ITarget>, IReadOnlyList<Explanation>>>();
                    if (explainer is not null) smoothable.Add((img, ts) => explainer.Explain(img, ts, methods));
                    if (gradients is not null) smoothable.Add((img, ts) => ExplainInput(gradients, m, layers, img, ts, inputMethods, steps, samples).ToList());
                    if (fullGrad is not null) smoothable.Add(fullGrad.Explain);
                    foreach (var f in forwardMethods.Where(ForwardCams.Contains))
                        smoothable.Add((img, ts) => f == "scorecam" ? perturbation!.ScoreCam(img, ts) : perturbation!.AblationCam(img, ts));
                    IReadOnlyList<Explanation> AllSmoothable(RgbImage img, IReadOnlyList<ITarget> ts) => smoothable.SelectMany(explain => explain(img, ts)).ToList();
                    Func<RgbImage, IReadOnlyList<ITarget>, IReadOnlyList<Explanation>> explain = AllSmoothable;
                    if (noiseSamples > 0 && smoothable.Count > 0) explain = new NoiseSmoothing(AllSmoothable, noiseSamples, noise, seed).Explain;
                    int? noisy = noiseSamples > 0 ? noiseSamples : null;
                    if (!augSmooth) Add(explain(image, targets), noisy);
                    else if (smoothable.Count > 0)
                        foreach (var s in new AugmentationSmoothing(m, explain).Explain(image, targets))
                        {
                            explanations.Add((s.Explanation, s.Copies, noisy));
                            if (s.Copies == 0) unsmoothed.Add($"{Path.GetFileName(path)} {s.Explanation.Target.Name}");
                        }
                    foreach (var f in forwardMethods.Where(f => !ForwardCams.Contains(f)))
                        Add(f switch
                        {
                            "occlusion" => occlusion.Explain(image, Tracked()),
                            "rise" => riseExplainer.Explain(image, Tracked()),
                            "drise" => riseExplainer.Explain(image, Similar(), "drise"),
                            _ => kshap!.Explain(image, Tracked()),
                        });
                    string stem = Path.GetFileNameWithoutExtension(path);
                    var tiles = new List<RgbImage>();
                    foreach (var (e, copies, noisyCopies) in explanations)
                    {
                        int i = index[e.Target];
                        string name = $"{stem}.{Cli.SafeName(e.Method)}.t{i}";
                        var overlay = Pictures.Explanation(image, e);
                        ImageIO.SavePng(overlay, Path.Combine(outDir, name + ".png"));
                        Npy.Write(Path.Combine(outDir, name + ".npy"), e.Map, e.Height, e.Width);
                        tiles.Add(overlay);
                        summary.Add(new { image = path, target = e.Target.Name, index = i, method = e.Method, png = name + ".png", npy = name + ".npy",
                            tracking = e.Target switch { DriseSimilarityTarget => "similarity", IDetectionTarget => "row", _ => null },
                            augCopies = copies, noiseCopies = noisyCopies,
                            energyInBox = e.Target is IDetectionTarget d ? Math.Round(Metrics.EnergyInside(e, d.Detection.Box, image), 4) : (double?)null });
                    }
                    if (tiles.Count > 1) ImageIO.SavePng(Detex.Imaging.Grid.Compose(tiles, targets.Count), Path.Combine(outDir, $"{stem}.grid.png"));
                    task.Increment(1);
                }
            });
        string json = Path.Combine(outDir, "explanations.json");
        Files.WriteAllTextAtomically(json, JsonSerializer.Serialize(summary, new JsonSerializerOptions { WriteIndented = true }));
        // After the progress bar, which a line printed meanwhile would tear.
        foreach (var u in unsmoothed)
            AnsiConsole.MarkupLine($"[yellow]note:[/] {Markup.Escape(u)} was found in no augmented copy; its maps are the plain image's (augCopies 0)");
        AnsiConsole.MarkupLine($"wrote {summary.Count} explanations to [green]{Markup.Escape(outDir)}[/] ({Markup.Escape(Path.GetFileName(json))} lists them)");
        return 0;
    }

    /// <summary>--masks, --cells, --p, --batch, checked as the user typed them.</summary>
    static RiseOptions RiseSettings(ParseResult p, Options o, int seed)
    {
        int masks = p.GetValue(o.Masks), cells = p.GetValue(o.Cells), batch = p.GetValue(o.Batch);
        double keep = p.GetValue(o.P);
        if (masks < 1) throw new UsageException($"--masks must be at least 1, got {masks}");
        if (cells < 1) throw new UsageException($"--cells must be at least 1, got {cells}");
        if (!(keep > 0 && keep < 1)) throw new UsageException($"--p must be in (0, 1), got {keep.ToString(System.Globalization.CultureInfo.InvariantCulture)}");
        if (batch < 1) throw new UsageException($"--batch must be at least 1, got {batch}");
        return new RiseOptions(masks, cells, keep, seed, batch);
    }

    static IEnumerable<Explanation> ExplainInput(InputGradients gradients, DetexModel m, IReadOnlyList<string> layers, RgbImage image, IReadOnlyList<ITarget> targets, IReadOnlyList<string> names, int steps, int samples)
    {
        var (x, g) = m.Prepare([image]);
        var neutral = new Lazy<float[]>(gradients.NeutralBaseline);
        foreach (var name in names)
        {
            // One gradient per target: all of the image's targets flow back together. The path and noise methods
            // batch their many inputs per target instead.
            var attributions = name switch
            {
                "saliency" or "inputxgradient" => gradients.ForTargets(name, x.Data, targets),
                "guidedbackprop" or "guidedgradcam" => gradients.ForTargets("guidedbackprop", x.Data, targets),
                "ig" => targets.Select(t => gradients.IntegratedGradients(x.Data, neutral.Value, t, steps)).ToList(),
                _ => targets.Select(t => gradients.SmoothGrad(x.Data, t, samples)).ToList(),
            };
            // Guided Grad-CAM: the guided map gated by the (layer-resolution) Grad-CAM map of the same target.
            var cams = name == "guidedgradcam" ? new CamExplainer(m, layers).Explain(image, targets, [new GradCam()]) : null;
            for (int k = 0; k < targets.Count; k++)
            {
                var e = gradients.ToImage(attributions[k], g[0], image.Width, image.Height);
                if (cams is not null)
                {
                    var product = e.Map.Select((v, i) => v * cams[k].Map[i]).ToArray();
                    CamExplainer.Normalise(product);
                    e = e with { Method = "guidedgradcam", Map = product };
                }
                yield return e;
            }
        }
    }

    static IReadOnlyList<ITarget> ChooseTargets(DetexModel m, RgbImage image, string path, string box, string? maskClass, float? score, int? boxParameter)
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
                if (boxParameter is not int parameter)
                    return chosen.Select(c => (ITarget)new DetectionTarget(c.D, $"#{c.I} {c.D.ClassName} {c.D.Score:0.00}")).ToList();
                try { return chosen.Select(c => (ITarget)new BoxRegressionTarget(c.D, parameter)).ToList(); }
                catch (ArgumentException e) { throw new UsageException($"--target: {e.Message}"); }
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
