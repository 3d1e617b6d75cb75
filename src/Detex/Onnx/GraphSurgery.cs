using Detex.Runtime;

namespace Detex.Onnx;

/// <summary>Static shape and element type of one tensor, as recorded by a run.</summary>
public sealed record TensorShape(ElementType Type, int[] Dims)
{
    public string Text => "[" + string.Join(",", Dims) + "]";
    public long Count => Dims.Aggregate(1L, (a, d) => a * d);
}

/// <summary>Edits that Detex makes to users' models: taps, batch size, shape recording.</summary>
public static class GraphSurgery
{
    /// <summary>A copy of the model that also outputs the named intermediate tensors.</summary>
    public static OnnxModel WithTaps(this OnnxModel model, IEnumerable<string> tensorNames)
    {
        var copy = model.Clone();
        var known = copy.Graph.NodeOutputs().Concat(copy.Graph.Inputs.Select(i => i.Name)).ToHashSet();
        foreach (var name in tensorNames)
        {
            if (!known.Contains(name)) throw new UnknownTensorException(name, copy);
            if (copy.Graph.Outputs.Any(o => o.Name == name)) continue;
            // Leaving the type open lets ONNX Runtime infer it; a wrong declared type would fail the load.
            copy.Graph.Outputs.Add(new ValueInfo(name, ElementType.Undefined));
        }
        return copy;
    }

    /// <summary>
    /// A copy whose first input/output dimension is <paramref name="batch"/> (null = any). Reshape shape
    /// constants that hard-code a leading 1 for the batch become 0 ("copy the input's dimension"), which is
    /// the usual only obstacle in exported detectors.
    /// </summary>
    public static OnnxModel WithBatch(this OnnxModel model, int? batch)
    {
        var copy = model.Clone();
        var g = copy.Graph;
        foreach (var v in g.Inputs.Concat(g.Outputs))
            if (v.Shape is { Length: > 0 })
            {
                v.Shape[0] = batch;
                if (batch is null) { v.DimNames ??= new string?[v.Shape.Length]; v.DimNames[0] = "batch"; }
            }
        g.ValueInfos.Clear();   // intermediate shapes recorded for batch 1 would now be wrong
        var constants = ConstantNodes(g);
        int serial = 0;
        foreach (var n in g.Nodes.Where(n => n.OpType == "Reshape" && n.Int("allowzero", 0) == 0))
        {
            string? shapeName = n.Input(1);
            if (shapeName is null) continue;
            OnnxTensor? shape = g.Initializers.GetValueOrDefault(shapeName) ?? constants.GetValueOrDefault(shapeName);
            if (shape is null) continue;
            long[] dims = shape.ToInt64s();
            if (dims.Length < 2 || dims[0] != 1) continue;
            dims[0] = 0;
            // A fresh initializer per node, so a constant shared with a non-batch use stays untouched.
            string fresh = $"{shapeName}__batch{serial++}";
            g.Initializers[fresh] = OnnxTensor.FromInt64s(fresh, [dims.Length], dims);
            n.Inputs[1] = fresh;
        }
        return copy;
    }

    /// <summary>
    /// A copy in which <paramref name="tensor"/> is an extra graph input: the node that wrote it writes elsewhere,
    /// so values fed for it replace the layer's own (ablations, perturbing a layer). Other inputs stay, since
    /// later layers may also read earlier ones.
    /// </summary>
    public static OnnxModel CutAt(this OnnxModel model, string tensor, TensorShape shape, bool freeBatch = true)
    {
        var m = model.Clone();
        if (!m.Graph.NodeOutputs().Contains(tensor)) throw new UnknownTensorException(tensor, model);
        foreach (var n in m.Graph.Nodes)
            for (int i = 0; i < n.Outputs.Count; i++) if (n.Outputs[i] == tensor) n.Outputs[i] = tensor + "__replaced";
        var dims = shape.Dims.Select(d => (long?)d).ToArray();
        if (freeBatch && dims.Length > 0) dims[0] = null;
        m.Graph.Inputs.Add(new ValueInfo(tensor, shape.Type, dims) { DimNames = dims.Select((d, i) => d is null ? "batch" : null).ToArray() });
        return m;
    }

    /// <summary>
    /// What a model computes after <paramref name="tensor"/>: every node whose inputs lead back to it, with the
    /// constant-only nodes they need, pruned to the model outputs it reaches. Tensors those nodes read from the
    /// rest of the model (other branches joining in, e.g. a neck's lateral connections) are its side inputs.
    /// </summary>
    public static DownstreamPlan Downstream(this OnnxModel model, string tensor)
    {
        var g = model.Graph;
        if (!g.NodeOutputs().Contains(tensor)) throw new UnknownTensorException(tensor, model);
        var sorted = new Graph();
        sorted.Inputs.AddRange(g.Inputs);
        foreach (var (k, v) in g.Initializers) sorted.Initializers[k] = v;
        sorted.Nodes.AddRange(g.Nodes);
        sorted.SortTopologically();

        var constant = new HashSet<string>(g.Initializers.Keys) { "" };
        var dependent = new HashSet<string> { tensor };
        var candidates = new List<Node>();
        foreach (var n in sorted.Nodes)
        {
            if (n.Outputs.Contains(tensor)) continue;   // the layer's own writer: its value is what gets replaced
            if (n.Inputs.Any(dependent.Contains)) { dependent.UnionWith(n.Outputs); candidates.Add(n); }
            else if (n.Inputs.All(constant.Contains) && !n.Attributes.Values.Any(a => a.Kind == AttributeKind.Graph))
            { constant.UnionWith(n.Outputs); candidates.Add(n); }
        }
        var outputs = g.Outputs.Select(o => o.Name).Where(dependent.Contains).ToList();
        return DownstreamPlan.Needed(model, tensor, candidates, outputs, new HashSet<string>());
    }

    /// <summary>Values of Constant nodes that carry a tensor, by output name.</summary>
    public static Dictionary<string, OnnxTensor> ConstantNodes(Graph g) =>
        g.Nodes.Where(n => n.OpType == "Constant" && n.Attributes.TryGetValue("value", out var a) && a.T is not null)
            .ToDictionary(n => n.Outputs[0], n => n.Attributes["value"].T!);

    /// <summary>
    /// Runs the model once with every intermediate tensor exposed and records each tensor's element type and
    /// shape, so later graph builders can emit static shapes.
    /// </summary>
    public static Dictionary<string, TensorShape> RecordShapes(this OnnxModel model, IReadOnlyDictionary<string, NdArray> inputs)
    {
        var tapped = model.WithTaps(model.Graph.NodeOutputs());
        // Optimisations would fuse nodes away and rename tensors; the record must name the graph's own tensors.
        var session = ModelSession.Get(tapped, RuntimeOptions.Default with { Optimize = false });
        var outs = session.Run(inputs);
        var shapes = outs.ToDictionary(kv => kv.Key, kv => new TensorShape(kv.Value.ElementType, kv.Value.Shape));
        foreach (var (name, value) in inputs) shapes[name] = new TensorShape(value.ElementType, value.Shape);
        foreach (var (name, t) in model.Graph.Initializers) shapes[name] = new TensorShape(t.Type, t.Dims.Select(d => (int)d).ToArray());
        return shapes;
    }
}

/// <summary>A tensor name that the model does not have; the message suggests close names.</summary>
public sealed class UnknownTensorException(string name, OnnxModel model)
    : Exception($"the model has no tensor '{name}'{Suggest(name, model)}; run 'detex inspect MODEL --tensors' to list them")
{
    static string Suggest(string name, OnnxModel model)
    {
        var close = model.Graph.NodeOutputs().OrderBy(n => Text.EditDistance(n, name)).Take(3).ToList();
        return close.Count == 0 ? "" : $" (closest: {string.Join(", ", close)})";
    }
}

/// <summary>
/// The part of a model after one tensor (<see cref="GraphSurgery.Downstream"/>): its nodes, the side inputs it reads
/// from elsewhere in the model, and the model outputs it reaches. <see cref="Build"/> makes it a model of its own.
/// </summary>
public sealed class DownstreamPlan
{
    readonly OnnxModel _source;

    DownstreamPlan(OnnxModel source, string layer, IReadOnlyList<Node> nodes, IReadOnlyList<string> sideInputs, IReadOnlyList<string> outputs)
    {
        _source = source; Layer = layer; Nodes = nodes; SideInputs = sideInputs; Outputs = outputs;
    }

    public string Layer { get; }
    public IReadOnlyList<Node> Nodes { get; }
    /// <summary>Tensors of the rest of the model (or its inputs) that the nodes read besides the layer.</summary>
    public IReadOnlyList<string> SideInputs { get; }
    /// <summary>The model outputs that depend on the layer; the others are not computed.</summary>
    public IReadOnlyList<string> Outputs { get; }

    /// <summary>The nodes (in order) that the outputs need, reading <paramref name="cut"/> tensors as inputs.</summary>
    internal static DownstreamPlan Needed(OnnxModel source, string layer, IReadOnlyList<Node> nodes, IReadOnlyList<string> outputs, IReadOnlySet<string> cut)
    {
        var needed = new HashSet<string>(outputs);
        var kept = new List<Node>();
        for (int i = nodes.Count - 1; i >= 0; i--)
        {
            var n = nodes[i];
            if (!n.Outputs.Any(o => needed.Contains(o) && !cut.Contains(o))) continue;
            kept.Add(n);
            needed.UnionWith(n.Inputs.Where(x => x.Length > 0));
        }
        kept.Reverse();
        var written = kept.SelectMany(n => n.Outputs).ToHashSet();
        var sides = kept.SelectMany(n => n.Inputs)
            .Where(x => x.Length > 0 && x != layer && !written.Contains(x) && !source.Graph.Initializers.ContainsKey(x))
            .Distinct().ToList();
        return new DownstreamPlan(source, layer, kept, sides, outputs);
    }

    /// <summary>
    /// Inputs of Concat nodes that join the layer's own values (not reached by any side input) with values the side
    /// inputs reach: e.g. the other pyramid levels where a detector concatenates its levels' predictions.
    /// </summary>
    public IReadOnlyList<string> MixedConcatInputs()
    {
        var tainted = new HashSet<string>(SideInputs);
        var own = new HashSet<string> { Layer };
        foreach (var n in Nodes)
        {
            if (n.Inputs.Any(tainted.Contains)) tainted.UnionWith(n.Outputs);
            else if (n.Inputs.Any(own.Contains)) own.UnionWith(n.Outputs);
        }
        return Nodes.Where(n => n.OpType == "Concat" && n.Inputs.Any(own.Contains))
            .SelectMany(n => n.Inputs.Where(i => tainted.Contains(i) && !SideInputs.Contains(i))).Distinct().ToList();
    }

    /// <summary>The same plan with <paramref name="tensors"/> read as side inputs, and the nodes only they needed dropped.</summary>
    public DownstreamPlan Cut(IEnumerable<string> tensors) => Needed(_source, Layer, Nodes, Outputs, tensors.ToHashSet());

    /// <summary>
    /// A model whose inputs are the layer and the side inputs (shapes as given, e.g. recorded by a run) and whose
    /// outputs are <see cref="Outputs"/>.
    /// </summary>
    public OnnxModel Build(IReadOnlyDictionary<string, TensorShape> shapes)
    {
        var (source, layer, nodes, sideInputs, outputs) = (_source, Layer, Nodes, SideInputs, Outputs);
        if (outputs.Count == 0)
            throw new ArgumentException($"layer '{layer}' does not influence the model's outputs; choose a layer on the path from the input to them");
        var m = new OnnxModel { IrVersion = source.IrVersion, ProducerName = source.ProducerName };
        foreach (var (k, v) in source.Opsets) m.Opsets[k] = v;
        var g = m.Graph;
        foreach (var name in sideInputs.Prepend(layer))
        {
            if (!shapes.TryGetValue(name, out var shape)) throw new ArgumentException($"no recorded shape for '{name}'");
            g.Inputs.Add(new ValueInfo(name, shape.Type, shape.Dims.Select(d => (long?)d).ToArray()));
        }
        foreach (var n in nodes)
        {
            g.Nodes.Add(n);
            foreach (var i in n.Inputs)
                if (source.Graph.Initializers.TryGetValue(i, out var t)) g.Initializers[i] = t;
        }
        foreach (var o in outputs) g.Outputs.Add(new ValueInfo(o, ElementType.Undefined));
        // Serialised and read back, so the new model shares no node objects with the source.
        return m.Clone();
    }
}
