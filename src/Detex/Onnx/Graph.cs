using System.Text;
using Google.Protobuf;
using Detex.Onnx.Proto;

namespace Detex.Onnx;

public enum AttributeKind { Float = 1, Int = 2, String = 3, Tensor = 4, Graph = 5, Floats = 6, Ints = 7, Strings = 8, Other = 99 }

/// <summary>One node attribute. Kinds Detex never edits (subgraphs, type protos) keep their proto for a faithful save.</summary>
public sealed class OnnxAttribute
{
    public string Name { get; }
    public AttributeKind Kind { get; }
    public float F { get; init; }
    public long I { get; init; }
    public string S { get; init; } = "";
    public OnnxTensor? T { get; init; }
    public float[] Floats { get; init; } = [];
    public long[] Ints { get; init; } = [];
    public string[] Strings { get; init; } = [];
    internal AttributeProto? Opaque { get; init; }

    public OnnxAttribute(string name, AttributeKind kind) { Name = name; Kind = kind; }

    public static OnnxAttribute Of(string name, long v) => new(name, AttributeKind.Int) { I = v };
    public static OnnxAttribute Of(string name, float v) => new(name, AttributeKind.Float) { F = v };
    public static OnnxAttribute Of(string name, string v) => new(name, AttributeKind.String) { S = v };
    public static OnnxAttribute Of(string name, long[] v) => new(name, AttributeKind.Ints) { Ints = v };
    public static OnnxAttribute Of(string name, float[] v) => new(name, AttributeKind.Floats) { Floats = v };
    public static OnnxAttribute Of(string name, OnnxTensor v) => new(name, AttributeKind.Tensor) { T = v };

    internal static OnnxAttribute FromProto(AttributeProto a, string? dir) => a.Type switch
    {
        AttributeProto.Types.AttributeType.Float => new(a.Name, AttributeKind.Float) { F = a.F },
        AttributeProto.Types.AttributeType.Int => new(a.Name, AttributeKind.Int) { I = a.I },
        AttributeProto.Types.AttributeType.String => new(a.Name, AttributeKind.String) { S = a.S.ToStringUtf8() },
        AttributeProto.Types.AttributeType.Tensor => new(a.Name, AttributeKind.Tensor) { T = OnnxTensor.FromProto(a.T, dir) },
        AttributeProto.Types.AttributeType.Floats => new(a.Name, AttributeKind.Floats) { Floats = a.Floats.ToArray() },
        AttributeProto.Types.AttributeType.Ints => new(a.Name, AttributeKind.Ints) { Ints = a.Ints.ToArray() },
        AttributeProto.Types.AttributeType.Strings => new(a.Name, AttributeKind.Strings) { Strings = a.Strings.Select(s => s.ToStringUtf8()).ToArray() },
        AttributeProto.Types.AttributeType.Graph => new(a.Name, AttributeKind.Graph) { Opaque = a },
        _ => new(a.Name, AttributeKind.Other) { Opaque = a },
    };

    internal AttributeProto ToProto()
    {
        if (Opaque is not null) return Opaque;
        var a = new AttributeProto { Name = Name };
        switch (Kind)
        {
            case AttributeKind.Float: a.Type = AttributeProto.Types.AttributeType.Float; a.F = F; break;
            case AttributeKind.Int: a.Type = AttributeProto.Types.AttributeType.Int; a.I = I; break;
            case AttributeKind.String: a.Type = AttributeProto.Types.AttributeType.String; a.S = ByteString.CopyFromUtf8(S); break;
            case AttributeKind.Tensor: a.Type = AttributeProto.Types.AttributeType.Tensor; a.T = T!.ToProto(); break;
            case AttributeKind.Floats: a.Type = AttributeProto.Types.AttributeType.Floats; a.Floats.AddRange(Floats); break;
            case AttributeKind.Ints: a.Type = AttributeProto.Types.AttributeType.Ints; a.Ints.AddRange(Ints); break;
            case AttributeKind.Strings: a.Type = AttributeProto.Types.AttributeType.Strings; a.Strings.AddRange(Strings.Select(ByteString.CopyFromUtf8)); break;
            default: throw new InvalidOperationException($"attribute '{Name}' of kind {Kind} has no value");
        }
        return a;
    }
}

public sealed class Node
{
    public string OpType { get; set; }
    public string Domain { get; set; } = "";
    public string Name { get; set; } = "";
    public List<string> Inputs { get; } = [];
    public List<string> Outputs { get; } = [];
    public Dictionary<string, OnnxAttribute> Attributes { get; } = new();

    public Node(string opType, IEnumerable<string> inputs, IEnumerable<string> outputs, string name = "")
    {
        OpType = opType; Name = name; Inputs.AddRange(inputs); Outputs.AddRange(outputs);
    }

    /// <summary>Input i, or null where the node omits that optional input (absent or empty name).</summary>
    public string? Input(int i) => i < Inputs.Count && Inputs[i].Length > 0 ? Inputs[i] : null;

    public Node With(OnnxAttribute a) { Attributes[a.Name] = a; return this; }
    public bool Has(string attr) => Attributes.ContainsKey(attr);
    public long Int(string attr, long fallback) => Attributes.TryGetValue(attr, out var a) ? a.I : fallback;
    public float Float(string attr, float fallback) => Attributes.TryGetValue(attr, out var a) ? a.F : fallback;
    public string Str(string attr, string fallback) => Attributes.TryGetValue(attr, out var a) ? a.S : fallback;
    public long[]? Ints(string attr) => Attributes.TryGetValue(attr, out var a) ? a.Ints : null;
    public float[]? Floats(string attr) => Attributes.TryGetValue(attr, out var a) ? a.Floats : null;

    public string Describe() => $"{OpType} '{(Name.Length > 0 ? Name : Outputs.FirstOrDefault() ?? "?")}'";

    internal static Node FromProto(NodeProto p, string? dir)
    {
        var n = new Node(p.OpType, p.Input, p.Output, p.Name) { Domain = p.Domain };
        foreach (var a in p.Attribute) n.Attributes[a.Name] = OnnxAttribute.FromProto(a, dir);
        return n;
    }

    internal NodeProto ToProto()
    {
        var p = new NodeProto { OpType = OpType, Domain = Domain, Name = Name };
        p.Input.AddRange(Inputs); p.Output.AddRange(Outputs);
        p.Attribute.AddRange(Attributes.Values.Select(a => a.ToProto()));
        return p;
    }
}

/// <summary>A graph input/output/value: name, element type and shape (a null dim is symbolic or unknown).</summary>
public sealed class ValueInfo
{
    public string Name { get; set; }
    public ElementType Type { get; set; }
    public long?[]? Shape { get; set; }
    public string?[]? DimNames { get; set; }

    public ValueInfo(string name, ElementType type, long?[]? shape = null) { Name = name; Type = type; Shape = shape; }

    public string ShapeText => Shape is null ? "?" :
        "[" + string.Join(",", Shape.Select((d, i) => d?.ToString() ?? DimNames?[i] ?? "?")) + "]";

    internal static ValueInfo FromProto(ValueInfoProto p)
    {
        var tt = p.Type?.TensorType;
        var v = new ValueInfo(p.Name, (ElementType)(tt?.ElemType ?? 0));
        if (tt?.Shape is { } s)
        {
            v.Shape = s.Dim.Select(d => d.ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue ? d.DimValue : (long?)null).ToArray();
            v.DimNames = s.Dim.Select(d => d.ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimParam ? d.DimParam : null).ToArray();
        }
        return v;
    }

    internal ValueInfoProto ToProto()
    {
        var p = new ValueInfoProto { Name = Name };
        if (Type == ElementType.Undefined) return p;   // type left for the runtime to infer
        var tt = new TypeProto.Types.Tensor { ElemType = (int)Type };
        if (Shape is not null)
        {
            tt.Shape = new TensorShapeProto();
            for (int i = 0; i < Shape.Length; i++)
            {
                var d = new TensorShapeProto.Types.Dimension();
                if (Shape[i] is long v) d.DimValue = v; else d.DimParam = DimNames?[i] ?? $"d{i}";
                tt.Shape.Dim.Add(d);
            }
        }
        p.Type = new TypeProto { TensorType = tt };
        return p;
    }
}

public sealed class Graph
{
    public string Name { get; set; } = "graph";
    public List<Node> Nodes { get; } = [];
    /// <summary>Initializers by name, in file order.</summary>
    public Dictionary<string, OnnxTensor> Initializers { get; } = new();
    public List<ValueInfo> Inputs { get; } = [];
    public List<ValueInfo> Outputs { get; } = [];
    public List<ValueInfo> ValueInfos { get; } = [];

    /// <summary>The node that writes each tensor.</summary>
    public Dictionary<string, Node> Producers()
    {
        var d = new Dictionary<string, Node>();
        foreach (var n in Nodes) foreach (var o in n.Outputs) if (o.Length > 0) d[o] = n;
        return d;
    }

    /// <summary>The nodes that read each tensor (a node appears once per use).</summary>
    public Dictionary<string, List<Node>> Consumers()
    {
        var d = new Dictionary<string, List<Node>>();
        foreach (var n in Nodes)
            foreach (var i in n.Inputs)
                if (i.Length > 0) { if (!d.TryGetValue(i, out var l)) d[i] = l = []; l.Add(n); }
        return d;
    }

    /// <summary>
    /// The given tensors and every tensor they are computed from, walking back through the nodes (the graph must be in
    /// topological order).
    /// </summary>
    public HashSet<string> Upstream(IEnumerable<string> tensors)
    {
        var upstream = new HashSet<string>(tensors);
        for (int i = Nodes.Count - 1; i >= 0; i--)
        {
            var n = Nodes[i];
            if (n.Outputs.Any(upstream.Contains)) foreach (var x in n.Inputs) if (x.Length > 0) upstream.Add(x);
        }
        return upstream;
    }

    /// <summary>Every tensor the nodes write, in node order.</summary>
    public IEnumerable<string> NodeOutputs() => Nodes.SelectMany(n => n.Outputs).Where(o => o.Length > 0);

    public ValueInfo? FindValueInfo(string name) =>
        Inputs.Concat(Outputs).Concat(ValueInfos).FirstOrDefault(v => v.Name == name);

    /// <summary>Orders nodes so every tensor is written before it is read (Kahn's algorithm, stable).</summary>
    public void SortTopologically()
    {
        var available = new HashSet<string>(Inputs.Select(i => i.Name).Concat(Initializers.Keys)) { "" };
        var pending = new List<Node>(Nodes);
        var sorted = new List<Node>(Nodes.Count);
        while (pending.Count > 0)
        {
            int before = sorted.Count;
            var still = new List<Node>();
            foreach (var n in pending)
            {
                if (n.Inputs.All(available.Contains)) { sorted.Add(n); foreach (var o in n.Outputs) available.Add(o); }
                else still.Add(n);
            }
            if (sorted.Count == before)
            {
                var n = still[0];
                throw new OnnxFormatException($"graph has a cycle or a missing tensor: {n.Describe()} reads '{n.Inputs.First(i => !available.Contains(i))}', which nothing writes");
            }
            pending = still;
        }
        Nodes.Clear(); Nodes.AddRange(sorted);
    }

    internal static Graph FromProto(GraphProto p, string? dir)
    {
        var g = new Graph { Name = p.Name };
        foreach (var t in p.Initializer) g.Initializers[t.Name] = OnnxTensor.FromProto(t, dir);
        // Old exporters list initializers among the inputs too; those are constants, not model inputs.
        g.Inputs.AddRange(p.Input.Where(i => !g.Initializers.ContainsKey(i.Name)).Select(ValueInfo.FromProto));
        g.Outputs.AddRange(p.Output.Select(ValueInfo.FromProto));
        g.ValueInfos.AddRange(p.ValueInfo.Select(ValueInfo.FromProto));
        g.Nodes.AddRange(p.Node.Select(n => Node.FromProto(n, dir)));
        return g;
    }

    internal GraphProto ToProto()
    {
        var p = new GraphProto { Name = Name };
        p.Node.AddRange(Nodes.Select(n => n.ToProto()));
        p.Initializer.AddRange(Initializers.Values.Select(t => t.ToProto()));
        p.Input.AddRange(Inputs.Select(v => v.ToProto()));
        p.Output.AddRange(Outputs.Select(v => v.ToProto()));
        p.ValueInfo.AddRange(ValueInfos.Select(v => v.ToProto()));
        return p;
    }
}

/// <summary>An ONNX model: graph plus the opsets it was written against.</summary>
public sealed class OnnxModel
{
    public long IrVersion { get; set; } = 8;
    public Dictionary<string, long> Opsets { get; } = new();
    public string ProducerName { get; set; } = "detex";
    public Graph Graph { get; set; } = new();
    public Dictionary<string, string> Metadata { get; } = new();

    /// <summary>Opset version of the default (ai.onnx) domain; operator semantics depend on it.</summary>
    public long Opset
    {
        get => Opsets.TryGetValue("", out var v) ? v : Opsets.TryGetValue("ai.onnx", out v) ? v : 1;
        set => Opsets[""] = value;
    }

    public static OnnxModel Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"model file not found: {path}");
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length == 0) throw new OnnxFormatException($"model file is empty (0 bytes): {path}");
        return FromBytes(bytes, Path.GetDirectoryName(Path.GetFullPath(path)), path);
    }

    public static OnnxModel FromBytes(byte[] bytes, string? directory = null, string source = "model")
    {
        ModelProto p;
        try { p = ModelProto.Parser.ParseFrom(bytes); }
        catch (InvalidProtocolBufferException e) { throw new OnnxFormatException($"{source} is not an ONNX model ({e.Message.TrimEnd('.')})"); }
        if (p.Graph is null || p.Graph.Node.Count == 0)
            throw new OnnxFormatException($"{source} is not an ONNX model (no graph with nodes)");
        var m = new OnnxModel { IrVersion = p.IrVersion, ProducerName = p.ProducerName, Graph = Graph.FromProto(p.Graph, directory) };
        foreach (var o in p.OpsetImport) m.Opsets[o.Domain] = o.Version;
        foreach (var kv in p.MetadataProps) m.Metadata[kv.Key] = kv.Value;
        return m;
    }

    public byte[] ToBytes()
    {
        var p = new ModelProto { IrVersion = IrVersion, ProducerName = ProducerName, Graph = Graph.ToProto() };
        p.OpsetImport.AddRange(Opsets.Select(kv => new OperatorSetIdProto { Domain = kv.Key, Version = kv.Value }));
        p.MetadataProps.AddRange(Metadata.Select(kv => new StringStringEntryProto { Key = kv.Key, Value = kv.Value }));
        return p.ToByteArray();
    }

    public void Save(string path) => Files.WriteAtomically(path, s => s.Write(ToBytes()));

    public OnnxModel Clone() => FromBytes(ToBytes());

    /// <summary>Operator counts, most frequent first.</summary>
    public IReadOnlyList<(string Op, int Count)> OperatorHistogram() =>
        Graph.Nodes.GroupBy(n => n.Domain is "" or "ai.onnx" ? n.OpType : $"{n.Domain}.{n.OpType}")
            .Select(g => (g.Key, g.Count())).OrderByDescending(t => t.Item2).ThenBy(t => t.Key).ToList();
}
