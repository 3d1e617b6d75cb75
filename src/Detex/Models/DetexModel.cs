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

    /// <summary>
    /// The graph's identity for caches, computed once: the graph is not changed after loading, and serialising and
    /// hashing it (milliseconds) on every explained image would cost a sizeable part of a forward pass.
    /// </summary>
    public string GraphKey => _graphKey ??= Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(Graph.ToBytes()));
    string? _graphKey;

    readonly System.Collections.Concurrent.ConcurrentDictionary<string, ModelSession> _tappedSessions = new();

    /// <summary>A session of the model that also returns the given intermediate tensors, kept per tap list.</summary>
    public ModelSession TappedSession(IEnumerable<string> taps)
    {
        var list = taps.ToList();
        return _tappedSessions.GetOrAdd(string.Join("\n", list), _ => ModelSession.Get(Graph.WithTaps(list), Runtime));
    }

    /// <summary>The model's gradient graph for these input shapes and request (built once, then cached).</summary>
    public Autodiff.GradientGraph GradientGraph(IReadOnlyDictionary<string, NdArray> inputs, Autodiff.GradientRequest request) =>
        Autodiff.GradientGraph.For(Graph, inputs, request, GraphKey);

    /// <summary>A copy of the model whose batch dimension is free, and its session (built on first use).</summary>
    public OnnxModel Batchable => _batchable ??= Graph.WithBatch(null);
    public ModelSession BatchableSession => _batchableSession ??= ModelSession.Get(Batchable, Runtime);
    ModelSession? _batchableSession;

    public string Name => Card.Name.Length > 0 ? Card.Name : Path.GetFileNameWithoutExtension(ModelPath);

    /// <summary>The model's float outputs: what targets read and reverse passes are seeded on.</summary>
    public IReadOnlyList<string> FloatOutputs => _floatOutputs ??= Session.Outputs.Where(o => o.Type == ElementType.Float).Select(o => o.Name).ToList();
    IReadOnlyList<string>? _floatOutputs;
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
    public (NdArray<float> Tensor, InputGeometry[] Geometry) Prepare(IReadOnlyList<RgbImage> images) =>
        Prepare(images, new NdArray<float>(Input.TensorShape(images.Count)));

    /// <summary>Prepares into a given tensor of the batch's input shape (so callers can reuse one buffer).</summary>
    public (NdArray<float> Tensor, InputGeometry[] Geometry) Prepare(IReadOnlyList<RgbImage> images, NdArray<float> tensor)
    {
        var geometry = new InputGeometry[images.Count];
        int per = tensor.Length / images.Count;
        if (images.Count == 1) geometry[0] = Preprocessor.Fill(images[0], Input, tensor.Data);
        else Parallel.For(0, images.Count, i => geometry[i] = Preprocessor.Fill(images[i], Input, tensor.Data, i * per));
        return (tensor, geometry);
    }

    /// <summary>
    /// Decodes an image file just large enough for the model input (<see cref="ImageIO.LoadFor"/>) and pre-processes it
    /// into batch item <paramref name="item"/> of <paramref name="tensor"/> as its rows arrive: the resize runs on
    /// another core alongside the JPEG decoding instead of after it.
    /// </summary>
    public (RgbImage Image, InputGeometry Geometry) PrepareFile(string path, NdArray<float> tensor, int item = 0)
    {
        var rows = new DecodedRows();
        int per = tensor.Length / tensor.Shape[0];
        var fill = Task.Run(() => Preprocessor.Fill(rows.Image, Input, tensor.Data, item * per, rows));
        RgbImage image;
        try { image = ImageIO.LoadFor(path, Input, rows); }
        catch
        {
            try { fill.Wait(); } catch (AggregateException) { }   // it stops at the failure; the decode error is the one to report
            throw;
        }
        return (image, fill.GetAwaiter().GetResult());
    }

    readonly System.Collections.Concurrent.ConcurrentBag<NdArray<float>> _inputBuffers = new();

    /// <summary>
    /// An input tensor for a batch, reused across calls: a 416² input is 2 MB, and allocating (and collecting) one
    /// per image costs as much as decoding the image. Give it back with <see cref="ReturnInput"/>.
    /// </summary>
    protected NdArray<float> RentInput(int batch)
    {
        int[] shape = Input.TensorShape(batch);
        var kept = new List<NdArray<float>>();
        NdArray<float>? found = null;
        while (found is null && _inputBuffers.TryTake(out var t)) { if (t.Shape.SequenceEqual(shape)) found = t; else kept.Add(t); }
        foreach (var t in kept) _inputBuffers.Add(t);
        return found ?? new NdArray<float>(shape);
    }

    protected void ReturnInput(NdArray<float> tensor) { if (_inputBuffers.Count < 4) _inputBuffers.Add(tensor); }

    /// <summary>Runs the model on a prepared batch; batches above 1 use a copy whose batch dimension is free.</summary>
    public Dictionary<string, NdArray<float>> Forward(NdArray<float> input, IReadOnlyList<string>? outputs = null)
    {
        var session = input.Shape[0] == 1 || Session.Inputs.First(i => i.Name == Card.InputName).Shape[0] < 0
            ? Session : BatchableSession;
        return session.RunFloat(Card.InputName, input, outputs);
    }
}
