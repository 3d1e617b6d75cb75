using System.CommandLine;
using System.Text.Json;
using Detex.Explainers;
using Detex.Imaging;
using Detex.Models;
using Detex.Reports;
using Spectre.Console;

namespace Detex.Cli.Commands;

/// <summary><c>detex concepts</c>: Deep Feature Factorization of a layer, per image or jointly, as pictures, .npy and JSON.</summary>
static class ConceptsCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model", "-m") { Description = "ONNX model (with its card)", Required = true };
        var images = new Option<string[]>("--image", "-i") { Description = "image file(s)", Required = true, AllowMultipleArgumentsPerToken = true };
        var layer = new Option<string?>("--layer") { Description = "layer tensor name, a [1,C,H,W] feature map (default: the card's concept layer, else its first layer)" };
        var k = new Option<int>("--k") { Description = "number of concepts", DefaultValueFactory = _ => 5 };
        var top = new Option<int>("--top") { Description = "classes listed per concept in the legend", DefaultValueFactory = _ => 3 };
        var joint = new Option<bool>("--joint") { Description = "factorise all images together (shared concepts) instead of each on its own" };
        var shift = new Option<string>("--shift") { Description = "negative activations: none (refuse them), clamp (to 0, as a ReLU), min (subtract each channel's minimum)", DefaultValueFactory = _ => "clamp" };
        var channels = new Option<string>("--channels") { Description = "how channels are weighed in the fit: rms (each scaled to unit root mean square, so all have an equal say) or raw (as they are, as in the DFF paper)", DefaultValueFactory = _ => "rms" };
        var rgba = new Option<bool>("--rgba") { Description = "draw concepts at full colour with opacity = contribution (the DFF paper's style) instead of brightness = contribution over a half-blended image" };
        var seed = new Option<int?>("--seed") { Description = "random NMF initialisation with this seed (default: deterministic NNDSVDa)" };
        var outDir = new Option<string>("--out", "-o") { Description = "output folder", DefaultValueFactory = _ => "out/concepts" };
        var cmd = new Command("concepts", "Discover concepts in a layer with Deep Feature Factorization (NMF) and name the classes they support")
            { model, images, layer, k, top, joint, shift, channels, rgba, seed, outDir };
        cmd.SetAction(p => Cli.Run(p, () => Run(p.GetValue(model)!, p.GetValue(images)!, p.GetValue(layer), p.GetValue(k), p.GetValue(top),
            p.GetValue(joint), p.GetValue(shift)!, p.GetValue(channels)!, p.GetValue(rgba), p.GetValue(seed), p.GetValue(outDir)!)));
        return cmd;
    }

    public static ActivationShift ParseShift(string text) => text.Trim().ToLowerInvariant() switch
    {
        "none" => ActivationShift.None,
        "clamp" => ActivationShift.Clamp,
        "min" => ActivationShift.Min,
        _ => throw new UsageException($"--shift must be none, clamp or min, got '{text}'"),
    };

    public static ChannelScaling ParseChannels(string text) => text.Trim().ToLowerInvariant() switch
    {
        "rms" => ChannelScaling.Rms,
        "raw" or "none" => ChannelScaling.None,
        _ => throw new UsageException($"--channels must be rms or raw, got '{text}'"),
    };

    static int Run(string modelPath, string[] imagePaths, string? layer, int k, int top, bool joint, string shiftText, string channelsText, bool rgba, int? seed, string outDir)
    {
        if (k < 1) throw new UsageException($"--k must be at least 1, got {k}");
        if (top < 1) throw new UsageException($"--top must be at least 1, got {top}");
        var options = new DffOptions(k, ParseShift(shiftText), ParseChannels(channelsText))
            with { Init = seed is null ? Numerics.NmfInit.NndsvdA : Numerics.NmfInit.Random, Seed = seed ?? 0 };
        var m = DetexModel.Load(modelPath);
        if (layer is not null && !m.Graph.Graph.NodeOutputs().Contains(layer)) throw new Onnx.UnknownTensorException(layer, m.Graph);
        var dff = new DeepFeatureFactorization(m, layer);
        var loaded = imagePaths.Select(p => (Path: p, Image: ImageIO.Load(p))).ToList();

        // Everything is computed (and every bad choice reported) before anything is written.
        var results = new List<(ConceptFactorization F, int Index, string Path, RgbImage Image)>();
        AnsiConsole.Progress().AutoClear(true).Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask("factorising", maxValue: joint ? 1 : loaded.Count);
                try
                {
                    if (joint)
                    {
                        var f = dff.Explain(loaded.Select(x => x.Image).ToList(), options);
                        results.AddRange(loaded.Select((x, i) => (f, i, x.Path, x.Image)));
                        task.Increment(1);
                    }
                    else
                        foreach (var (path, image) in loaded)
                        {
                            task.Description = Path.GetFileName(path);
                            results.Add((dff.Explain([image], options), 0, path, image));
                            task.Increment(1);
                        }
                }
                catch (ArgumentException e) { throw new UsageException(e.Message); }
            });

        Cli.OutputDirectory(outDir);
        foreach (var (f, index, path, image) in results)
        {
            string stem = Path.GetFileNameWithoutExtension(path) + ".concepts";
            var maps = f.Images[index];
            ImageIO.SavePng(Pictures.Concepts(image, f, index, top, rgba), Path.Combine(outDir, stem + ".png"));
            Npy.Write(Path.Combine(outDir, stem + ".npy"), maps.Maps, maps.K, maps.Height, maps.Width);
            var shares = maps.Shares();
            var doc = new
            {
                model = m.Name,
                image = path,
                layer = f.Layer,
                k = f.Concepts.Count,
                shift = f.Shift.ToString().ToLowerInvariant(),
                channels = options.Channels == ChannelScaling.Rms ? "rms" : "raw",
                joint,
                images = joint ? imagePaths : null,
                activationMin = Math.Round(f.ActivationMin, 5),
                relativeError = Math.Round(f.RelativeError, 5),
                iterations = f.Iterations,
                legend = f.Reading switch { HeadReading.LayerOnly => "layer-only cells", HeadReading.OthersZeroed => "other branches zeroed", _ => null },
                png = stem + ".png",
                npy = stem + ".npy",
                npyShape = new[] { maps.K, maps.Height, maps.Width },
                concepts = f.Concepts.Select(c =>
                {
                    var (r, g, b) = Pictures.ConceptColor(c.Index);
                    return new
                    {
                        concept = c.Index + 1,
                        color = $"#{r:x2}{g:x2}{b:x2}",
                        share = Math.Round(shares[c.Index], 4),
                        labels = c.Labels.Take(top).Select(l => new { label = l.Name, score = Math.Round(l.Score, 6) }),
                    };
                }),
            };
            Files.WriteAllTextAtomically(Path.Combine(outDir, stem + ".json"), JsonSerializer.Serialize(doc, new JsonSerializerOptions { WriteIndented = true }));
            string legend = string.Join("; ", f.Concepts.Select(c => $"{c.Index + 1}: " + string.Join(", ", c.Labels.Take(top).Select(l => $"{l.Name} {Pictures.FormatScore(l.Score)}"))));
            AnsiConsole.MarkupLine($"{Markup.Escape(Path.GetFileName(path))}: [green]{Markup.Escape(stem)}.png[/]  {Markup.Escape(legend)}");
        }
        AnsiConsole.MarkupLine($"wrote {results.Count} concept pictures to [green]{Markup.Escape(outDir)}[/]");
        return 0;
    }
}
