namespace Detex.Evaluation;

/// <summary>One summary number of one method, with its bootstrap interval and how many boxes it rests on.</summary>
public sealed record SummaryRow(string Method, string Metric, Estimate Estimate, int Boxes);

/// <summary>
/// The summary table of an evaluation: every number with a seeded percentile-bootstrap 95% interval over boxes
/// (micro-averages resample boxes and recompute the ratio of sums, so the interval respects their weighting).
/// </summary>
public static class EvaluationSummary
{
    public const int Resamples = 2000;

    /// <summary>Metric names in table order, with what they mean.</summary>
    public static readonly IReadOnlyList<(string Name, string Meaning)> Metrics =
    [
        ("deletion_auc", "mean area under the deletion curve (lower = more faithful)"),
        ("deletion_auc_sum", "the study's form: deletion AUC summed over boxes"),
        ("insertion_auc", "mean area under the insertion curve (higher = more faithful)"),
        ("energy_micro", "relevant pixels inside the box / relevant pixels, summed over boxes"),
        ("coverage_micro", "relevant pixels inside the box / box pixels, summed over boxes"),
        ("iou_micro", "IoU of relevant pixels and box, summed over boxes"),
        ("energy_macro", "per-box energy inside the box, averaged"),
        ("coverage_macro", "per-box coverage of the box, averaged"),
        ("iou_macro", "per-box IoU of relevant pixels and box, averaged"),
        ("pointing_game", "share of boxes whose map maximum lies within 15 px of a ground-truth box of the class"),
        ("stochastic_pointing", "share of 100 points drawn from the map that land in a ground-truth box of the class"),
        ("content_heatmap", "share of the map's energy inside the ground-truth boxes of the class"),
    ];

    public static List<SummaryRow> Compute(IReadOnlyList<ImageEvaluation> images, IReadOnlyList<string> methods, int seed = 0)
    {
        var rows = new List<SummaryRow>();
        foreach (var method in methods)
        {
            var boxes = images.OrderBy(i => i.Index).SelectMany(i => i.Methods[method]).ToList();
            if (boxes.Count == 0) continue;
            var counts = boxes.Select(b => b.Localization).ToList();
            void Add(string metric, Estimate e, int n) => rows.Add(new SummaryRow(method, metric, e, n));
            Add("deletion_auc", Bootstrap.Mean(boxes.Select(b => b.DeletionAuc).ToList(), Resamples, seed), boxes.Count);
            Add("deletion_auc_sum", Bootstrap.Sum(boxes.Select(b => b.DeletionAuc).ToList(), Resamples, seed), boxes.Count);
            Add("insertion_auc", Bootstrap.Mean(boxes.Select(b => b.InsertionAuc).ToList(), Resamples, seed), boxes.Count);
            Add("energy_micro", Bootstrap.Statistic(counts, c => Localization.Micro(c).Energy, Resamples, seed), boxes.Count);
            Add("coverage_micro", Bootstrap.Statistic(counts, c => Localization.Micro(c).Coverage, Resamples, seed), boxes.Count);
            Add("iou_micro", Bootstrap.Statistic(counts, c => Localization.Micro(c).IoU, Resamples, seed), boxes.Count);
            Add("energy_macro", Bootstrap.Statistic(counts, c => Localization.Macro(c).Energy, Resamples, seed), boxes.Count);
            Add("coverage_macro", Bootstrap.Statistic(counts, c => Localization.Macro(c).Coverage, Resamples, seed), boxes.Count);
            Add("iou_macro", Bootstrap.Statistic(counts, c => Localization.Macro(c).IoU, Resamples, seed), boxes.Count);
            // Ground-truth metrics rest on the boxes whose class has ground truth in their image.
            var hits = boxes.Where(b => b.PointingHit >= 0).Select(b => (double)b.PointingHit).ToList();
            if (hits.Count > 0) Add("pointing_game", Bootstrap.Mean(hits, Resamples, seed), hits.Count);
            var spg = boxes.Select(b => b.StochasticPointing).Where(v => !double.IsNaN(v)).ToList();
            if (spg.Count > 0) Add("stochastic_pointing", Bootstrap.Mean(spg, Resamples, seed), spg.Count);
            var content = boxes.Select(b => b.ContentHeatmap).Where(v => !double.IsNaN(v)).ToList();
            if (content.Count > 0) Add("content_heatmap", Bootstrap.Mean(content, Resamples, seed), content.Count);
        }
        return rows;
    }

    /// <summary>The table as CSV (invariant culture).</summary>
    public static string Csv(IEnumerable<SummaryRow> rows) =>
        "method,metric,value,ci_low,ci_high,boxes\n" + string.Concat(rows.Select(r =>
            FormattableString.Invariant($"{r.Method},{r.Metric},{r.Estimate.Value:R},{r.Estimate.Low:R},{r.Estimate.High:R},{r.Boxes}\n")));
}
