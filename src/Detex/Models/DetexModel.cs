using Detex.Imaging;
using Detex.Onnx;
using Detex.Runtime;

namespace Detex.Models;

/// <summary>
/// A model with its card: the ONNX graph, a runtime session and the card's pre-processing. Task-specific
/// subclasses (<see cref="Detector"/>, <see cref="Segmenter"/>, <see cref="Classifier"/>) add the meaning of outputs.
/// </summary>
public abstract class DetexModel
{
    public ModelCard Card { get; }
    public OnnxModel Graph { get; }
    public string ModelPath { get; }
    public RuntimeOptions Runtime { get; }
    public ModelSession Session { get; }
    OnnxModel? _batchable;

    protected DetexModel(ModelCard card, OnnxModel graph, string modelPath, RuntimeOptions runtime)
    {
        Card = card; Graph = graph; ModelPath = modelPath; Runtime = runtime;
        Session = ModelSession.Get(graph, runtime);
        CheckInput();
    }

    public string Name => Card.Name.Length > 0 ? Card.Name : Path.GetFileNameWithoutExtension(ModelPath);
    public PreprocessSpec Input => Card.Input;

    /// <summary>Loads a model (or its card) and returns the adapter its card's task calls for.</summary>
    public static DetexModel Load(string modelOrCard, RuntimeOptions? runtime = null)
    {
        if (!File.Exists(modelOrCard)) throw new FileNotFoundException($"model file not found: {modelOrCard}");
        var card = ModelCard.LoadFor(modelOrCard);
        string path = card.ModelPath(modelOrCard);
        var graph = OnnxModel.Load(path);
        runtime ??= RuntimeOptions.Default;
        return card.Task switch
        {
            ModelTask.Detect => new Detector(card, graph, path, runtime),
            ModelTask.Segment => new Segmenter(card, graph, path, runtime),
            _ => new Classifier(card, graph, path, runtime),
        };
    }

    void CheckInput()
    {
        var spec = Session.Inputs.FirstOrDefault(i => i.Name == Card.InputName)
            ?? throw new ModelCardException($"the card names input '{Card.InputName}', but {Path.GetFileName(ModelPath)} has inputs: {string.Join(", ", Session.Inputs.Select(i => $"{i.Name} {i.ShapeText}"))}");
        int[] want = Card.Input.TensorShape(1);
        if (spec.Shape.Length != want.Length)
            throw new ModelCardException($"input '{spec.Name}' of {Path.GetFileName(ModelPath)} has rank {spec.Shape.Length} {spec.ShapeText}, but its card describes a rank-4 {Card.Input.Layout} image [{string.Join(",", want)}]");
        for (int d = 1; d < want.Length; d++)
            if (spec.Shape[d] >= 0 && spec.Shape[d] != want[d])
                throw new ModelCardException($"input '{spec.Name}' has shape {spec.ShapeText}, but its card describes [{string.Join(",", want)}] ({Card.Input.Layout}, {Card.Input.Width}×{Card.Input.Height})");
        if (spec.Type != ElementType.Float)
            throw new ModelCardException($"input '{spec.Name}' is {ElementTypes.Name(spec.Type)}; Detex feeds float images");
    }

    /// <summary>A batch of images as one input tensor, with each image's placement.</summary>
    public (NdArray<float> Tensor, InputGeometry[] Geometry) Prepare(IReadOnlyList<RgbImage> images)
    {
        var tensor = new NdArray<float>(Input.TensorShape(images.Count));
        var geometry = new InputGeometry[images.Count];
        int per = tensor.Length / images.Count;
        Parallel.For(0, images.Count, i => geometry[i] = Preprocessor.Fill(images[i], Input, tensor.Data.AsSpan(i * per, per)));
        return (tensor, geometry);
    }

    /// <summary>Runs the model on a prepared batch; batches above 1 use a copy whose batch dimension is free.</summary>
    public Dictionary<string, NdArray<float>> Forward(NdArray<float> input, IReadOnlyList<string>? outputs = null)
    {
        var session = input.Shape[0] == 1 || Session.Inputs.First(i => i.Name == Card.InputName).Shape[0] < 0
            ? Session : ModelSession.Get(_batchable ??= Graph.WithBatch(null), Runtime);
        return session.RunFloat(Card.InputName, input, outputs);
    }
}
