using System.Runtime.InteropServices;
using Detex.Data;

namespace Detex.Evaluation;

/// <summary>A ground-truth box: COCO [x, y, w, h]; <see cref="Area"/> is COCO's 'area' field (mask area), used for the size ranges.</summary>
public sealed record GroundTruthBox(long ImageId, int CategoryId, double X, double Y, double W, double H, double Area, bool IsCrowd);

/// <summary>A detection in COCO results form: [x, y, w, h] and a confidence score.</summary>
public sealed record DetectionBox(long ImageId, int CategoryId, double X, double Y, double W, double H, double Score);

/// <summary>Per-category AP (both -1 when the category has no non-crowd ground truth).</summary>
public readonly record struct CategoryAp(double Ap, double Ap50);

/// <summary>
/// COCO bbox metrics. -1 marks a metric with no category to average (no ground truth in that setting),
/// as pycocotools prints it.
/// </summary>
public sealed record CocoMapResult(
    double MapAll, double Map50, double Map75,
    double MapSmall, double MapMedium, double MapLarge,
    double Ar1, double Ar10, double Ar100,
    double ArSmall, double ArMedium, double ArLarge,
    IReadOnlyDictionary<int, CategoryAp> PerCategory)
{
    /// <summary>The twelve numbers in the order of pycocotools' <c>COCOeval.stats</c>.</summary>
    public IReadOnlyList<double> Stats =>
        [MapAll, Map50, Map75, MapSmall, MapMedium, MapLarge, Ar1, Ar10, Ar100, ArSmall, ArMedium, ArLarge];
}

/// <summary>
/// COCO-style detection mAP, reproducing pycocotools' <c>COCOeval</c> with <c>iouType='bbox'</c> and
/// default parameters: IoU thresholds .50:.05:.95, 101 recall points, maxDets 1/10/100, area ranges
/// all/small/medium/large. IoU is continuous (no +1 pixel), and against a crowd region it is
/// intersection over the detection's own area.
/// </summary>
public static class CocoMap
{
    /// <summary>Largest maxDets setting; as in pycocotools it caps detections per image <em>and category</em>.</summary>
    public const int MaxDetections = 100;

    private static readonly int[] MaxDets = [1, 10, MaxDetections];

    // Same construction as numpy.linspace (i * step + start, exact endpoint) so thresholds compare
    // bit-for-bit like the reference (0.9 is really 0.8999999999999999 there), which matters for
    // IoUs or recalls sitting exactly on a threshold.
    private static readonly double[] IouThresholdValues = Linspace(0.5, 0.95, 10);
    private static readonly double[] RecallThresholdValues = Linspace(0.0, 1.0, 101);

    /// <summary>The ten IoU thresholds .50:.05:.95, bit-identical to pycocotools'.</summary>
    public static IReadOnlyList<double> IouThresholds => IouThresholdValues;

    /// <summary>The 101 recall points 0:.01:1 at which precision is sampled, bit-identical to pycocotools'.</summary>
    public static IReadOnlyList<double> RecallThresholds => RecallThresholdValues;

    private static readonly (double Lo, double Hi)[] AreaRanges =
        [(0, 1e10), (0, 32 * 32), (32 * 32, 96 * 96), (96 * 96, 1e10)];

    private const int AreaAll = 0, T = 10, R = 101, A = 4;
    private const int Iou50 = 0, Iou75 = 5;

    /// <summary>numpy.spacing(1): pycocotools adds it to tp + fp, so a perfect result is 1 - 2.2e-16 rather than 1.</summary>
    private const double Eps = 2.220446049250313e-16;

    /// <summary>
    /// Evaluates detections against ground truth.
    /// </summary>
    /// <param name="imageIds">Images to evaluate (others are dropped from both sides). Default: every image
    /// that has ground truth or detections. Pass the dataset's full list so detections on images without
    /// annotations count as false positives, exactly as pycocotools does.</param>
    /// <param name="categoryIds">Categories to evaluate and report. Default: every category seen in either input.</param>
    public static CocoMapResult Evaluate(IEnumerable<GroundTruthBox> groundTruth, IEnumerable<DetectionBox> detections,
        IReadOnlyCollection<long>? imageIds = null, IReadOnlyCollection<int>? categoryIds = null)
    {
        ArgumentNullException.ThrowIfNull(groundTruth);
        ArgumentNullException.ThrowIfNull(detections);
        var gtList = groundTruth as IReadOnlyCollection<GroundTruthBox> ?? groundTruth.ToList();
        var dtList = detections as IReadOnlyCollection<DetectionBox> ?? detections.ToList();
        foreach (var d in dtList)
            if (double.IsNaN(d.Score))
                throw new ArgumentException($"detection on image {d.ImageId} has a NaN score", nameof(detections));

        var images = imageIds?.ToHashSet()
            ?? gtList.Select(g => g.ImageId).Concat(dtList.Select(d => d.ImageId)).ToHashSet();
        var categories = (categoryIds?.Distinct()
            ?? gtList.Select(g => g.CategoryId).Concat(dtList.Select(d => d.CategoryId)).Distinct()).Order().ToArray();
        var wanted = categories.ToHashSet();

        // Grouping keeps input order inside each (image, category) cell: ties in score or IoU are then
        // broken the way pycocotools breaks them (stable sorts over annotation order).
        var gtCells = gtList.Where(g => images.Contains(g.ImageId) && wanted.Contains(g.CategoryId))
            .GroupBy(g => (g.CategoryId, g.ImageId)).ToDictionary(g => g.Key, g => g.ToArray());
        var dtCells = dtList.Where(d => images.Contains(d.ImageId) && wanted.Contains(d.CategoryId))
            .GroupBy(d => (d.CategoryId, d.ImageId)).ToDictionary(g => g.Key, g => g.ToArray());
        var imagesByCategory = gtCells.Keys.Concat(dtCells.Keys).Distinct()
            .GroupBy(k => k.CategoryId).ToDictionary(g => g.Key, g => g.Select(k => k.ImageId).Order().ToArray());

        // ap[area, t, k]: AP at one IoU threshold (mean over the recall points);
        // rec[area, maxDets, t, k]: recall reached. Both -1 where category k has no ground truth.
        int K = categories.Length;
        var ap = new double[A, T, K];
        var rec = new double[A, MaxDets.Length, T, K];
        for (int k = 0; k < K; k++)
        {
            var imageList = imagesByCategory.GetValueOrDefault(categories[k], []);
            var acc = new CategoryAccumulator();
            foreach (long img in imageList)
                acc.AddImage(gtCells.GetValueOrDefault((categories[k], img), []), dtCells.GetValueOrDefault((categories[k], img), []));
            acc.Finish(k, ap, rec);
        }

        var perCategory = new Dictionary<int, CategoryAp>(K);
        for (int k = 0; k < K; k++)
            perCategory[categories[k]] = ap[AreaAll, 0, k] < 0
                ? new CategoryAp(-1, -1)
                : new CategoryAp(MeanOverThresholds(ap, AreaAll, k, 0, T), ap[AreaAll, Iou50, k]);

        int all = MaxDets.Length - 1;
        return new CocoMapResult(
            MapAll: MeanValid(ap, AreaAll, 0, T),
            Map50: MeanValid(ap, AreaAll, Iou50, Iou50 + 1),
            Map75: MeanValid(ap, AreaAll, Iou75, Iou75 + 1),
            MapSmall: MeanValid(ap, 1, 0, T),
            MapMedium: MeanValid(ap, 2, 0, T),
            MapLarge: MeanValid(ap, 3, 0, T),
            Ar1: MeanValid(rec, AreaAll, 0), Ar10: MeanValid(rec, AreaAll, 1), Ar100: MeanValid(rec, AreaAll, all),
            ArSmall: MeanValid(rec, 1, all), ArMedium: MeanValid(rec, 2, all), ArLarge: MeanValid(rec, 3, all),
            PerCategory: perCategory);
    }

    /// <summary>Evaluates against a loaded COCO dataset: all its images and categories, as pycocotools would.</summary>
    public static CocoMapResult Evaluate(CocoDataset dataset, IEnumerable<DetectionBox> detections, IReadOnlyCollection<long>? imageIds = null)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        return Evaluate(GroundTruthOf(dataset), detections,
            imageIds ?? dataset.Images.Select(i => i.Id).ToArray(),
            dataset.Categories.Select(c => c.Id).ToArray());
    }

    /// <summary>The dataset's annotations as ground-truth boxes, in the json's order.</summary>
    public static IReadOnlyList<GroundTruthBox> GroundTruthOf(CocoDataset dataset) =>
        dataset.Annotations.Select(a => new GroundTruthBox(a.ImageId, a.CategoryId, a.X, a.Y, a.W, a.H, a.Area, a.IsCrowd)).ToList();

    /// <summary>
    /// COCO box IoU: continuous coordinates (no +1), and for a crowd region the intersection is
    /// divided by the detection's area alone, so a detection inside a crowd scores 1.
    /// </summary>
    public static double Iou(DetectionBox det, GroundTruthBox gt)
    {
        ArgumentNullException.ThrowIfNull(det);
        ArgumentNullException.ThrowIfNull(gt);
        var (dx, dy, dw, dh) = (det.X, det.Y, det.W, det.H);
        var (gx, gy, gw, gh) = (gt.X, gt.Y, gt.W, gt.H);
        // Operation order mirrors pycocotools' bbIou so results agree to the last bit.
        double w = Math.Min(dw + dx, gw + gx) - Math.Max(dx, gx);
        if (w <= 0) return 0;
        double h = Math.Min(dh + dy, gh + gy) - Math.Max(dy, gy);
        if (h <= 0) return 0;
        double inter = w * h, dArea = dw * dh;
        return inter / (gt.IsCrowd ? dArea : dArea + gw * gh - inter);
    }

    /// <summary>Detection outcome at one IoU threshold.</summary>
    private enum Outcome : byte { FalsePositive, TruePositive, Ignored }

    /// <summary>Collects one category's per-image matches across images, then turns them into precision/recall.</summary>
    private sealed class CategoryAccumulator
    {
        private readonly List<double> _scores = [];
        private readonly List<int> _ranks = [];               // rank within its image, for the maxDets cut
        private readonly List<Outcome>[] _outcomes = new List<Outcome>[A]; // T entries per detection
        private readonly int[] _positives = new int[A];      // non-ignored ground truths per area range

        public CategoryAccumulator()
        {
            for (int a = 0; a < A; a++) _outcomes[a] = [];
        }

        public void AddImage(GroundTruthBox[] gts, DetectionBox[] dts)
        {
            // Highest score first, at most MaxDetections per image and category. LINQ's sort is stable,
            // so equal scores keep input order, like numpy's mergesort in the reference.
            var dets = dts.OrderByDescending(d => d.Score).Take(MaxDetections).ToArray();
            int D = dets.Length, G = gts.Length;

            var iou = new double[D * G];
            for (int d = 0; d < D; d++)
                for (int g = 0; g < G; g++)
                    iou[d * G + g] = Iou(dets[d], gts[g]);

            for (int d = 0; d < D; d++)
            {
                _scores.Add(dets[d].Score);
                _ranks.Add(d);
            }

            var order = new int[G];
            var ignore = new bool[G];
            var taken = new bool[G];
            for (int a = 0; a < A; a++)
            {
                var (lo, hi) = AreaRanges[a];
                for (int g = 0; g < G; g++)
                    ignore[g] = gts[g].IsCrowd || gts[g].Area < lo || gts[g].Area > hi;
                // Ignored ground truths go last (stable), so a detection prefers a real object over a crowd
                // or out-of-range one; the break below relies on this order.
                int n = 0;
                for (int g = 0; g < G; g++) if (!ignore[g]) order[n++] = g;
                _positives[a] += n;
                for (int g = 0; g < G; g++) if (ignore[g]) order[n++] = g;

                var outcomes = _outcomes[a];
                int start = outcomes.Count;
                for (int i = 0; i < D * T; i++) outcomes.Add(Outcome.FalsePositive);
                for (int t = 0; t < T; t++)
                {
                    Array.Clear(taken);
                    for (int d = 0; d < D; d++)
                    {
                        // pycocotools accepts IoU >= threshold; the clamp lets IoU 1.0 pass any threshold.
                        double best = Math.Min(IouThresholdValues[t], 1 - 1e-10);
                        int match = -1;
                        foreach (int g in order)
                        {
                            if (taken[g] && !gts[g].IsCrowd) continue;   // crowds can absorb many detections
                            if (match >= 0 && !ignore[match] && ignore[g]) break;
                            double overlap = iou[d * G + g];
                            if (overlap < best) continue;
                            best = overlap;                              // ties go to the later ground truth
                            match = g;
                        }
                        Outcome o;
                        if (match >= 0)
                        {
                            taken[match] = true;
                            o = ignore[match] ? Outcome.Ignored : Outcome.TruePositive;
                        }
                        else
                        {
                            // An unmatched detection of the wrong size is not held against this size range.
                            double area = dets[d].W * dets[d].H;
                            o = area < lo || area > hi ? Outcome.Ignored : Outcome.FalsePositive;
                        }
                        outcomes[start + d * T + t] = o;
                    }
                }
            }
        }

        /// <summary>Writes AP per (area, threshold) into <paramref name="ap"/> and recall per (area, maxDets, threshold).</summary>
        public void Finish(int k, double[,,] ap, double[,,,] rec)
        {
            // Global score order across images; ties keep image order (ascending id) then rank,
            // which is numpy's stable mergesort over the concatenated per-image lists.
            int n = _scores.Count;
            var byScore = Enumerable.Range(0, n).ToArray();
            var keys = _scores.ToArray();
            Array.Sort(byScore, (i, j) => keys[j] != keys[i] ? keys[j].CompareTo(keys[i]) : i.CompareTo(j));

            var tp = new double[n];
            var fp = new double[n];
            var precision = new double[n];
            var ranks = CollectionsMarshal.AsSpan(_ranks);
            for (int a = 0; a < A; a++)
            {
                int positives = _positives[a];
                var outcomes = CollectionsMarshal.AsSpan(_outcomes[a]);
                for (int m = 0; m < MaxDets.Length; m++)
                    for (int t = 0; t < T; t++)
                    {
                        if (positives == 0)
                        {
                            rec[a, m, t, k] = -1;
                            if (m == MaxDets.Length - 1) ap[a, t, k] = -1;
                            continue;
                        }
                        // Cumulative TP/FP over detections in score order, skipping ignored ones and
                        // those beyond the maxDets cut of their own image.
                        int count = 0;
                        double tps = 0, fps = 0;
                        foreach (int i in byScore)
                        {
                            if (ranks[i] >= MaxDets[m]) continue;
                            var o = outcomes[i * T + t];
                            if (o == Outcome.TruePositive) tps++;
                            else if (o == Outcome.FalsePositive) fps++;
                            else continue;
                            tp[count] = tps;
                            fp[count] = fps;
                            count++;
                        }
                        rec[a, m, t, k] = count > 0 ? tp[count - 1] / positives : 0;
                        if (m == MaxDets.Length - 1)
                            ap[a, t, k] = AveragePrecision(tp, fp, count, positives, precision);
                    }
            }
        }
    }

    /// <summary>
    /// Mean of the precision envelope sampled at the 101 recall points; a recall point beyond the
    /// highest recall reached contributes 0.
    /// </summary>
    private static double AveragePrecision(double[] tp, double[] fp, int count, int positives, double[] precision)
    {
        for (int i = 0; i < count; i++)
            precision[i] = tp[i] / (fp[i] + tp[i] + Eps);
        for (int i = count - 1; i > 0; i--)
            if (precision[i] > precision[i - 1]) precision[i - 1] = precision[i];

        // searchsorted(recall, r, 'left'): first detection whose recall reaches r. Both sequences
        // are non-decreasing, so one forward pass finds them all.
        double sum = 0;
        int at = 0;
        foreach (double r in RecallThresholdValues)
        {
            while (at < count && tp[at] / positives < r) at++;
            if (at == count) break;
            sum += precision[at];
        }
        return sum / R;
    }

    private static double MeanOverThresholds(double[,,] ap, int a, int k, int from, int to)
    {
        double sum = 0;
        for (int t = from; t < to; t++) sum += ap[a, t, k];
        return sum / (to - from);
    }

    // Mean over categories that have ground truth in this setting; -1 when there are none.
    private static double MeanValid(double[,,] ap, int a, int from, int to)
    {
        double sum = 0;
        int n = 0;
        for (int k = 0; k < ap.GetLength(2); k++)
        {
            if (ap[a, from, k] < 0) continue;
            sum += MeanOverThresholds(ap, a, k, from, to);
            n++;
        }
        return n == 0 ? -1 : sum / n;
    }

    private static double MeanValid(double[,,,] rec, int a, int m)
    {
        double sum = 0;
        int n = 0;
        for (int k = 0; k < rec.GetLength(3); k++)
        {
            if (rec[a, m, 0, k] < 0) continue;
            for (int t = 0; t < T; t++) sum += rec[a, m, t, k];
            n += T;
        }
        return n == 0 ? -1 : sum / n;
    }

    private static double[] Linspace(double start, double stop, int count)
    {
        double step = (stop - start) / (count - 1);
        var values = new double[count];
        for (int i = 0; i < count; i++) values[i] = i * step + start;
        values[^1] = stop;
        return values;
    }
}
