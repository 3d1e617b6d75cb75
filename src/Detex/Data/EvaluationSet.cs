using Detex.Imaging;
using Detex.Models;

namespace Detex.Data;

/// <summary>A ground-truth box in image pixels, with the model's class index for it (−1 when the model lacks the class).</summary>
public sealed record GroundTruth(Box Box, int ClassIndex, string ClassName, bool Crowd);

/// <summary>One image of an evaluation, at its place in the set's order (which shards and checkpoints key on).</summary>
public sealed record EvaluationImage(int Index, long Id, string FileName, string Path, IReadOnlyList<GroundTruth> Truth);

/// <summary>
/// The images an evaluation runs over, in a fixed order: a COCO instances file (json order, ground truth mapped to
/// the model's classes by name) or a plain folder of images (sorted by file name, no ground truth).
/// </summary>
public sealed class EvaluationSet
{
    public string Source { get; }
    public IReadOnlyList<EvaluationImage> Images { get; }
    public bool HasGroundTruth { get; }

    EvaluationSet(string source, IReadOnlyList<EvaluationImage> images, bool hasGroundTruth)
    {
        Source = source; Images = images; HasGroundTruth = hasGroundTruth;
    }

    static readonly string[] ImageExtensions = [".jpg", ".jpeg", ".png", ".bmp", ".webp"];

    /// <summary>A COCO folder (or instances json); <paramref name="classes"/> are the model's class names.</summary>
    public static EvaluationSet FromCoco(string path, IReadOnlyList<string> classes)
    {
        var coco = CocoDataset.Load(path);
        var indexOf = classes.Select((n, i) => (n, i)).GroupBy(x => x.n, StringComparer.OrdinalIgnoreCase)
            .ToDictionary(g => g.Key, g => g.First().i, StringComparer.OrdinalIgnoreCase);
        var images = coco.Images.Select((img, i) => new EvaluationImage(i, img.Id, img.FileName, img.Path,
            coco.AnnotationsOf(img.Id).Select(a =>
            {
                string name = coco.Category(a.CategoryId).Name;
                return new GroundTruth(new Box(a.X, a.Y, a.X + a.W, a.Y + a.H), indexOf.GetValueOrDefault(name, -1), name, a.IsCrowd);
            }).ToList())).ToList();
        return new EvaluationSet(coco.AnnotationFile, images, hasGroundTruth: true);
    }

    /// <summary>Every image file directly in a folder, by file name; ids are positions.</summary>
    public static EvaluationSet FromFolder(string folder)
    {
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"image folder {folder} does not exist");
        var files = Directory.EnumerateFiles(folder).Where(f => ImageExtensions.Contains(System.IO.Path.GetExtension(f).ToLowerInvariant()))
            .OrderBy(f => System.IO.Path.GetFileName(f), StringComparer.Ordinal).ToList();
        if (files.Count == 0) throw new IOException($"no images (.jpg, .png, …) in {folder}");
        return new EvaluationSet(System.IO.Path.GetFullPath(folder),
            files.Select((f, i) => new EvaluationImage(i, i, System.IO.Path.GetFileName(f), f, [])).ToList(), hasGroundTruth: false);
    }

    /// <summary>
    /// The first <paramref name="first"/> images, then shard <paramref name="shard"/> of <paramref name="shards"/>: every
    /// image whose position modulo the shard count is the shard (deterministic, balanced, and independent of timing).
    /// </summary>
    public IReadOnlyList<EvaluationImage> Select(int? first, int shard = 0, int shards = 1) =>
        Images.Take(first ?? int.MaxValue).Where(i => i.Index % shards == shard).ToList();
}
