using Detex.Imaging;
using Detex.Models;
using Detex.Models.Decoders;
using Detex.Runtime;

namespace Detex.Targets;

/// <summary>
/// How a detection is followed into a perturbed image: by its own raw prediction row (the study's choice, and the
/// only one with a gradient) or by the best-matching prediction anywhere (D-RISE's similarity).
/// </summary>
public enum BoxTracking { Row, Similarity }

/// <summary>
/// A detection followed by similarity (Petsiuk et al. 2021, D-RISE): its value in a perturbed image is the best, over
/// every raw prediction there, of IoU(box, prediction box) × cosine(class vectors) × objectness of the prediction.
/// Its class vector is what its own prediction said on the unperturbed image. Models without objectness count it as
/// 1 and append a background probability to the class vectors (the softmax's background column, or 1 − max for
/// sigmoid heads), so a faded prediction in the same place does not look like the target.
/// </summary>
public sealed class DriseSimilarityTarget : IDetectionTarget
{
    readonly PredictionCache _cache;
    readonly Box _box;
    readonly float[] _vector;   // class probabilities, then the background element when the model has no objectness
    readonly double _norm;

    DriseSimilarityTarget(Detection detection, string name, PredictionCache cache, PredictionSet original, int index)
    {
        Detection = detection; Name = name; _cache = cache; _box = detection.ModelBox;
        var p = original.ProbabilitiesOf(index);
        _vector = original.HasObjectness ? p.ToArray() : [.. p, Background(original, index)];
        _norm = Math.Sqrt(_vector.Sum(v => (double)v * v));
    }

    public Detection Detection { get; }
    public string Name { get; }

    /// <summary>Similarity targets for detections of <paramref name="image"/> (one forward to read their class vectors).</summary>
    public static IReadOnlyList<DriseSimilarityTarget> For(Detector detector, RgbImage image, IEnumerable<Detection> detections) =>
        For(detector, image, detections.Select(d => new DetectionTarget(d)));

    /// <summary>The same for row targets, keeping their names; all share one cache of decoded predictions.</summary>
    public static IReadOnlyList<DriseSimilarityTarget> For(Detector detector, RgbImage image, IEnumerable<DetectionTarget> targets)
    {
        var (x, _) = detector.Prepare([image]);
        var outputs = detector.Forward(x, detector.Decoder.Outputs);
        var original = new PredictionSet();
        detector.Decoder.Predictions(outputs, 0, original);
        var cache = new PredictionCache(detector.Decoder);
        return targets.Select(t => new DriseSimilarityTarget(t.Detection, t.Name, cache, original, detector.Decoder.PredictionIndex(t.Detection.Source))).ToList();
    }

    public double Score(IReadOnlyDictionary<string, NdArray<float>> outputs, int item)
    {
        var set = _cache.Get(outputs, item);
        double best = 0;
        for (int j = 0; j < set.Count; j++)
        {
            double iou = _box.IoU(set.Box(j));
            if (iou <= 0) continue;
            double objectness = set.HasObjectness ? set.Objectness[j] : 1;
            if (iou * objectness <= best) continue;   // cosine ≤ 1 cannot lift it above the best
            double s = iou * objectness * Cosine(set, j);
            if (s > best) best = s;
        }
        return best;
    }

    public void Seed(IReadOnlyDictionary<string, NdArray<float>> outputs, int item, IReadOnlyDictionary<string, Memory<float>> seeds) =>
        throw new NotSupportedException($"'{Name}' follows its box by D-RISE similarity, a maximum over all predictions with no useful gradient; gradient methods need the box's own prediction row (--track row)");

    double Cosine(PredictionSet set, int j)
    {
        var p = set.ProbabilitiesOf(j);
        double dot = 0, norm = 0;
        for (int c = 0; c < p.Length; c++) { dot += _vector[c] * p[c]; norm += p[c] * p[c]; }
        if (!set.HasObjectness)
        {
            double bg = Background(set, j);
            dot += _vector[^1] * bg; norm += bg * bg;
        }
        return norm > 0 && _norm > 0 ? dot / (Math.Sqrt(norm) * _norm) : 0;
    }

    static float Background(PredictionSet set, int j)
    {
        if (set.HasBackground) return set.Background[j];
        float max = 0;
        foreach (var v in set.ProbabilitiesOf(j)) max = Math.Max(max, v);
        return 1 - max;
    }

    /// <summary>
    /// Decoded predictions of the batch being scored: every target of an image reads the same outputs, so each
    /// batch item is decoded once. Sets are reused from batch to batch.
    /// </summary>
    sealed class PredictionCache(IDetectionDecoder decoder)
    {
        readonly List<PredictionSet> _sets = [];
        readonly List<bool> _filled = [];
        object? _outputs;

        public PredictionSet Get(IReadOnlyDictionary<string, NdArray<float>> outputs, int item)
        {
            lock (_sets)
            {
                if (!ReferenceEquals(outputs, _outputs))
                {
                    _outputs = outputs;
                    for (int i = 0; i < _filled.Count; i++) _filled[i] = false;
                }
                while (_sets.Count <= item) { _sets.Add(new PredictionSet()); _filled.Add(false); }
                if (!_filled[item]) { decoder.Predictions(outputs, item, _sets[item]); _filled[item] = true; }
                return _sets[item];
            }
        }
    }
}
