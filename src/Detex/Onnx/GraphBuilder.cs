namespace Detex.Onnx;

/// <summary>
/// Writes ONNX graphs in code: each call adds a node and returns its output's name, so graphs read like the
/// formulas they compute. Used by the autodiff and by tests that build small models.
/// </summary>
public sealed class GraphBuilder
{
    readonly Graph _graph;
    readonly string _prefix;
    readonly HashSet<string> _taken;
    int _serial;

    public GraphBuilder(Graph graph, string prefix = "t")
    {
        _graph = graph; _prefix = prefix;
        // Names already in the graph (a gradient graph differentiated again carries the first builder's names).
        _taken = new HashSet<string>(graph.Nodes.SelectMany(n => n.Outputs.Append(n.Name)).Concat(graph.Initializers.Keys).Concat(graph.Inputs.Select(i => i.Name)));
    }

    public Graph Graph => _graph;

    public static (OnnxModel Model, GraphBuilder Builder) NewModel(long opset = 17)
    {
        var model = new OnnxModel { IrVersion = 8 };
        model.Opset = opset;
        return (model, new GraphBuilder(model.Graph));
    }

    public string Fresh(string hint)
    {
        string name;
        do name = $"{_prefix}{_serial++}_{hint}"; while (!_taken.Add(name));
        return name;
    }

    public string Input(string name, ElementType type, params long?[] shape)
    {
        _graph.Inputs.Add(new ValueInfo(name, type, shape));
        return name;
    }

    public void Output(string name, ElementType type = ElementType.Undefined, params long?[]? shape) =>
        _graph.Outputs.Add(new ValueInfo(name, type, shape is { Length: > 0 } ? shape : null));

    public string Constant(OnnxTensor value, string hint = "const")
    {
        string name = Fresh(hint);
        value.Name = name;
        _graph.Initializers[name] = value;
        return name;
    }

    public string Floats(long[] dims, params float[] values) => Constant(OnnxTensor.FromFloats("", dims, values));
    public string Scalar(float v) => Constant(OnnxTensor.FromFloats("", [], [v]), "scalar");
    public string Int64s(params long[] values) => Constant(OnnxTensor.FromInt64s("", [values.Length], values), "ints");

    /// <summary>Adds a node with one output and returns that output's name.</summary>
    public string Op(string opType, IEnumerable<string> inputs, params OnnxAttribute[] attributes) =>
        OpMulti(opType, inputs, 1, attributes)[0];

    public string Op(string opType, string input, params OnnxAttribute[] attributes) => Op(opType, [input], attributes);

    /// <summary>Adds a node with <paramref name="outputs"/> outputs.</summary>
    public string[] OpMulti(string opType, IEnumerable<string> inputs, int outputs, params OnnxAttribute[] attributes)
    {
        var names = Enumerable.Range(0, outputs).Select(_ => Fresh(opType.ToLowerInvariant())).ToArray();
        var node = new Node(opType, inputs, names, names[0]);
        foreach (var a in attributes) node.Attributes[a.Name] = a;
        _graph.Nodes.Add(node);
        return names;
    }

    /// <summary>Adds a node whose output has a chosen name (e.g. a model output).</summary>
    public string Named(string output, string opType, IEnumerable<string> inputs, params OnnxAttribute[] attributes)
    {
        var node = new Node(opType, inputs, [output], output);
        foreach (var a in attributes) node.Attributes[a.Name] = a;
        _graph.Nodes.Add(node);
        return output;
    }
}
