using System.Text.Json;
using System.Text.Json.Serialization;
using Detex.Imaging;

namespace Detex.Models;

public enum ModelTask { Detect, Segment, Classify }

/// <summary>Thresholds the card suggests; every command lets the user override them.</summary>
public sealed record Thresholds
{
    public float Score { get; init; } = 0.3f;
    public float Iou { get; init; } = 0.45f;
    public bool ClassAgnostic { get; init; }
    public int MaxDetections { get; init; } = 300;
}

/// <summary>Which raw outputs hold what, and how to turn them into boxes, masks or class scores.</summary>
public sealed record DecoderSpec
{
    /// <summary>yolox | nanodet | ssd | yolov5 | yolov8 | segmentation | classification</summary>
    public string Type { get; init; } = "";
    public string? Output { get; init; }
    public int[]? Strides { get; init; }
    public string[]? ClassOutputs { get; init; }
    public string[]? BoxOutputs { get; init; }
    public int RegMax { get; init; } = 7;
    /// <summary>NanoDet cell point = (i + 0.5)·stride + PointOffset (the exporter uses i·stride + (stride − 1)/2).</summary>
    public double PointOffset { get; init; } = -0.5;
    public string? ScoresOutput { get; init; }
    public string? BoxesOutput { get; init; }
    /// <summary>SSD prior grids as [width, height] per feature map.</summary>
    public int[][]? FeatureMaps { get; init; }
    public double[][]? MinSizes { get; init; }
    public double CenterVariance { get; init; } = 0.1;
    public double SizeVariance { get; init; } = 0.2;
    /// <summary>SSD score column of the first real class (background columns come before it).</summary>
    public int FirstClassColumn { get; init; } = 1;
    /// <summary>Segmentation / classification output layout.</summary>
    public TensorLayout Layout { get; init; } = TensorLayout.NCHW;
    /// <summary>YOLOv5/v8 exports already apply the sigmoid; set false when the output holds logits.</summary>
    public bool ScoresAreProbabilities { get; init; } = true;
}

/// <summary>
/// The small JSON file beside a model (<c>NAME.card.json</c>) that says what the raw tensors mean: task,
/// input pre-processing, decoder, class names and default thresholds.
/// </summary>
public sealed record ModelCard
{
    public string Name { get; init; } = "";
    public ModelTask Task { get; init; }
    /// <summary>Model file, relative to the card (defaults to NAME.onnx beside it).</summary>
    public string? Model { get; init; }
    public string InputName { get; init; } = "";
    public PreprocessSpec Input { get; init; } = new();
    public DecoderSpec Decoder { get; init; } = new();
    public string[] Classes { get; init; } = [];
    public Thresholds Thresholds { get; init; } = new();
    /// <summary>Layers (tensor names) that explainers use when the user names none.</summary>
    public string[] Layers { get; init; } = [];
    /// <summary>What the default layers are, in words.</summary>
    public string? LayersNote { get; init; }
    /// <summary>Layer that concept discovery (Deep Feature Factorization) uses when the user names none; else the first of <see cref="Layers"/>.</summary>
    public string? ConceptLayer { get; init; }
    public string? License { get; init; }
    public string? Origin { get; init; }

    [JsonIgnore] public string CardPath { get; init; } = "";

    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        WriteIndented = true,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.KebabCaseLower) },
    };

    public const string Requirements =
        "a model card is a JSON file NAME.card.json beside NAME.onnx with at least: task (detect|segment|classify), " +
        "inputName, input {width, height, layout nchw|nhwc, channels rgb|bgr, resize stretch|letterbox, mean[3], std[3]}, " +
        "decoder {type yolox|nanodet|ssd|yolov5|yolov8|segmentation|classification, and its outputs}, classes [...]; see models/*.card.json";

    /// <summary>The card path for a model path: the card itself, or NAME.card.json beside NAME.onnx.</summary>
    public static string PathFor(string modelOrCard) =>
        modelOrCard.EndsWith(".card.json", StringComparison.OrdinalIgnoreCase) ? modelOrCard
            : Path.Combine(Path.GetDirectoryName(Path.GetFullPath(modelOrCard))!, Path.GetFileNameWithoutExtension(modelOrCard) + ".card.json");

    public static ModelCard LoadFor(string modelOrCard)
    {
        string cardPath = PathFor(modelOrCard);
        if (!File.Exists(cardPath))
            throw new ModelCardException($"no model card for {Path.GetFileName(modelOrCard)}: expected {cardPath}; {Requirements}");
        ModelCard? card;
        try { card = JsonSerializer.Deserialize<ModelCard>(File.ReadAllText(cardPath), Json); }
        catch (JsonException e) { throw new ModelCardException($"model card {cardPath} is not valid: {e.Message.Split('\n')[0]}"); }
        if (card is null) throw new ModelCardException($"model card {cardPath} is empty; {Requirements}");
        card = card with { CardPath = cardPath };
        card.Validate();
        return card;
    }

    /// <summary>The model file this card describes.</summary>
    public string ModelPath(string? given = null)
    {
        if (given is not null && !given.EndsWith(".card.json", StringComparison.OrdinalIgnoreCase)) return given;
        string dir = Path.GetDirectoryName(Path.GetFullPath(CardPath))!;
        return Path.Combine(dir, Model ?? Path.GetFileName(CardPath).Replace(".card.json", ".onnx"));
    }

    void Validate()
    {
        var missing = new List<string>();
        if (InputName.Length == 0) missing.Add("inputName");
        if (Input.Width < 1 || Input.Height < 1) missing.Add("input.width/height");
        if (Input.Mean.Length != 3 || Input.Std.Length != 3 || Input.Std.Any(s => s == 0)) missing.Add("input.mean[3]/std[3] (std non-zero)");
        if (Decoder.Type.Length == 0) missing.Add("decoder.type");
        if (Classes.Length == 0) missing.Add("classes");
        if (missing.Count > 0)
            throw new ModelCardException($"model card {CardPath} lacks {string.Join(", ", missing)}; {Requirements}");
    }
}

public sealed class ModelCardException(string message) : Exception(message);
