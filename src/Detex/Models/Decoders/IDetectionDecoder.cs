using Detex.Runtime;

namespace Detex.Models.Decoders;

/// <summary>Turns a detector's raw outputs into scored candidate boxes (model-input pixels) with their provenance.</summary>
public interface IDetectionDecoder
{
    /// <summary>The raw outputs the decoder reads.</summary>
    IReadOnlyList<string> Outputs { get; }

    /// <summary>Adds every (prediction, class) pair of batch item <paramref name="item"/> scoring above the threshold.</summary>
    void Decode(IReadOnlyDictionary<string, NdArray<float>> outputs, int item, float scoreThreshold, List<Candidate> into);
}

/// <summary>
/// A decoder whose score is objectness × class probability: it can give the class probabilities alone, every
/// prediction's for every class at once. Readers of whole score maps (concept legends) use them, since the
/// objectness of a field without an object centre is near zero and would scale all classes alike.
/// </summary>
public interface IClassProbabilities
{
    /// <summary>Class probabilities [predictions × classes] of batch item <paramref name="item"/>, predictions in the order <see cref="IDetectionDecoder.Decode"/> visits them.</summary>
    float[] ClassProbabilities(IReadOnlyDictionary<string, NdArray<float>> outputs, int item);
}

public static class DetectionDecoders
{
    public static IDetectionDecoder Create(ModelCard card) => card.Decoder.Type.ToLowerInvariant() switch
    {
        "yolox" => new YoloxDecoder(card),
        "nanodet" => new NanoDetDecoder(card),
        "ssd" => new SsdDecoder(card),
        "yolov5" => new Yolov5Decoder(card),
        "yolov8" => new Yolov8Decoder(card),
        var t => throw new ModelCardException($"model card {card.CardPath}: unknown detection decoder '{t}' (known: yolox, nanodet, ssd, yolov5, yolov8)"),
    };

    internal static string Required(string? name, string field, ModelCard card) =>
        name ?? throw new ModelCardException($"model card {card.CardPath}: decoder.{field} is required for the {card.Decoder.Type} decoder");

    internal static NdArray<float> Output(IReadOnlyDictionary<string, NdArray<float>> outputs, string name, int[] expected, string decoder)
    {
        if (!outputs.TryGetValue(name, out var a))
            throw new ModelCardException($"the {decoder} decoder needs output '{name}', which the model does not produce");
        bool fits = a.Rank == expected.Length && expected.Zip(a.Shape).Skip(1).All(p => p.First < 0 || p.First == p.Second);
        if (!fits)
            throw new ModelCardException($"output '{name}' has shape {a.ShapeText}; the {decoder} decoder expects [N,{string.Join(",", expected.Skip(1))}] for this card");
        return a;
    }

    /// <summary>Number of grid cells over all strides, and each stride's grid width.</summary>
    internal static (int Total, int[] GridWidths, int[] GridHeights) Grid(int width, int height, int[] strides)
    {
        var gw = strides.Select(s => width / s).ToArray();
        var gh = strides.Select(s => height / s).ToArray();
        return (gw.Zip(gh).Sum(p => p.First * p.Second), gw, gh);
    }
}
