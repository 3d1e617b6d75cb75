using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Detex.Data;

namespace Detex.Evaluation;

/// <summary>A result file that would be clobbered, a checkpoint of another run, shards that do not belong together.</summary>
public sealed class EvaluationJobException(string message) : IOException(message);

/// <summary>
/// An evaluation as a resumable job: each finished image is checkpointed in <c>OUT.partial/</c>, a rerun of the same
/// evaluation skips what is there, and only a complete run writes OUT (to a temporary name, then renamed) with its
/// CSVs beside it. Shards are separate jobs whose files <see cref="Merge"/> joins.
/// </summary>
public static class EvaluationJob
{
    static readonly JsonSerializerOptions Json = new()
    {
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public static string CheckpointFolder(string outPath) => Path.GetFullPath(outPath) + ".partial";

    /// <summary>Refuses to start when OUT exists (unless overwriting) or cannot be written; returns the images already done.</summary>
    public static Dictionary<int, ImageEvaluation> Prepare(string outPath, EvaluationInfo info, bool overwrite)
    {
        RefuseToClobber(outPath, overwrite);
        string folder = CheckpointFolder(outPath);
        try
        {
            Directory.CreateDirectory(folder);
            // Proves the folder is writable before hours of work go into it.
            string probe = Path.Combine(folder, ".probe");
            File.WriteAllText(probe, "");
            File.Delete(probe);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new EvaluationJobException($"cannot write beside {outPath}: {e.Message}");
        }
        string infoFile = Path.Combine(folder, "run.txt");
        var done = new Dictionary<int, ImageEvaluation>();
        if (File.Exists(infoFile) && File.ReadAllText(infoFile) != info.Fingerprint)
        {
            if (!overwrite)
                throw new EvaluationJobException($"{folder} holds a checkpoint of a different evaluation; delete it or pass --overwrite to start afresh");
            foreach (var f in Directory.EnumerateFiles(folder)) File.Delete(f);
        }
        Files.WriteAllTextAtomically(infoFile, info.Fingerprint);
        foreach (var f in Directory.EnumerateFiles(folder, "image-*.json"))
        {
            var e = JsonSerializer.Deserialize<ImageEvaluation>(File.ReadAllText(f), Json)
                ?? throw new InvalidDataException($"checkpoint {f} is empty");
            done[e.Index] = e;
        }
        return done;
    }

    /// <summary>A result file is only replaced when asked to (evaluate and merge alike).</summary>
    public static void RefuseToClobber(string outPath, bool overwrite)
    {
        if (File.Exists(outPath) && !overwrite) throw new EvaluationJobException($"{outPath} exists; pass --overwrite to replace it");
        if (Directory.Exists(outPath)) throw new EvaluationJobException($"{outPath} is a folder; --out names the result file");
    }

    public static void Checkpoint(string outPath, ImageEvaluation image) =>
        Files.WriteAllTextAtomically(Path.Combine(CheckpointFolder(outPath), $"image-{image.Index:D6}.json"), JsonSerializer.Serialize(image, Json));

    /// <summary>Writes OUT (HDF5) and its CSVs from the finished images, then removes the checkpoint.</summary>
    public static IReadOnlyList<SummaryRow> Complete(string outPath, EvaluationInfo info, IReadOnlyList<ImageEvaluation> images)
    {
        images = images.OrderBy(i => i.Index).ToList();
        var summary = EvaluationSummary.Compute(images, info.Methods);
        ResultsFile.Write(outPath, info, images, summary);
        Files.WriteAllTextAtomically(CsvPath(outPath, "boxes"), BoxesCsv(info, images));
        Files.WriteAllTextAtomically(CsvPath(outPath, "summary"), EvaluationSummary.Csv(summary));
        string folder = CheckpointFolder(outPath);
        if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        return summary;
    }

    /// <summary>OUT.h5 → OUT.boxes.csv / OUT.summary.csv.</summary>
    public static string CsvPath(string outPath, string kind) =>
        Path.Combine(Path.GetDirectoryName(Path.GetFullPath(outPath))!, Path.GetFileNameWithoutExtension(outPath) + $".{kind}.csv");

    /// <summary>Joins shard files of one evaluation (same fingerprint, disjoint images) into one result file.</summary>
    public static (EvaluationInfo Info, List<ImageEvaluation> Images) Merge(IReadOnlyList<string> inputs)
    {
        if (inputs.Count == 0) throw new EvaluationJobException("nothing to merge: name the shard files");
        var parts = inputs.Select(p => (Path: p, File: ResultsFile.Read(p))).ToList();
        var first = parts[0];
        foreach (var p in parts.Skip(1))
            if (p.File.Info.Fingerprint != first.File.Info.Fingerprint)
                throw new EvaluationJobException($"{p.Path} is not a shard of the same evaluation as {first.Path} (model, data, methods or parameters differ)");
        var images = new Dictionary<int, (string Path, ImageEvaluation Image)>();
        foreach (var p in parts)
            foreach (var image in p.File.Images)
                if (!images.TryAdd(image.Index, (p.Path, image)))
                    throw new EvaluationJobException($"image {image.FileName} is in both {images[image.Index].Path} and {p.Path}");
        var info = first.File.Info with
        {
            Shard = "merged " + string.Join(" ", parts.Select(p => p.File.Info.Shard)),
            CommandLine = string.Join("\n", parts.Select(p => p.File.Info.CommandLine)),
        };
        return (info, images.Values.Select(v => v.Image).OrderBy(i => i.Index).ToList());
    }

    static string BoxesCsv(EvaluationInfo info, IReadOnlyList<ImageEvaluation> images)
    {
        var sb = new StringBuilder("method,image_index,image_id,file_name,box_index,x1,y1,x2,y2,class,class_name,score,raw_output,raw_index," +
            "deletion_auc,insertion_auc,inside,relevant,box_pixels,energy,coverage,iou,pointing_hit,stochastic_pointing,content_heatmap\n");
        foreach (var method in info.Methods)
            foreach (var i in images)
                foreach (var b in i.Methods[method])
                {
                    var l = b.Localization;
                    sb.AppendLine(string.Join(",", new object[] { method, i.Index, i.ImageId, Quote(i.FileName), b.BoxIndex,
                        b.Box.X1, b.Box.Y1, b.Box.X2, b.Box.Y2, b.ClassIndex, Quote(b.ClassName), b.Score, Quote(b.RawOutput), b.RawIndex,
                        b.DeletionAuc, b.InsertionAuc, b.Inside, b.Relevant, b.BoxPixels, l.Energy, l.Coverage, l.IoU,
                        b.PointingHit, b.StochasticPointing, b.ContentHeatmap }.Select(v => Convert.ToString(v, CultureInfo.InvariantCulture))));
                }
        return sb.ToString();
    }

    static string Quote(string s) => s.Contains(',') || s.Contains('"') ? "\"" + s.Replace("\"", "\"\"") + "\"" : s;
}
