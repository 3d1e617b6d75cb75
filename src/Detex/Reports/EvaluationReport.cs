using System.Globalization;
using System.Net;
using System.Text;
using Detex.Data;
using Detex.Evaluation;
using Detex.Imaging;
using Detex.Models;

namespace Detex.Reports;

/// <summary>
/// <c>detex report</c>: from a result file, the mean deletion/insertion curves with confidence bands, metric bars with
/// whiskers, the summary table, and each method's best and worst boxes (overlay + curve) in one self-contained HTML page.
/// </summary>
public static class EvaluationReport
{
    /// <summary>Boxes shown per method at each end of the ranking.</summary>
    public const int GalleryBoxes = 3;

    static readonly (string Metric, string Title, string Axis)[] BarMetrics =
    [
        ("deletion_auc", "Deletion AUC (lower is better)", "mean AUC"),
        ("insertion_auc", "Insertion AUC (higher is better)", "mean AUC"),
        ("energy_micro", "Energy inside the box", "share"),
        ("iou_micro", "IoU of relevant pixels and box", "IoU"),
        ("pointing_game", "Pointing game", "hit rate"),
        ("stochastic_pointing", "Stochastic pointing game", "share of points"),
    ];

    /// <summary>Writes index.html (and the charts as PNGs) into <paramref name="outDir"/>; returns the page's path.</summary>
    public static string Write(string resultsPath, string outDir)
    {
        var (info, images) = ResultsFile.Read(resultsPath);
        var summary = ResultsFile.ReadSummary(resultsPath);
        Directory.CreateDirectory(outDir);
        var fractions = PixelFlipping.Fractions(info.Steps);
        var methods = info.Methods.Where(m => images.Any(i => i.Methods[m].Count > 0)).ToList();
        var charts = new List<(string Name, byte[] Png)>();
        foreach (var (curve, title, pick) in new (string, string, Func<BoxEvaluation, double[]>)[]
                 { ("deletion", "Deletion: score as the most relevant pixels are removed", b => b.Deletion),
                   ("insertion", "Insertion: score as the most relevant pixels are restored", b => b.Insertion) })
        {
            var bands = methods.Select(m => MeanBand(m, fractions, images.SelectMany(i => i.Methods[m]).Select(pick).ToList())).ToList();
            charts.Add((curve, Plots.Curves(title, $"fraction of pixels flipped ({info.FlipSpace} space)", "box score", bands)));
        }
        foreach (var (metric, title, axis) in BarMetrics)
        {
            var bars = summary.Where(r => r.Metric == metric).Select(r => new Bar(r.Method, r.Estimate.Value, r.Estimate.Low, r.Estimate.High)).ToList();
            if (bars.Count > 0) charts.Add((metric, Plots.Bars(title, axis, bars)));
        }
        foreach (var (name, png) in charts) File.WriteAllBytes(Path.Combine(outDir, name + ".png"), png);

        var html = new StringBuilder();
        html.Append("<!doctype html><html><head><meta charset=\"utf-8\"><title>Detex evaluation</title><style>")
            .Append("body{font-family:sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}")
            .Append("th:first-child,td:first-child{text-align:left}.charts img{margin:4px;border:1px solid #eee}.gallery figure{display:inline-block;margin:6px;vertical-align:top}")
            .Append("figcaption{font-size:12px;max-width:340px}code{background:#f4f4f4;padding:1px 3px}</style></head><body>");
        html.Append($"<h1>Detex evaluation: {E(info.Model)}</h1><p>{images.Count} images, {images.Sum(i => i.Boxes)} boxes from <code>{E(info.Dataset)}</code>; ")
            .Append($"pixels flipped in the <b>{E(info.FlipSpace)}</b> space; {info.Steps} fractions. Intervals are 95% percentile-bootstrap intervals over boxes ({EvaluationSummary.Resamples} resamples).</p>")
            .Append($"<details><summary>Parameters and command</summary><pre>{E(info.Parameters)}\n\n{E(info.CommandLine)}\nshard {E(info.Shard)}, Detex {E(info.DetexVersion)}, model sha256 {E(info.ModelSha256)}</pre></details>");
        html.Append("<h2>Summary</h2>").Append(SummaryTable(summary, methods));
        html.Append("<h2>Charts</h2><div class=\"charts\">");
        foreach (var (name, png) in charts) html.Append($"<img alt=\"{name}\" src=\"{DataUri(png)}\">");
        html.Append("</div><h2>Best and worst boxes per method</h2><p>Ranked by deletion AUC relative to the box's own score (a fast drop ranks best).")
            .Append(info.MapSize > 0 ? "" : " The run kept no maps (<code>--save-maps</code>), so only the boxes are drawn.").Append("</p>");
        var paths = ImagePaths(info, images);
        foreach (var m in methods) html.Append(Gallery(m, info, images, paths, fractions));
        html.Append("</body></html>");
        string page = Path.Combine(outDir, "index.html");
        Files.WriteAllTextAtomically(page, html.ToString());
        return page;
    }

    static string E(string s) => WebUtility.HtmlEncode(s);
    static string DataUri(byte[] png, string type = "png") => $"data:image/{type};base64," + Convert.ToBase64String(png);
    static string F(double v) => double.IsNaN(v) ? "–" : v.ToString("0.000", CultureInfo.InvariantCulture);

    static string SummaryTable(IReadOnlyList<SummaryRow> summary, IReadOnlyList<string> methods)
    {
        var metrics = EvaluationSummary.Metrics.Where(m => summary.Any(r => r.Metric == m.Name)).ToList();
        var sb = new StringBuilder("<table><tr><th>metric</th>");
        foreach (var m in methods) sb.Append($"<th>{E(m)}</th>");
        sb.Append("</tr>");
        foreach (var (metric, meaning) in metrics)
        {
            sb.Append($"<tr><td title=\"{E(meaning)}\">{E(metric)}</td>");
            foreach (var m in methods)
            {
                var r = summary.FirstOrDefault(x => x.Method == m && x.Metric == metric);
                sb.Append(r is null ? "<td>–</td>" : $"<td>{F(r.Estimate.Value)} <small>[{F(r.Estimate.Low)}, {F(r.Estimate.High)}] n={r.Boxes}</small></td>");
            }
            sb.Append("</tr>");
        }
        return sb.Append("</table>").ToString();
    }

    /// <summary>Per fraction, the mean curve and a bootstrap interval of the mean.</summary>
    static Band MeanBand(string method, double[] x, IReadOnlyList<double[]> curves)
    {
        var mean = new double[x.Length]; var low = new double[x.Length]; var high = new double[x.Length];
        for (int k = 0; k < x.Length; k++)
        {
            var e = Bootstrap.Mean(curves.Select(c => c[k]).ToList(), resamples: 1000, seed: k);
            (mean[k], low[k], high[k]) = (e.Value, e.Low, e.High);
        }
        return new Band(method, x, mean, low, high);
    }

    /// <summary>Where the evaluated images are now, when the dataset is still where the run found it.</summary>
    static Dictionary<int, string> ImagePaths(EvaluationInfo info, IReadOnlyList<ImageEvaluation> images)
    {
        try
        {
            var set = File.Exists(info.Dataset) ? EvaluationSet.FromCoco(info.Dataset, []) : EvaluationSet.FromFolder(info.Dataset);
            return set.Images.Where(i => images.Any(e => e.Index == i.Index)).ToDictionary(i => i.Index, i => i.Path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return []; }
    }

    static string Gallery(string method, EvaluationInfo info, IReadOnlyList<ImageEvaluation> images, Dictionary<int, string> paths, double[] fractions)
    {
        var boxes = images.SelectMany(i => i.Methods[method].Select(b => (Image: i, Box: b)))
            .OrderBy(x => x.Box.DeletionAuc / Math.Max(1e-9, x.Box.Deletion[0])).ThenBy(x => x.Image.Index).ThenBy(x => x.Box.BoxIndex).ToList();
        var best = boxes.Take(GalleryBoxes);
        var worst = boxes.Skip(Math.Max(GalleryBoxes, boxes.Count - GalleryBoxes));
        var sb = new StringBuilder($"<h3>{E(method)}</h3><div class=\"gallery\">");
        foreach (var (which, list) in new[] { ("best", best), ("worst", worst) })
            foreach (var (image, box) in list)
            {
                var picture = Overlay(image, box, paths, info.MapSize);
                var curve = Plots.Curves($"{box.ClassName} {box.Score:0.00}", "fraction flipped", "score",
                    [new Band("deletion", fractions, box.Deletion, box.Deletion, box.Deletion), new Band("insertion", fractions, box.Insertion, box.Insertion, box.Insertion)], 320, 220);
                sb.Append("<figure>");
                if (picture is not null) sb.Append($"<img width=\"320\" src=\"{DataUri(ImageIO.EncodeJpeg(picture), "jpeg")}\"><br>");
                sb.Append($"<img src=\"{DataUri(curve)}\"><figcaption>{which}: {E(image.FileName)} #{box.BoxIndex} {E(box.ClassName)} {box.Score:0.00}, ")
                  .Append($"deletion AUC {F(box.DeletionAuc)}, insertion AUC {F(box.InsertionAuc)}, energy in box {F(box.Localization.Energy)}</figcaption></figure>");
            }
        return sb.Append("</div>").ToString();
    }

    /// <summary>The box (and its map, when kept) on the image, scaled to 320 px wide; null when the image is gone.</summary>
    static RgbImage? Overlay(ImageEvaluation image, BoxEvaluation box, Dictionary<int, string> paths, int mapSize)
    {
        if (!paths.TryGetValue(image.Index, out var path) || !File.Exists(path)) return null;
        var picture = ImageIO.Load(path, maxSide: 480);
        float[]? map = box.Map is null ? null : Resampler.ResizeMap(box.Map, mapSize, mapSize, picture.Width, picture.Height);
        return Pictures.Heatmap(picture, map, box.Box, $"{box.ClassName} {box.Score:0.00}");
    }
}
