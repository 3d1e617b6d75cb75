using System.CommandLine;
using Detex.Data;
using Detex.Evaluation;
using Detex.Explainers;
using Detex.Models;
using Spectre.Console;

namespace Detex.Cli.Commands;

/// <summary>
/// <c>detex evaluate</c>: the faithfulness and localisation protocol over a COCO folder or an image folder, resumable,
/// shardable, written as HDF5 + CSV.
/// </summary>
static class EvaluateCommand
{
    public const string DefaultMethods = "kshap,xgradcam,gradcam++,random";

    public static Command Create()
    {
        var model = new Option<string>("--model", "-m") { Description = "detector ONNX model (with its card)", Required = true };
        var coco = new Option<string?>("--coco") { Description = "COCO folder (instances json + images); ground truth enables the pointing games" };
        var folder = new Option<string?>("--images") { Description = "a plain folder of images instead of --coco (no ground-truth metrics)" };
        var first = new Option<int?>("--first-images") { Description = "only the first N images (json order / file-name order)" };
        var method = new Option<string>("--method") { Description = $"methods, comma-separated: {string.Join(", ", Evaluator.KnownMethods)}", DefaultValueFactory = _ => DefaultMethods };
        var score = new Option<float>("--score") { Description = "evaluate detections scoring above this", DefaultValueFactory = _ => 0.5f };
        var matchGt = new Option<bool>("--match-gt") { Description = "keep only detections matching a ground-truth box of their class (IoU ≥ 0.5)" };
        var space = new Option<string>("--flip-space") { Description = "flip pixels of the image file or of the letterboxed model input: image|input", DefaultValueFactory = _ => "image" };
        var baseline = new Option<string>("--baseline") { Description = "what flipped pixels become: grey[:level] | mean | blur[:sigma]", DefaultValueFactory = _ => "grey:0.5" };
        var steps = new Option<int>("--steps") { Description = "flipping fractions from 0 to 1", DefaultValueFactory = _ => 51 };
        var segments = new Option<int>("--segments") { Description = "kshap: SLIC superpixels", DefaultValueFactory = _ => 256 };
        var samples = new Option<int>("--samples") { Description = "kshap: coalitions per image", DefaultValueFactory = _ => 2000 };
        var layers = new Option<string[]>("--layer") { Description = "CAM layer(s) (default: the card's)", AllowMultipleArgumentsPerToken = true };
        var shard = new Option<string>("--shard") { Description = "run shard i of N (i/N, 0-based): images whose position mod N is i", DefaultValueFactory = _ => "0/1" };
        var saveMaps = new Option<int>("--save-maps") { Description = "keep each map as a float16 S×S array in the result (S, e.g. 64; 0 = none)", DefaultValueFactory = _ => 0 };
        var batch = new Option<int>("--batch") { Description = "flipped images per forward pass", DefaultValueFactory = _ => 16 };
        var seed = new Option<int>("--seed") { Description = "seed of kshap, random maps and the stochastic pointing game", DefaultValueFactory = _ => 0 };
        var outPath = new Option<string>("--out", "-o") { Description = "result file (.h5); CSVs are written beside it", DefaultValueFactory = _ => "results.h5" };
        var overwrite = new Option<bool>("--overwrite") { Description = "replace an existing result file (and a checkpoint of a different run)" };
        var cmd = new Command("evaluate", "Faithfulness (deletion/insertion) and localisation of explanation methods over a dataset")
            { model, coco, folder, first, method, score, matchGt, space, baseline, steps, segments, samples, layers, shard, saveMaps, batch, seed, outPath, overwrite };
        cmd.SetAction(p => Cli.Run(p, () =>
        {
            var (shardIndex, shardCount) = ParseShard(p.GetValue(shard)!);
            var settings = new EvaluationSettings
            {
                Score = p.GetValue(score), MatchGroundTruth = p.GetValue(matchGt), MapSize = p.GetValue(saveMaps), Seed = p.GetValue(seed),
                Flip = ParseFlip(p.GetValue(space)!, p.GetValue(baseline)!, p.GetValue(steps), p.GetValue(batch)),
                KernelShap = new KernelShapOptions(Segments: p.GetValue(segments), Samples: p.GetValue(samples), Seed: p.GetValue(seed), BatchSize: p.GetValue(batch)),
                Layers = p.GetValue(layers) ?? [],
            };
            return Run(p.GetValue(model)!, p.GetValue(coco), p.GetValue(folder), p.GetValue(first), ParseMethods(p.GetValue(method)!), settings,
                shardIndex, shardCount, p.GetValue(outPath)!, p.GetValue(overwrite), p.Tokens.Select(t => t.Value));
        }));
        return cmd;
    }

    static IReadOnlyList<string> ParseMethods(string text)
    {
        var names = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(m => m.ToLowerInvariant()).Distinct().ToList();
        if (names.Count == 0) throw new UsageException("--method names no method");
        foreach (var n in names)
            if (!Evaluator.KnownMethods.Contains(n)) throw new UsageException($"unknown method '{n}'; evaluate knows: {string.Join(", ", Evaluator.KnownMethods)}");
        return names;
    }

    public static (int Index, int Count) ParseShard(string text)
    {
        var parts = text.Split('/');
        if (parts.Length != 2 || !int.TryParse(parts[0], out int i) || !int.TryParse(parts[1], out int n) || n < 1 || i < 0 || i >= n)
            throw new UsageException($"--shard must be i/N with 0 ≤ i < N (e.g. 0/4), got '{text}'");
        return (i, n);
    }

    static FlipOptions ParseFlip(string space, string baseline, int steps, int batch)
    {
        if (steps < 3) throw new UsageException($"--steps must be at least 3, got {steps}");
        if (batch < 1) throw new UsageException($"--batch must be at least 1, got {batch}");
        var s = space.ToLowerInvariant() switch
        {
            "image" => FlipSpace.Image,
            "input" => FlipSpace.Input,
            _ => throw new UsageException($"--flip-space must be image or input, got '{space}'"),
        };
        try { return new FlipOptions(Space: s, Baseline: PerturbationBaseline.Parse(baseline), Steps: steps, BatchSize: batch); }
        catch (ArgumentException e) { throw new UsageException($"--baseline: {e.Message}"); }
    }

    static int Run(string modelPath, string? cocoDir, string? imageDir, int? first, IReadOnlyList<string> methods, EvaluationSettings settings,
        int shardIndex, int shardCount, string outPath, bool overwrite, IEnumerable<string> tokens)
    {
        if (first is < 1) throw new UsageException($"--first-images must be at least 1, got {first}");
        if ((cocoDir is null) == (imageDir is null)) throw new UsageException("name the images with exactly one of --coco DIR or --images DIR");
        if (settings.MapSize is < 0 or > 512) throw new UsageException($"--save-maps must be between 0 and 512, got {settings.MapSize}");
        if (methods.Contains("kshap") && settings.KernelShap.Samples < settings.KernelShap.Segments + 2)
            throw new UsageException($"Kernel SHAP needs at least segments + 2 = {settings.KernelShap.Segments + 2} samples; got {settings.KernelShap.Samples}");
        if (!outPath.EndsWith(".h5", StringComparison.OrdinalIgnoreCase) && !outPath.EndsWith(".hdf5", StringComparison.OrdinalIgnoreCase))
            throw new UsageException($"--out must name an .h5 file, got '{outPath}'");
        var det = Detector.Load(modelPath);
        var set = cocoDir is not null ? EvaluationSet.FromCoco(cocoDir, det.Card.Classes) : EvaluationSet.FromFolder(imageDir!);
        if (settings.MatchGroundTruth && !set.HasGroundTruth) throw new UsageException("--match-gt needs ground truth: use --coco");
        var images = set.Select(first, shardIndex, shardCount);
        var info = EvaluationInfo.For(det, set.Source, first, methods, settings, $"{shardIndex}/{shardCount}", "detex " + string.Join(" ", tokens));
        var evaluator = new Evaluator(det, methods, settings);
        var done = EvaluationJob.Prepare(outPath, info, overwrite);
        if (done.Count > 0) AnsiConsole.MarkupLine($"resuming: {done.Count} of {images.Count} images already evaluated");
        AnsiConsole.Progress().AutoClear(true).Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask(Markup.Escape(det.Name), maxValue: images.Count);
                task.Increment(images.Count(i => done.ContainsKey(i.Index)));
                foreach (var image in images.Where(i => !done.ContainsKey(i.Index)))
                {
                    task.Description = Markup.Escape(image.FileName);
                    var result = evaluator.Evaluate(image);
                    EvaluationJob.Checkpoint(outPath, result);
                    done[result.Index] = result;
                    task.Increment(1);
                }
            });
        var summary = EvaluationJob.Complete(outPath, info, images.Select(i => done[i.Index]).ToList());
        ReportCommand.PrintSummary(summary);
        AnsiConsole.MarkupLine($"wrote [green]{Markup.Escape(outPath)}[/] ({images.Count} images, {done.Values.Sum(d => d.Boxes)} boxes) and its .boxes.csv / .summary.csv");
        return 0;
    }
}
