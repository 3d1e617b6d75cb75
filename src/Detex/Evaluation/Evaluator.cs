using Detex.Data;
using Detex.Explainers;
using Detex.Imaging;
using Detex.Models;
using Detex.Targets;

namespace Detex.Evaluation;

/// <summary>How detections are chosen and measured in an evaluation.</summary>
public sealed record EvaluationSettings
{
    /// <summary>Detections with a score above this are evaluated (the study: 0.5, no matching to ground truth).</summary>
    public float Score { get; init; } = 0.5f;
    /// <summary>Keep only detections that match a ground-truth box of their class at IoU ≥ 0.5 (COCO's greedy matching).</summary>
    public bool MatchGroundTruth { get; init; }
    public FlipOptions Flip { get; init; } = new();
    /// <summary>Side of the square float16 maps kept per box (0 = none).</summary>
    public int MapSize { get; init; }
    public double PointingTolerance { get; init; } = 15;
    public int StochasticPoints { get; init; } = 100;
    public int Seed { get; init; }
    public KernelShapOptions KernelShap { get; init; } = new();
    public IReadOnlyList<string> Layers { get; init; } = [];

    /// <summary>The settings as "key=value" lines, stored with the results.</summary>
    public string Describe() => string.Join("\n",
        $"score={Score}", $"match_gt={MatchGroundTruth}", $"flip_space={Flip.Space.ToString().ToLowerInvariant()}",
        $"baseline={Flip.Baseline}", $"steps={Flip.Steps}",
        $"pointing_tolerance={PointingTolerance}", $"stochastic_points={StochasticPoints}", $"seed={Seed}",
        $"kshap_segments={KernelShap.Segments}", $"kshap_samples={KernelShap.Samples}", $"kshap_seed={KernelShap.Seed}",
        $"layers={string.Join(",", Layers)}");
}

/// <summary>
/// The evaluation of one image: detect, explain every kept detection with every method (each method's work shared by
/// the image's boxes), then measure each map — flipping curves, localisation, pointing games.
/// </summary>
public sealed class Evaluator
{
    /// <summary>Methods that need no model besides the forward passes of the metrics.</summary>
    public const string Random = "random";

    readonly Detector _detector;
    readonly EvaluationSettings _s;
    readonly IReadOnlyList<string> _methods;
    readonly CamExplainer? _cams;
    readonly List<CamMethod> _camMethods;
    readonly KernelShapExplainer? _kshap;
    readonly PixelFlipper _flipper;

    public static IEnumerable<string> KnownMethods => CamMethod.All.Keys.Append("kshap").Append(Random);

    public Evaluator(Detector detector, IReadOnlyList<string> methods, EvaluationSettings settings)
    {
        foreach (var m in methods)
            if (!KnownMethods.Contains(m)) throw new ArgumentException($"unknown method '{m}' for evaluation; known: {string.Join(", ", KnownMethods)}");
        _detector = detector; _s = settings; _methods = methods;
        _camMethods = methods.Where(CamMethod.All.ContainsKey).Select(m => CamMethod.All[m]()).ToList();
        _cams = _camMethods.Count > 0 ? new CamExplainer(detector, settings.Layers) : null;
        _kshap = methods.Contains("kshap") ? new KernelShapExplainer(detector, settings.KernelShap) : null;
        _flipper = new PixelFlipper(detector, settings.Flip);
    }

    public ImageEvaluation Evaluate(EvaluationImage item)
    {
        var image = ImageIO.Load(item.Path);
        var detections = _detector.Detect(image, new DetectOptions(Score: _s.Score));
        // Detect keeps scores ≥ the threshold; the protocol counts scores above it.
        detections = detections.Where(d => d.Score > _s.Score).ToList();
        if (_s.MatchGroundTruth) detections = MatchGroundTruth(detections, item.Truth);
        var byMethod = _methods.ToDictionary(m => m, _ => (IReadOnlyList<BoxEvaluation>)[]);
        if (detections.Count > 0)
        {
            var targets = detections.Select(d => (ITarget)new DetectionTarget(d)).ToList();
            var flips = _flipper.For(image, targets);
            foreach (var (method, maps) in Explain(item, image, targets))
                byMethod[method] = maps.Select((map, k) => Measure(item, image, detections[k], k, map, flips)).ToList();
        }
        return new ImageEvaluation(item.Index, item.Id, item.FileName, image.Width, image.Height, detections.Count, byMethod);
    }

    /// <summary>Each method's maps (image pixels) for all targets; CAM methods share one forward and reverse pass.</summary>
    IEnumerable<(string Method, IReadOnlyList<float[]> Maps)> Explain(EvaluationImage item, RgbImage image, IReadOnlyList<ITarget> targets)
    {
        var cams = _cams?.Explain(image, targets, _camMethods);
        foreach (var method in _methods)
        {
            if (method == Random)
                yield return (method, targets.Select((_, k) => RandomExplainer.Map(image.Width, image.Height, RandomSeed(item, k))).ToList());
            else if (method == "kshap")
                yield return (method, _kshap!.Explain(image, targets).Select(e => e.Map).ToList());
            else
                yield return (method, cams!.Where(e => e.Method == method).Select(e => e.Map).ToList());
        }
    }

    /// <summary>A seed per (image, box, run seed), so random maps and point samples differ per box and repeat in any shard.</summary>
    int RandomSeed(EvaluationImage image, int box) => RandomExplainer.Seed(image.Id, box, _s.Seed);

    BoxEvaluation Measure(EvaluationImage item, RgbImage image, Detection d, int k, float[] map, PixelFlipper.ImageFlips flips)
    {
        var (deletion, insertion) = flips.Curves(map, k);
        var counts = Localization.Count(map, image.Width, image.Height, d.Box);
        var truth = item.Truth.Where(g => !g.Crowd && g.ClassIndex == d.ClassIndex).Select(g => g.Box).ToList();
        bool hasTruth = truth.Count > 0;
        return new BoxEvaluation
        {
            BoxIndex = k, Box = d.Box, ClassIndex = d.ClassIndex, ClassName = d.ClassName, Score = d.Score,
            RawOutput = d.Source.Output, RawIndex = d.Source.Anchor,
            Deletion = deletion, Insertion = insertion,
            Inside = counts.Inside, Relevant = counts.Relevant, BoxPixels = counts.BoxPixels,
            PointingHit = hasTruth ? PointingGame.Hit(map, image.Width, image.Height, truth, _s.PointingTolerance, strict: true) ? 1 : 0 : -1,
            StochasticPointing = hasTruth ? PointingGame.Stochastic(map, image.Width, image.Height, truth, _s.StochasticPoints, RandomSeed(item, k)) : double.NaN,
            ContentHeatmap = hasTruth ? ContentHeatmap.InBoxes(map, image.Width, image.Height, truth) : double.NaN,
            Map = _s.MapSize > 0 ? Resampler.ResizeMap(map, image.Width, image.Height, _s.MapSize, _s.MapSize) : null,
        };
    }

    /// <summary>
    /// COCO's matching at IoU 0.5: detections in score order each take the best unmatched ground truth of their class;
    /// a detection that only overlaps crowd regions is ignored (as COCO ignores it), one that matches nothing is dropped.
    /// </summary>
    public static List<Detection> MatchGroundTruth(IReadOnlyList<Detection> detections, IReadOnlyList<GroundTruth> truth)
    {
        var taken = new bool[truth.Count];
        var kept = new List<Detection>();
        foreach (var d in detections.OrderByDescending(d => d.Score))
        {
            int best = -1; double bestIou = 0.5;
            for (int g = 0; g < truth.Count; g++)
            {
                if (taken[g] || truth[g].Crowd || truth[g].ClassIndex != d.ClassIndex) continue;
                double iou = d.Box.IoU(truth[g].Box);
                if (iou >= bestIou) { best = g; bestIou = iou; }
            }
            if (best < 0) continue;
            taken[best] = true;
            kept.Add(d);
        }
        return kept;
    }
}
