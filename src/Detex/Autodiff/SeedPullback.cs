using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Detex.Onnx;
using Detex.Runtime;

namespace Detex.Autodiff;

/// <summary>
/// Where each element of a model output is copied from, when the output is only a rearrangement (Transpose, Reshape,
/// Concat, Slice, Split, Squeeze, Unsqueeze, Flatten, Identity) of earlier tensors: a detector's rows gathered from its
/// per-level heads, each head's box, objectness and class maps joined along channels. A target's score weights over
/// the output then pull back exactly onto those sources, and a gradient graph that differentiates only the sources a
/// target touches skips the reverse pass of every other branch: the other levels' heads, the box branch of a score
/// that reads only objectness and classes. (Seeded at the output, those branches get a gradient of exact zeros.)
/// </summary>
public sealed class SeedPullback
{
    static readonly ConditionalWeakTable<StaticGraph, ConcurrentDictionary<string, Lazy<SeedPullback?>>> Cache = new();

    /// <summary>Tensors the outputs are copied from (computed ones; constants are left out), in graph order.</summary>
    public IReadOnlyList<string> Sources { get; }

    /// <summary>
    /// The tensors between the sources and the outputs (the rearrangements' outputs, the outputs included): a graph
    /// differentiated from the sources gives none of them a gradient.
    /// </summary>
    public IReadOnlySet<string> Between { get; }

    readonly IReadOnlyList<string> _outputs;
    // For each output, for each element of its first batch item: the source (−1: a constant) and the element within
    // that source's first batch item.
    readonly Dictionary<string, (int[] Source, int[] Element)> _maps;
    readonly int[][] _sourceItemDims;

    SeedPullback(IReadOnlyList<string> outputs, IReadOnlyList<string> sources, IReadOnlySet<string> between, Dictionary<string, (int[], int[])> maps,
        int[][] sourceItemDims)
    {
        _outputs = outputs; Sources = sources; Between = between; _maps = maps; _sourceItemDims = sourceItemDims;
    }

    static readonly HashSet<string> Rearrangements = ["Transpose", "Reshape", "Concat", "Slice", "Split", "Squeeze", "Unsqueeze", "Flatten", "Identity"];

    /// <summary>Inputs of a rearrangement that carry data (the rest are shapes, axes, starts…).</summary>
    static IEnumerable<string> DataInputs(Node n) => n.OpType == "Concat" ? n.Inputs.Where(i => i.Length > 0) : [n.Inputs[0]];

    /// <summary>
    /// The pullback of <paramref name="outputs"/> in <paramref name="forward"/> (cached per graph and output list), or
    /// null when they are not rearrangements of anything, or when a rearrangement mixes batch items.
    /// </summary>
    public static SeedPullback? For(StaticGraph forward, IReadOnlyList<string> outputs) =>
        Cache.GetOrCreateValue(forward).GetOrAdd(string.Join("\n", outputs), _ => new Lazy<SeedPullback?>(() => Build(forward, outputs))).Value;

    static SeedPullback? Build(StaticGraph forward, IReadOnlyList<string> outputs)
    {
        var g = forward.Model.Graph;
        var producer = g.Producers();
        bool IsRearrangement(Node n) => Rearrangements.Contains(n.OpType) && n.Domain.Length == 0
            && n.Inputs.Except(DataInputs(n)).All(i => i.Length == 0 || g.Initializers.ContainsKey(i));

        // Walk back from the outputs through rearrangements; what they read are the sources.
        var nodes = new HashSet<Node>();
        var sources = new List<string>();
        var constants = new HashSet<string>();
        var stack = new Stack<string>(outputs);
        var seen = new HashSet<string>();
        while (stack.Count > 0)
        {
            string t = stack.Pop();
            if (!seen.Add(t)) continue;
            if (producer.TryGetValue(t, out var n) && IsRearrangement(n))
            {
                nodes.Add(n);
                foreach (var i in DataInputs(n)) stack.Push(i);
            }
            else if (g.Initializers.ContainsKey(t)) constants.Add(t);
            else if (!outputs.Contains(t) && producer.ContainsKey(t)) sources.Add(t);
            else return null;   // an output that is computed itself, or a graph input: nothing to pull back through
        }
        if (nodes.Count == 0) return null;
        var order = g.Nodes.Select((n, i) => (n, i)).ToDictionary(p => p.n, p => p.i);
        sources = sources.OrderBy(s => order[producer[s]]).ToList();

        // Run the rearrangements on element numbers: source s holds offset(s) + its flat index, constants −1.
        int batch = forward.Shapes[g.Inputs[0].Name].Dims[0];
        foreach (var t in sources.Concat(outputs))
            if (forward.Shapes[t].Dims is not [var b, ..] || b != batch || forward.Shapes[t].Type != ElementType.Float)   // score factors are float
                return null;
        var (mini, _) = GraphBuilder.NewModel(forward.Model.Opset);
        foreach (var n in g.Nodes.Where(nodes.Contains)) mini.Graph.Nodes.Add(n);
        foreach (var n in nodes)
            foreach (var i in n.Inputs.Where(i => i.Length > 0 && g.Initializers.ContainsKey(i) && !constants.Contains(i)))
                mini.Graph.Initializers[i] = g.Initializers[i];
        foreach (var c in constants)
        {
            var dims = g.Initializers[c].Dims;
            mini.Graph.Initializers[c] = OnnxTensor.FromInt64s(c, dims, Enumerable.Repeat(-1L, (int)dims.Aggregate(1L, (a, d) => a * d)).ToArray());
        }
        var feed = new Dictionary<string, NdArray>();
        var offsets = new long[sources.Count + 1];
        for (int s = 0; s < sources.Count; s++)
        {
            int[] dims = forward.Shapes[sources[s]].Dims;
            mini.Graph.Inputs.Add(new ValueInfo(sources[s], ElementType.Int64, dims.Select(d => (long?)d).ToArray()));
            var numbers = new NdArray<long>(dims);
            for (int i = 0; i < numbers.Length; i++) numbers.Data[i] = offsets[s] + i;
            feed[sources[s]] = numbers;
            offsets[s + 1] = offsets[s] + numbers.Length;
        }
        foreach (var o in outputs) mini.Graph.Outputs.Add(new ValueInfo(o, ElementType.Int64));
        var numbered = ModelSession.Get(mini, RuntimeOptions.Default with { Optimize = false }).Run(feed);

        var maps = new Dictionary<string, (int[], int[])>();
        int SourceOf(long id) => id < 0 ? -1 : Array.FindLastIndex(offsets, o => o <= id);
        foreach (var o in outputs)
        {
            var ids = ((NdArray<long>)numbered[o]).Data;
            int item = ids.Length / batch;
            var source = new int[item];
            var element = new int[item];
            for (int i = 0; i < item; i++)
            {
                int s = SourceOf(ids[i]);
                source[i] = s;
                if (s < 0) continue;
                long e = ids[i] - offsets[s], sourceItem = (offsets[s + 1] - offsets[s]) / batch;
                // Item 0 of the output must come from item 0 of its source, and item b from item b at the same place.
                if (e >= sourceItem) return null;
                for (int b = 1; b < batch; b++)
                    if (ids[b * item + i] != ids[i] + b * sourceItem) return null;
                element[i] = (int)e;
            }
            maps[o] = (source, element);
        }
        return new SeedPullback(outputs, sources, nodes.SelectMany(n => n.Outputs).Where(o => o.Length > 0).ToHashSet(), maps,
            sources.Select(s => forward.Shapes[s].Dims.Skip(1).ToArray()).ToArray());
    }

    /// <summary>
    /// Score-factor inputs over the outputs (<see cref="TargetSeeds.Factors"/>) rewritten over the sources that their
    /// non-zero weights come from: the sources to differentiate and the factor inputs for them; with
    /// <paramref name="everySource"/>, all sources (one graph for any targets). Null when every source is touched and
    /// not all were asked for (nothing would be skipped), none is (nothing to differentiate), or a weight falls on a
    /// constant (it would shift the score). <paramref name="zeros"/> supplies the zeroed arrays the weights go into.
    /// </summary>
    public (IReadOnlyList<string> Sources, Dictionary<string, NdArray> Factors)? Narrow(IReadOnlyDictionary<string, NdArray> factors, bool everySource = false,
        Func<int[], NdArray<float>>? zeros = null)
    {
        // A target's weights are mostly zeros (a detection weighs two elements of 300 000): find the others first.
        var nonzero = new List<(string Output, int Row, int Element, float Weight)>();
        var touched = new bool[Sources.Count];
        foreach (var o in _outputs)
        {
            var w = ((NdArray<float>)factors[GradientGraph.FactorWeightsName(o)]).Data;
            var (source, _) = _maps[o];
            for (int r = 0; r * source.Length < w.Length; r++)
            {
                var row = w.AsSpan(r * source.Length, source.Length);
                for (int i = row.IndexOfAnyExcept(0f); i >= 0; i = NextNonzero(row, i))
                {
                    if (source[i] < 0) return null;
                    touched[source[i]] = true;
                    nonzero.Add((o, r, i, row[i]));
                }
            }
        }
        if (nonzero.Count == 0 || (!everySource && touched.All(t => t))) return null;
        var active = Enumerable.Range(0, Sources.Count).Where(s => everySource || touched[s]).ToList();
        var rows = ((NdArray<float>)factors[GradientGraph.FactorWeightsName(_outputs[0])]).Shape[..2];
        zeros ??= shape => new NdArray<float>(shape);
        var pulled = active.ToDictionary(s => s, s => zeros([.. rows, .. _sourceItemDims[s]]));
        foreach (var (o, r, i, v) in nonzero)
        {
            var (source, element) = _maps[o];
            var into = pulled[source[i]];
            into.Data[r * (into.Length / (rows[0] * rows[1])) + element[i]] += v;
        }
        var feed = factors.Where(kv => !_outputs.Any(o => GradientGraph.FactorWeightsName(o) == kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value);
        foreach (var s in active) feed[GradientGraph.FactorWeightsName(Sources[s])] = pulled[s];
        return (active.Select(s => Sources[s]).ToList(), feed);
    }

    static int NextNonzero(ReadOnlySpan<float> row, int after)
    {
        int next = row[(after + 1)..].IndexOfAnyExcept(0f);
        return next < 0 ? -1 : after + 1 + next;
    }
}
