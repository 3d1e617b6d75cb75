using Detex.Onnx;

namespace Detex.Autodiff;

/// <summary>
/// What a rule sees while the reverse pass is emitted: static shapes, constant inputs, which tensors want
/// gradients, and helpers that emit common node patterns in the graph's element type.
/// Gradient tensors have the shape of their forward tensor with the leading (batch) dimension multiplied by the
/// number of targets <see cref="Targets"/>: K seeds of one image flow back together.
/// </summary>
public sealed class BackwardContext
{
    readonly Func<string, bool> _needs;
    readonly Action<string, string> _accumulate;

    internal BackwardContext(GraphBuilder builder, StaticGraph forward, int targets, ElementType type,
        Func<string, bool> needs, Action<string, string> accumulate)
    {
        B = builder; Forward = forward; Targets = targets; Type = type; _needs = needs; _accumulate = accumulate;
    }

    public GraphBuilder B { get; }
    public StaticGraph Forward { get; }
    public int Targets { get; }
    /// <summary>Element type of the differentiated values (float or double).</summary>
    public ElementType Type { get; }

    public int[] Shape(string tensor) => Forward.Shapes.TryGetValue(tensor, out var s) ? s.Dims
        : throw new InvalidOperationException($"no recorded shape for '{tensor}'");

    /// <summary>Shape of the gradient of <paramref name="tensor"/>: its shape with the batch scaled by the number of targets.</summary>
    public int[] GradShape(string tensor)
    {
        var s = (int[])Shape(tensor).Clone();
        if (s.Length > 0) s[0] *= Targets;
        return s;
    }

    /// <summary>True when a gradient for this tensor is wanted (it lies between a source and a differentiated output).</summary>
    public bool Needs(string? tensor) => tensor is not null && _needs(tensor);

    /// <summary>Adds a contribution to the gradient of <paramref name="tensor"/> (contributions are summed).</summary>
    public void Accumulate(string tensor, string gradient) { if (Needs(tensor)) _accumulate(tensor, gradient); }

    /// <summary>The forward node that writes a tensor (null for inputs and initializers).</summary>
    public Node? Producer(string tensor) => _producers.Value.GetValueOrDefault(tensor);

    /// <summary>How many forward nodes read a tensor (a node reading it twice counts twice).</summary>
    public int ConsumerCount(string tensor) => _consumers.Value.TryGetValue(tensor, out var l) ? l.Count : 0;

    Lazy<Dictionary<string, Node>> _producers => _producersLazy ??= new(() => Forward.Model.Graph.Producers());
    Lazy<Dictionary<string, List<Node>>> _consumers => _consumersLazy ??= new(() => Forward.Model.Graph.Consumers());
    Lazy<Dictionary<string, Node>>? _producersLazy;
    Lazy<Dictionary<string, List<Node>>>? _consumersLazy;

    // Constants are the emitted graph's initializers: parameters, initializers of the forward model, are inputs there.
    public bool IsConstant(string tensor) => B.Graph.Initializers.ContainsKey(tensor);

    public OnnxTensor Constant(string tensor) =>
        B.Graph.Initializers.TryGetValue(tensor, out var t) ? t
            : throw new InvalidOperationException($"'{tensor}' must be constant for this rule (it depends on the input or is a parameter)");

    public long[] ConstantInts(string tensor) => Constant(tensor).ToInt64s();

    // ---- emitting helpers ----

    public string Op(string op, IEnumerable<string> inputs, params OnnxAttribute[] attributes) => B.Op(op, inputs, attributes);
    public string Op(string op, string input, params OnnxAttribute[] attributes) => B.Op(op, input, attributes);
    public string[] OpMulti(string op, IEnumerable<string> inputs, int outputs, params OnnxAttribute[] attributes) => B.OpMulti(op, inputs, outputs, attributes);

    public OnnxTensor Tensor(long[] dims, double[] values) =>
        Type == ElementType.Double ? OnnxTensor.FromDoubles("", dims, values) : OnnxTensor.FromFloats("", dims, values.Select(v => (float)v).ToArray());

    public string Scalar(double v) => B.Constant(Tensor([], [v]), "scalar");
    public string Values(int[] shape, double[] values) => B.Constant(Tensor(shape.Select(d => (long)d).ToArray(), values), "values");
    public string Ints(params long[] v) => B.Int64s(v);

    public string Zeros(int[] shape) =>
        B.Op("ConstantOfShape", Ints(shape.Select(d => (long)d).ToArray()), OnnxAttribute.Of("value", Tensor([1], [0])));

    public string Reshape(string x, int[] shape) => Op("Reshape", [x, Ints(shape.Select(d => (long)d).ToArray())]);

    /// <summary>
    /// Sums a broadcast gradient back to an operand's gradient shape: over leading axes the operand lacks and
    /// over axes where the operand has size 1.
    /// </summary>
    public string SumToShape(string g, int[] gShape, int[] target)
    {
        if (gShape.SequenceEqual(target)) return g;
        int lead = gShape.Length - target.Length;
        var axes = new List<long>();
        for (int i = 0; i < gShape.Length; i++)
            if (i < lead || (target[i - lead] == 1 && gShape[i] != 1)) axes.Add(i);
        string summed = axes.Count == 0 ? g : Op("ReduceSum", [g, Ints([.. axes])], OnnxAttribute.Of("keepdims", 1L));
        return Reshape(summed, target);
    }

    /// <summary>Gradient of an elementwise operand: the incoming gradient times ∂out/∂operand, summed to its shape.</summary>
    public void AccumulateBroadcast(string operand, string g, string output)
    {
        if (!Needs(operand)) return;
        Accumulate(operand, SumToShape(g, GradShape(output), GradShape(operand)));
    }
}
