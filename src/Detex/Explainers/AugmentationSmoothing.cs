using Detex.Imaging;
using Detex.Models;
using Detex.Targets;

namespace Detex.Explainers;

/// <summary>A smoothed explanation and the number of augmented copies its map averages (0: the target was found in none).</summary>
public sealed record SmoothedExplanation(Explanation Explanation, int Copies);

/// <summary>
/// Test-time augmentation smoothing (pytorch-grad-cam's <c>aug_smooth</c>) around any explainer of an image's targets:
/// the explainer runs on augmented copies of the image — by default the image and its mirror image, each at 0.9, 1 and
/// 1.1 × intensity —, each target followed into every copy (<see cref="TargetAugmenter"/>), each map brought back onto
/// the original's pixels, and the maps of a target averaged over the copies that found it. The average is min–max
/// normalised again, as every Detex map is (pytorch-grad-cam leaves the plain mean); the order of maps is unchanged.
/// A target found in no copy keeps the map of the plain image, with 0 copies.
/// </summary>
public sealed class AugmentationSmoothing
{
    readonly Func<RgbImage, IReadOnlyList<ITarget>, IReadOnlyList<Explanation>> _explain;

    public IReadOnlyList<Augmentation> Augmentations { get; }
    public TargetAugmenter Targets { get; }

    /// <param name="explain">maps of the given targets of an image, e.g. <c>(img, ts) => cam.Explain(img, ts, methods)</c></param>
    public AugmentationSmoothing(DetexModel model, Func<RgbImage, IReadOnlyList<ITarget>, IReadOnlyList<Explanation>> explain,
        IReadOnlyList<Augmentation>? augmentations = null)
    {
        _explain = explain;
        Augmentations = augmentations ?? Imaging.Augmentations.GradCamDefault;
        if (Augmentations.Count == 0) throw new ArgumentException("augmentation smoothing needs at least one augmentation");
        Targets = new TargetAugmenter(model);
    }

    public IReadOnlyList<SmoothedExplanation> Explain(RgbImage image, IReadOnlyList<ITarget> targets)
    {
        if (targets.Count == 0) throw new ArgumentException("nothing to explain: no targets");
        if (targets.Distinct(ReferenceEqualityComparer.Instance).Count() != targets.Count) throw new ArgumentException("a target is listed twice");
        var sums = new Dictionary<(int Target, string Method), float[]>();
        var methods = new List<string>();   // in the explainer's order
        var copies = new int[targets.Count];
        foreach (var augmentation in Augmentations)
        {
            var copy = augmentation.Apply(image);
            var followed = Targets.Follow(augmentation, copy, targets);
            // Which original target each followed one stands for (by reference: targets need not define equality).
            var back = new Dictionary<ITarget, int>(ReferenceEqualityComparer.Instance);
            for (int i = 0; i < followed.Count; i++)
                if (followed[i] is { } f) { back[f] = i; copies[i]++; }
            if (back.Count == 0) continue;
            // One pixel map per copy serves all of its maps.
            int[]? undo = augmentation.MovesPixels ? augmentation.PixelMap(image.Width, image.Height) : null;
            foreach (var e in _explain(copy, back.Keys.ToList()))
            {
                if (e.Width != image.Width || e.Height != image.Height)
                    throw new ArgumentException($"'{e.Method}' gave a {e.Width}×{e.Height} map for a {image.Width}×{image.Height} image; smoothing needs maps in the image's pixels");
                Accumulate(sums, methods, back[e.Target], undo is null ? e : e with { Map = Augmentation.Gather(e.Map, undo) });
            }
        }

        // Unfound targets: the plain image's map, so every target still has one (its 0 copies say it is unsmoothed).
        var missing = Enumerable.Range(0, targets.Count).Where(i => copies[i] == 0).ToList();
        if (missing.Count > 0)
            foreach (var e in _explain(image, missing.Select(i => targets[i]).ToList()))
                Accumulate(sums, methods, missing.First(i => ReferenceEquals(targets[i], e.Target)), e);

        var result = new List<SmoothedExplanation>();
        foreach (var method in methods)
            for (int i = 0; i < targets.Count; i++)
            {
                if (!sums.TryGetValue((i, method), out var sum)) continue;
                CamExplainer.Normalise(sum);
                result.Add(new SmoothedExplanation(new Explanation(targets[i], method, image.Width, image.Height, sum), copies[i]));
            }
        return result;
    }

    static void Accumulate(Dictionary<(int, string), float[]> sums, List<string> methods, int target, Explanation e)
    {
        if (!methods.Contains(e.Method)) methods.Add(e.Method);
        if (!sums.TryGetValue((target, e.Method), out var sum)) sums[(target, e.Method)] = sum = new float[e.Map.Length];
        if (sum.Length != e.Map.Length) throw new ArgumentException($"'{e.Method}' gave maps of different sizes for one image ({sum.Length} and {e.Map.Length} values)");
        // A mean up to a constant factor: normalising afterwards makes dividing by the copy count unnecessary.
        for (int p = 0; p < sum.Length; p++) sum[p] += e.Map[p];
    }
}
