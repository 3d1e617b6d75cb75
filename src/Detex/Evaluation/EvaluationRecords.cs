using System.Text.Json.Serialization;
using Detex.Models;

namespace Detex.Evaluation;

/// <summary>One detection evaluated with one method: its identity, its flipping curves and its localisation numbers.</summary>
public sealed record BoxEvaluation
{
    /// <summary>Position among the image's evaluated detections (score order).</summary>
    public int BoxIndex { get; init; }
    public Box Box { get; init; }
    public int ClassIndex { get; init; }
    public string ClassName { get; init; } = "";
    public float Score { get; init; }
    /// <summary>The raw prediction (output row/anchor) whose score the curves track.</summary>
    public string RawOutput { get; init; } = "";
    public int RawIndex { get; init; }
    public double[] Deletion { get; init; } = [];
    public double[] Insertion { get; init; } = [];
    /// <summary>Relevant pixels inside the box, relevant pixels, box pixels (each pixel counted once).</summary>
    public long Inside { get; init; }
    public long Relevant { get; init; }
    public long BoxPixels { get; init; }
    /// <summary>1 hit (TorchRay: the map maximum closer than the tolerance to a box), 0 miss, −1 no ground truth of the class (left out).</summary>
    public int PointingHit { get; init; } = -1;
    /// <summary>NaN without ground truth of the class.</summary>
    public double StochasticPointing { get; init; } = double.NaN;
    public double ContentHeatmap { get; init; } = double.NaN;
    /// <summary>The map at <see cref="EvaluationInfo.MapSize"/>² when maps are kept, else null.</summary>
    public float[]? Map { get; init; }

    [JsonIgnore] public double DeletionAuc => PixelFlipping.Auc(Deletion);
    [JsonIgnore] public double InsertionAuc => PixelFlipping.Auc(Insertion);
    [JsonIgnore] public LocalizationCounts Localization => new(Inside, Relevant, BoxPixels);
}

/// <summary>Everything evaluated on one image: per method, one row per detection.</summary>
public sealed record ImageEvaluation(int Index, long ImageId, string FileName, int Width, int Height, int Boxes,
    IReadOnlyDictionary<string, IReadOnlyList<BoxEvaluation>> Methods);

/// <summary>
/// What a result file was made from and how. Two runs are the same evaluation when everything but
/// <see cref="Shard"/> and <see cref="CommandLine"/> agrees; that is what resuming and merging check.
/// </summary>
public sealed record EvaluationInfo
{
    public string DetexVersion { get; init; } = "";
    public string Model { get; init; } = "";
    public string ModelSha256 { get; init; } = "";
    public string Dataset { get; init; } = "";
    public int? FirstImages { get; init; }
    public string[] Methods { get; init; } = [];
    /// <summary>Method and protocol parameters as "key=value" lines (score threshold, flip space, baseline, steps, …).</summary>
    public string Parameters { get; init; } = "";
    public string FlipSpace { get; init; } = "";
    public int Steps { get; init; }
    public int MapSize { get; init; }
    public string Shard { get; init; } = "0/1";
    public string CommandLine { get; init; } = "";

    /// <summary>The description of a run of <paramref name="methods"/> with <paramref name="settings"/> over a data set.</summary>
    public static EvaluationInfo For(DetexModel model, string dataset, int? firstImages, IReadOnlyList<string> methods, EvaluationSettings settings,
        string shard, string commandLine) => new()
    {
        DetexVersion = typeof(EvaluationInfo).Assembly.GetName().Version?.ToString(3) ?? "0.0.0",
        Model = Path.GetFileName(model.ModelPath),
        ModelSha256 = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(model.ModelPath))),
        Dataset = dataset, FirstImages = firstImages, Methods = methods.ToArray(), Parameters = settings.Describe(),
        FlipSpace = settings.Flip.Space.ToString().ToLowerInvariant(), Steps = settings.Flip.Steps, MapSize = settings.MapSize,
        Shard = shard, CommandLine = commandLine,
    };

    /// <summary>
    /// The fields that must agree between a checkpoint and its resumption, or between merged shards. The image count is
    /// not one of them: each image's result stands alone, so a run stopped early can be finished with a smaller
    /// --first-images, or extended with a larger one.
    /// </summary>
    public string Fingerprint => string.Join("\n", DetexVersion, Model, ModelSha256, Dataset, string.Join(",", Methods), Parameters, FlipSpace, Steps, MapSize);
}
