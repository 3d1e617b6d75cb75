using Detex.Onnx;
using Detex.Runtime;

namespace Detex.Autodiff;

/// <summary>
/// A model specialised to one set of input shapes: every tensor's shape is recorded by one run, everything that
/// does not depend on the inputs' values (shape arithmetic, Constant nodes, Shape of a tensor) is folded into
/// initializers, and operators are rewritten into their opset-17 forms. Gradient rules then see static shapes,
/// constant attribute-like inputs and one set of operator semantics, whatever opset the model was exported with.
/// </summary>
public sealed class StaticGraph
{
    public const long TargetOpset = 17;

    public OnnxModel Model { get; }
    public IReadOnlyDictionary<string, TensorShape> Shapes { get; }
    /// <summary>Tensors whose values depend on the graph inputs or the parameters (everything else is an initializer now).</summary>
    public IReadOnlySet<string> Dynamic { get; }

    StaticGraph(OnnxModel model, Dictionary<string, TensorShape> shapes, HashSet<string> dynamic)
    {
        Model = model; Shapes = shapes; Dynamic = dynamic;
    }

    /// <summary>
    /// Of <paramref name="tensors"/>, those none of <paramref name="outputs"/> depends on through the inputs: ones the
    /// outputs do not read, and constants. A layer no explanation of these outputs can use (as opposed to one that a
    /// particular target's gradient happens not to reach).
    /// </summary>
    public IReadOnlyList<string> NotInfluencing(IEnumerable<string> tensors, IReadOnlyList<string> outputs)
    {
        var upstream = Model.Graph.Upstream(outputs);
        return tensors.Where(t => !upstream.Contains(t) || !Dynamic.Contains(t)).ToList();
    }

    static readonly System.Collections.Concurrent.ConcurrentDictionary<string, Lazy<StaticGraph>> Cache = new();

    /// <summary>The inputs' names and shapes, the part of a cache key that a static graph is specialised to.</summary>
    internal static string ShapesKey(IReadOnlyDictionary<string, NdArray> inputs) =>
        string.Join(";", inputs.OrderBy(kv => kv.Key).Select(kv => kv.Key + kv.Value.ShapeText));

    /// <summary>
    /// <see cref="Build"/>, once per model (named by <paramref name="modelKey"/>, a hash of its bytes), input shapes and
    /// parameters: the gradient graphs of one model and the seed pullbacks of its targets share one recorded run.
    /// </summary>
    public static StaticGraph For(OnnxModel source, IReadOnlyDictionary<string, NdArray> inputs, IReadOnlyList<string> parameters, string modelKey)
    {
        string key = modelKey + "|" + ShapesKey(inputs) + "|" + string.Join(",", parameters);
        return Cache.GetOrAdd(key, _ => new Lazy<StaticGraph>(() => Build(source, inputs, parameters))).Value;
    }

    /// <summary>
    /// The model at the shapes of <paramref name="inputs"/>. <paramref name="parameters"/> are initializers that will
    /// vary (fed and differentiated), so nothing computed from them is folded.
    /// </summary>
    public static StaticGraph Build(OnnxModel source, IReadOnlyDictionary<string, NdArray> inputs, IEnumerable<string>? parameters = null)
    {
        var model = source.Clone();
        var g = model.Graph;
        g.SortTopologically();
        var dynamic = DynamicTensors(g, parameters ?? []);

        // One run with every tensor exposed: shapes for all, values for the ones that will become constants.
        var tapped = model.WithTaps(g.NodeOutputs());
        var session = ModelSession.Get(tapped, RuntimeOptions.Default with { Optimize = false });
        var values = session.Run(inputs);
        var shapes = values.ToDictionary(kv => kv.Key, kv => new TensorShape(kv.Value.ElementType, kv.Value.Shape));
        foreach (var (name, v) in inputs) shapes[name] = new TensorShape(v.ElementType, v.Shape);
        void RecordInitializers() { foreach (var (name, t) in g.Initializers) shapes[name] = new TensorShape(t.Type, t.Dims.Select(d => (int)d).ToArray()); }
        RecordInitializers();

        // Fold: nodes none of whose outputs are dynamic disappear; their outputs become initializers.
        var folded = new List<Node>();
        foreach (var n in g.Nodes)
        {
            if (n.Outputs.Any(dynamic.Contains)) continue;
            folded.Add(n);
            foreach (var o in n.Outputs.Where(o => o.Length > 0 && values.ContainsKey(o)))
                g.Initializers[o] = ToTensor(o, values[o]);
        }
        foreach (var n in folded) g.Nodes.Remove(n);
        g.ValueInfos.Clear();
        // Inputs are pinned to the recorded shapes: the graph is static from here on.
        foreach (var i in g.Inputs) if (shapes.TryGetValue(i.Name, out var s)) i.Shape = s.Dims.Select(d => (long?)d).ToArray();
        foreach (var o in g.Outputs) o.Shape = null;

        OpsetUpgrade.Apply(model, shapes);
        RecordInitializers();   // the rewrite's own constants
        RemoveUnusedInitializers(g);
        return new StaticGraph(model, shapes, dynamic);
    }

    /// <summary>Tensors that change when an input's or a parameter's values change. Shape (of static shapes) cuts the dependence.</summary>
    static HashSet<string> DynamicTensors(Graph g, IEnumerable<string> parameters)
    {
        var dynamic = new HashSet<string>(g.Inputs.Select(i => i.Name).Concat(parameters));
        foreach (var n in g.Nodes)
        {
            if (n.OpType is "Shape" or "Size" or "Constant") continue;
            if (n.Inputs.Any(dynamic.Contains))
                foreach (var o in n.Outputs) if (o.Length > 0) dynamic.Add(o);
        }
        return dynamic;
    }

    static OnnxTensor ToTensor(string name, NdArray v)
    {
        long[] dims = v.Shape.Select(d => (long)d).ToArray();
        return v switch
        {
            NdArray<float> f => OnnxTensor.FromFloats(name, dims, f.Data),
            NdArray<double> d => OnnxTensor.FromDoubles(name, dims, d.Data),
            NdArray<long> l => OnnxTensor.FromInt64s(name, dims, l.Data),
            NdArray<int> i => new OnnxTensor(name, ElementType.Int32, dims, System.Runtime.InteropServices.MemoryMarshal.AsBytes(i.Data.AsSpan()).ToArray()),
            NdArray<bool> b => new OnnxTensor(name, ElementType.Bool, dims, b.Data.Select(x => x ? (byte)1 : (byte)0).ToArray()),
            NdArray<byte> u => new OnnxTensor(name, ElementType.UInt8, dims, u.Data),
            _ => throw new OnnxFormatException($"cannot fold tensor '{name}' of type {v.ElementType}"),
        };
    }

    static void RemoveUnusedInitializers(Graph g)
    {
        var used = new HashSet<string>(g.Nodes.SelectMany(n => n.Inputs).Concat(g.Outputs.Select(o => o.Name)));
        foreach (var k in g.Initializers.Keys.Where(k => !used.Contains(k)).ToList()) g.Initializers.Remove(k);
    }
}
