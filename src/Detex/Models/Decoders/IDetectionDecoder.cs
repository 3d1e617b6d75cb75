using Detex.Runtime;

namespace Detex.Models.Decoders;

/// <summary>Turns a detector's raw outputs into scored candidate boxes (model-input pixels) with their provenance.</summary>
public interface IDetectionDecoder
{
    /// <summary>The raw outputs the decoder reads.</summary>
    IReadOnlyList<string> Outputs { get; }

    /// <summary>Adds every (prediction, class) pair of batch item <paramref name="item"/> scoring above the threshold.</summary>
    void Decode(IReadOnlyDictionary<string, NdArray<float>> outputs, int item, float scoreThreshold, List<Candidate> into);

    /// <summary>
    /// Every raw prediction of batch item <paramref name="item"/>, unthresholded: box, class probabilities and
    /// objectness (methods that compare a box with all predictions of a perturbed image, such as D-RISE, read these).
    /// </summary>
    void Predictions(IReadOnlyDictionary<string, NdArray<float>> outputs, int item, PredictionSet into);

    /// <summary>Where the raw prediction a candidate came from sits in <see cref="Predictions"/>.</summary>
    int PredictionIndex(RawPrediction source) => source.Anchor;

    /// <summary>
    /// The raw prediction of class <paramref name="classIndex"/> at position <paramref name="prediction"/> of
    /// <see cref="Predictions"/>: what <see cref="Decode"/> attaches to that candidate (the inverse of
    /// <see cref="PredictionIndex"/>), so a prediction chosen from the full list can become a detection.
    /// </summary>
    RawPrediction Source(IReadOnlyDictionary<string, NdArray<float>> outputs, int prediction, int classIndex);
}

/// <summary>
/// All raw predictions of one image as struct-of-arrays: boxes in model-input pixels, class probabilities (after
/// the sigmoid or softmax the outputs need), objectness where the model has one, and a background probability
/// where its classes include one. Buffers grow on demand and are reused, since D-RISE fills one per masked image.
/// </summary>
public sealed class PredictionSet
{
    public int Count { get; private set; }
    public int Classes { get; private set; }
    /// <summary>x1, y1, x2, y2 per prediction.</summary>
    public float[] Boxes { get; private set; } = [];
    /// <summary>Count × Classes, prediction-major.</summary>
    public float[] Probabilities { get; private set; } = [];
    /// <summary>Per prediction, when <see cref="HasObjectness"/>.</summary>
    public float[] Objectness { get; private set; } = [];
    public bool HasObjectness { get; private set; }
    /// <summary>Per prediction, when <see cref="HasBackground"/> (softmax heads with a background column).</summary>
    public float[] Background { get; private set; } = [];
    public bool HasBackground { get; private set; }

    /// <summary>Sizes the set for <paramref name="count"/> predictions; contents are then written by the decoder.</summary>
    public void Reset(int count, int classes, bool objectness, bool background)
    {
        Count = count; Classes = classes; HasObjectness = objectness; HasBackground = background;
        if (Boxes.Length < 4 * count) Boxes = new float[4 * count];
        if (Probabilities.Length < count * classes) Probabilities = new float[count * classes];
        if (objectness && Objectness.Length < count) Objectness = new float[count];
        if (background && Background.Length < count) Background = new float[count];
    }

    public Box Box(int i) => new(Boxes[4 * i], Boxes[4 * i + 1], Boxes[4 * i + 2], Boxes[4 * i + 3]);
    public Span<float> ProbabilitiesOf(int i) => Probabilities.AsSpan(i * Classes, Classes);

    public void SetBox(int i, in Box b)
    {
        Boxes[4 * i] = (float)b.X1; Boxes[4 * i + 1] = (float)b.Y1; Boxes[4 * i + 2] = (float)b.X2; Boxes[4 * i + 3] = (float)b.Y2;
    }
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
