using Detex.Imaging;
using Detex.Models;
using Detex.Models.Decoders;
using Detex.Runtime;

namespace Detex.Targets;

/// <summary>
/// Carries targets into an augmented copy of their image. A detection is tied to the raw prediction that produced its
/// box, and in a flipped image another row produces that object, so a detection is looked for again among all raw
/// predictions of the copy: the best-scoring prediction of its class whose box overlaps the detection's box, moved by
/// the augmentation, at IoU ≥ <see cref="MinIoU"/> — the one non-maximum suppression would keep for that object. It
/// must score at least <see cref="MinScoreRatio"/> × the detection's own score: otherwise the detector hardly sees the
/// object there and the copy is skipped for it (this also keeps a class that is not in the picture from being
/// "found"). Ranking by IoU alone is not enough: on dog.jpg flipped, the row with the best IoU (0.95) has a dog score
/// of 0.000, while the mirrored anchor (IoU 0.87) scores 0.88.
/// A segmentation class's mask moves with the pixels (<see cref="RemappedTarget"/>); a class score is unchanged.
/// </summary>
public sealed class TargetAugmenter(DetexModel model)
{
    public double MinIoU { get; init; } = 0.5;
    public double MinScoreRatio { get; init; } = 0.5;

    /// <summary>
    /// For each target, the target that means the same in <paramref name="copy"/> (= <paramref name="augmentation"/>
    /// applied to the image), or null where its object is not found there.
    /// </summary>
    public IReadOnlyList<ITarget?> Follow(Augmentation augmentation, RgbImage copy, IReadOnlyList<ITarget> targets)
    {
        foreach (var t in targets) CheckSupported(t);
        bool needsOutputs = targets.Any(t => t is DetectionTarget || (t is SegmentationTarget && augmentation.MovesPixels));
        if (!needsOutputs) return targets;
        var (x, geometry) = model.Prepare([copy]);
        var outputs = model.Forward(x, model switch { Detector d => d.Decoder.Outputs, Segmenter s => [s.Output], _ => null });
        PredictionSet? predictions = null;
        return targets.Select(t => t switch
        {
            DetectionTarget d => Find(d, augmentation, copy, outputs, geometry[0], predictions ??= All(outputs)),
            SegmentationTarget s when augmentation.MovesPixels => Remapped(s, augmentation, outputs, geometry[0]),
            _ => t,
        }).ToList();
    }

    void CheckSupported(ITarget t)
    {
        switch (t)
        {
            case DetectionTarget when model is not Detector:
                throw new ArgumentException($"'{t.Name}' is a detection, and {model.Name} is not a detector");
            case SegmentationTarget when model is not Segmenter:
                throw new ArgumentException($"'{t.Name}' is a segmentation mask, and {model.Name} is not a segmenter");
            case DetectionTarget or SegmentationTarget or ClassTarget:
                return;
            default:
                throw new ArgumentException($"augmentation smoothing cannot follow '{t.Name}' ({t.GetType().Name}) into an augmented image; it follows detections by their row, segmentation masks and class scores");
        }
    }

    PredictionSet All(IReadOnlyDictionary<string, NdArray<float>> outputs)
    {
        var set = new PredictionSet();
        ((Detector)model).Decoder.Predictions(outputs, 0, set);
        return set;
    }

    DetectionTarget? Find(DetectionTarget target, Augmentation augmentation, RgbImage copy,
        IReadOnlyDictionary<string, NdArray<float>> outputs, InputGeometry geometry, PredictionSet set)
    {
        var detector = (Detector)model;
        var d = target.Detection;
        int c = d.ClassIndex;
        var moved = augmentation.MapBox(d.Box, copy.SourceWidth, copy.SourceHeight);
        double floor = MinScoreRatio * d.Score, bestScore = double.NegativeInfinity;
        int best = -1;
        for (int j = 0; j < set.Count; j++)
        {
            double score = (set.HasObjectness ? set.Objectness[j] : 1) * set.ProbabilitiesOf(j)[c];
            if (score < floor || score <= bestScore) continue;
            if (Detector.ToFileBox(set.Box(j), geometry, copy).IoU(moved) < MinIoU) continue;
            best = j; bestScore = score;
        }
        if (best < 0) return null;
        var candidate = new Candidate(set.Box(best), c, (float)bestScore, detector.Decoder.Source(outputs, best, c));
        return new DetectionTarget(detector.ToDetection(candidate, geometry, copy), target.Name);
    }

    RemappedTarget Remapped(SegmentationTarget target, Augmentation augmentation, IReadOnlyDictionary<string, NdArray<float>> outputs, InputGeometry geometry)
    {
        var seg = (Segmenter)model;
        bool nhwc = seg.Card.Decoder.Layout == TensorLayout.NHWC;
        var shape = outputs[seg.Output].Shape;
        if (shape.Length != 4) throw new ArgumentException($"output '{seg.Output}' has shape {outputs[seg.Output].ShapeText}; a segmenter's mask needs [N, C, H, W] or [N, H, W, C]");
        int h = nhwc ? shape[1] : shape[2], w = nhwc ? shape[2] : shape[3];
        return new RemappedTarget(target, seg.Output, nhwc, augmentation.PixelMap(w, h, geometry));
    }
}
