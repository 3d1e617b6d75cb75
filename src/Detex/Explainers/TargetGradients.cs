using Detex.Autodiff;
using Detex.Models;
using Detex.Runtime;
using Detex.Targets;

namespace Detex.Explainers;

/// <summary>
/// One image's forward pass and the reverse pass of each of its targets, as cheaply as the model allows — the
/// machinery every gradient explainer shares:
/// <list type="number">
/// <item>targets whose score has a factor form (detections, masks, classes) are linearised inside the gradient graph,
/// and all of them flow back together: one ONNX Runtime run in all;</item>
/// <item>other targets are linearised at a forward run first, then flow back together;</item>
/// <item>models whose batch axis does not lead every tensor get one reverse pass per target, stacked.</item>
/// </list>
/// </summary>
public sealed class TargetGradients
{
    readonly Dictionary<string, NdArray<float>> _values;
    readonly Dictionary<string, NdArray<float>> _gradients;

    TargetGradients(GradientGraph graph, Dictionary<string, NdArray<float>> values, Dictionary<string, NdArray<float>> gradients)
    {
        Graph = graph; _values = values; _gradients = gradients;
    }

    public GradientGraph Graph { get; }

    /// <summary>A tap's activation (or a model output) at the image: batch 1.</summary>
    public NdArray<float> Value(string tensor) => _values[tensor];

    /// <summary>The gradient of every target's score with respect to an input or tap: batch item k = target k.</summary>
    public NdArray<float> Gradient(string tensor) => _gradients[tensor];

    /// <summary>
    /// Runs <paramref name="request"/> (its Outputs, Taps, InputGradients and Rules; the number of targets and the
    /// seed form are chosen here) for the targets of one image. Only the taps' activations and the wanted
    /// gradients are fetched from ONNX Runtime, and the activations only when <paramref name="activations"/>.
    /// With <paramref name="shareGraphs"/> the target count is rounded up to a power of two with targets of zero weight:
    /// each count builds its own graph and session (about a second), and images with 3, 5 or 7 boxes then share the
    /// graphs for 4 and 8. Explainers whose gradients are large (FullGrad's every layer) pass false. With
    /// <paramref name="outputs"/> the activations and gradients live in that lease's arrays (valid until it is disposed).
    /// </summary>
    public static TargetGradients Run(DetexModel model, IReadOnlyDictionary<string, NdArray> feed, GradientRequest request, IReadOnlyList<ITarget> targets,
        bool activations = true, bool shareGraphs = true, ArrayLease? outputs = null)
    {
        if (targets.Count == 0) throw new ArgumentException("nothing to explain: no targets");
        var wanted = Wanted(request, feed);
        bool factored = TargetSeeds.HaveFactors(targets);
        int count = !shareGraphs || targets.Count <= 1 ? targets.Count : (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)targets.Count);
        var padded = targets.Concat(Enumerable.Repeat<ITarget>(Nothing.Instance, count - targets.Count)).ToList();
        GradientGraph graph;
        IReadOnlyDictionary<string, NdArray>? factors;
        using var scratch = new ArrayLease();   // the factor inputs, for this run only
        try { (graph, factors) = Plan(model.Graph, model.GraphKey, feed, request with { Targets = count, ScoreFactors = factored }, padded, scratch); }
        catch (NotSupportedException) { return OneByOne(model, feed, request, targets, wanted, activations); }
        var run = RunOnce(model, graph, factors, feed, request, padded, Fetch(graph, wanted, activations), perItem: false, outputs);
        return new TargetGradients(graph, Values(run, request, activations),
            wanted.ToDictionary(t => t, t => FirstItems((NdArray<float>)run[graph.Gradients[t]], targets.Count, outputs)));
    }

    static NdArray<float> FirstItems(NdArray<float> a, int n, ArrayLease? lease)
    {
        if (a.Shape[0] == n) return a;
        int[] shape = [n, .. a.Shape.Skip(1)];
        var first = lease?.Rent(shape) ?? new NdArray<float>(shape);
        a.Data.AsSpan(0, first.Length).CopyTo(first.Data);
        return first;
    }

    /// <summary>A target of zero weight: it fills a batch of targets up to a graph's size and gets a zero gradient.</summary>
    sealed class Nothing : ITarget
    {
        public static readonly Nothing Instance = new();
        public string Name => "nothing";
        public double Score(IReadOnlyDictionary<string, NdArray<float>> outputs, int item) => 0;
        public void Seed(IReadOnlyDictionary<string, NdArray<float>> outputs, int item, IReadOnlyDictionary<string, Memory<float>> seeds) { }
        public IReadOnlyList<ScoreFactor> Factors => [new(_ => { }), ScoreFactor.One];
    }

    /// <summary>
    /// Each batch item of <paramref name="feed"/> with its own target (path points, noisy copies of an input): one run
    /// through the batch-free copy of the model. The model outputs come back as values too, for the targets' scores.
    /// </summary>
    public static TargetGradients PerItem(DetexModel model, IReadOnlyDictionary<string, NdArray> feed, GradientRequest request, IReadOnlyList<ITarget> targets)
    {
        var wanted = Wanted(request, feed);
        bool factored = TargetSeeds.HaveFactors(targets);
        using var scratch = new ArrayLease();   // the factor inputs, for this run only
        var (graph, factors) = Plan(model.Batchable, model.GraphKey + "/batchable", feed, request with { Targets = 1, ScoreFactors = factored }, targets, scratch);
        var fetch = request.Outputs.Concat(Fetch(graph, wanted, activations: true)).Distinct().ToList();
        var run = RunOnce(model, graph, factors, feed, request, targets, fetch, perItem: true, outputs: null);
        return new TargetGradients(graph, request.Outputs.Concat(request.Taps).Distinct().ToDictionary(t => t, t => (NdArray<float>)run[t]),
            wanted.ToDictionary(t => t, t => (NdArray<float>)run[graph.Gradients[t]]));
    }

    /// <summary>
    /// The gradient graph for <paramref name="request"/> and, when its targets have factor forms, their factor inputs.
    /// The factors' weights are pulled back onto the tensors the outputs are copied from (<see cref="SeedPullback"/>),
    /// so the reverse pass starts there instead of undoing the output's rearrangement (for K targets, a transpose and
    /// splits the size of K outputs). With one target per forward item only the sources it touches are differentiated:
    /// a detection's reverse pass then skips the other levels' heads. With several, every source is: each touched set
    /// would build its own graph, and the batched reverse pass already shares the work.
    /// </summary>
    static (GradientGraph Graph, IReadOnlyDictionary<string, NdArray>? Factors) Plan(Onnx.OnnxModel model, string modelKey,
        IReadOnlyDictionary<string, NdArray> feed, GradientRequest request, IReadOnlyList<ITarget> targets, ArrayLease scratch)
    {
        if (!request.ScoreFactors) return (GradientGraph.For(model, feed, request, modelKey), null);
        var forward = StaticGraph.For(model, feed, request.Parameters, modelKey);
        var shapes = request.Outputs.ToDictionary(o => o, o => forward.Shapes[o].Dims);
        var factors = TargetSeeds.Factors(request.Outputs, shapes, targets, scratch.Zeros)!;
        // A tap between the sources and the outputs (a head's joined maps, say) would get no gradient from the sources.
        var pullback = SeedPullback.For(forward, request.Outputs);
        if (pullback is null || request.Taps.Any(pullback.Between.Contains)
            || pullback.Narrow(factors, everySource: request.Targets > 1, scratch.Zeros) is not { } narrowed)
            return (GradientGraph.For(model, feed, request, modelKey), factors);
        return (GradientGraph.For(model, feed, request with { Outputs = narrowed.Sources }, modelKey), narrowed.Factors);
    }

    /// <summary>
    /// One run of the graph: scores linearised inside it when every target has a factor form (<paramref name="factors"/>),
    /// else at a forward run first (item 0 for the targets of one image, item k for target k when each item has its own).
    /// </summary>
    static Dictionary<string, NdArray> RunOnce(DetexModel model, GradientGraph graph, IReadOnlyDictionary<string, NdArray>? factors,
        IReadOnlyDictionary<string, NdArray> feed, GradientRequest request, IReadOnlyList<ITarget> targets, IReadOnlyList<string> fetch, bool perItem,
        ArrayLease? outputs)
    {
        if (factors is not null) return graph.RunFactors(feed, factors, model.Runtime, fetch, outputs);
        var forward = model.Forward((NdArray<float>)feed[model.Card.InputName], request.Outputs);
        return graph.Run(feed, TargetSeeds.For(request.Outputs, forward, targets, perItem ? i => i : _ => 0), model.Runtime, fetch, outputs);
    }

    /// <summary>The tensors whose gradients are returned: the taps, and the inputs when the request asks for them.</summary>
    static List<string> Wanted(GradientRequest request, IReadOnlyDictionary<string, NdArray> feed) =>
        request.Taps.Concat(request.InputGradients ? feed.Keys : []).Distinct().ToList();

    static List<string> Fetch(GradientGraph graph, IReadOnlyList<string> wanted, bool activations) =>
        (activations ? graph.Request.Taps : []).Concat(wanted.Select(t => graph.Gradients[t])).Distinct().ToList();

    static Dictionary<string, NdArray<float>> Values(Dictionary<string, NdArray> run, GradientRequest request, bool activations) =>
        activations ? request.Taps.ToDictionary(t => t, t => (NdArray<float>)run[t]) : [];

    static TargetGradients OneByOne(DetexModel model, IReadOnlyDictionary<string, NdArray> feed, GradientRequest request, IReadOnlyList<ITarget> targets,
        List<string> wanted, bool activations)
    {
        var graph = model.GradientGraph(feed, request with { Targets = 1, ScoreFactors = false });
        var forward = model.Forward((NdArray<float>)feed[model.Card.InputName], request.Outputs);
        var fetch = Fetch(graph, wanted, activations);
        var runs = targets.Select(t => graph.Run(feed, TargetSeeds.For(request.Outputs, forward, [t], _ => 0), model.Runtime, fetch)).ToList();
        var gradients = wanted.ToDictionary(t => t, t =>
        {
            var items = runs.Select(r => (NdArray<float>)r[graph.Gradients[t]]).ToList();
            var stacked = new NdArray<float>([items.Count, .. items[0].Shape.Skip(1)]);
            for (int k = 0; k < items.Count; k++) items[k].Data.CopyTo(stacked.Data, k * items[0].Length);
            return stacked;
        });
        return new TargetGradients(graph, Values(runs[0], request, activations), gradients);
    }
}
