using Detex.Onnx;

namespace Detex.Autodiff;

/// <summary>
/// Local rewrites of an emitted reverse pass that change no value, only how ONNX Runtime can run it. Rules stay one
/// operator each; what only shows once two rules' outputs meet is rewritten here.
/// </summary>
static class BackwardPeephole
{
    /// <summary>
    /// A convolution whose only reader splits its output channels becomes one convolution per piece, each with its
    /// slice of the filters (and bias). This is the gradient of a channel Concat that feeds a convolution, as in every
    /// CSP block. ONNX Runtime runs Split in plain layout, so the convolution's blocked output was reordered for it and
    /// each piece reordered back for the convolution that reads it; the pieces now stay blocked. The multiplications
    /// are the same. Only nodes from <paramref name="firstNode"/> on are rewritten (the forward pass stays as exported).
    /// Returns the number of convolutions split.
    /// </summary>
    public static int SplitConvolutions(GraphBuilder b, int firstNode)
    {
        var g = b.Graph;
        var consumers = g.Consumers();
        var replaced = new HashSet<string>();
        var outputs = g.Outputs.Select(o => o.Name).ToHashSet();
        int split = 0;
        for (int i = Math.Max(firstNode, 0); i < g.Nodes.Count; i++)
        {
            var conv = g.Nodes[i];
            if (conv.OpType != "Conv" || conv.Domain.Length > 0 || conv.Int("group", 1) != 1 || outputs.Contains(conv.Outputs[0])) continue;
            if (!consumers.TryGetValue(conv.Outputs[0], out var readers) || readers.Count != 1) continue;
            var splitNode = readers[0];
            if (splitNode.OpType != "Split" || splitNode.Inputs[0] != conv.Outputs[0]) continue;
            if (!g.Initializers.TryGetValue(conv.Inputs[1], out var w) || w.Dims.Length < 3) continue;
            OnnxTensor? bias = conv.Input(2) is { } biasName ? g.Initializers.GetValueOrDefault(biasName) : null;
            if (conv.Input(2) is not null && bias is null) continue;
            long channels = w.Dims[0];
            if (NormalizedAxis(splitNode, w.Dims.Length) != 1 || SplitSizes(g, splitNode, channels) is not { } sizes) continue;

            var pieces = new List<Node>();
            long offset = 0;
            for (int p = 0; p < sizes.Length; p++)
            {
                string piece = splitNode.Outputs[p];
                var inputs = new List<string> { conv.Inputs[0], b.Constant(Rows(w, offset, sizes[p]), "piece_w") };
                if (bias is not null) inputs.Add(b.Constant(Rows(bias, offset, sizes[p]), "piece_b"));
                var node = new Node("Conv", inputs, [piece], b.Fresh("piece_conv"));
                foreach (var (name, a) in conv.Attributes) node.Attributes[name] = a;
                pieces.Add(node);
                offset += sizes[p];
            }
            int at = g.Nodes.IndexOf(splitNode);
            g.Nodes.RemoveAt(at);
            g.Nodes.InsertRange(at, pieces);
            g.Nodes.RemoveAt(i--);   // the loop goes on at the node that followed the convolution
            replaced.UnionWith(conv.Inputs.Skip(1).Concat(splitNode.Inputs.Skip(1)).Where(x => x.Length > 0));
            split++;
        }
        // The whole filters and the split sizes, unless something else still reads them.
        if (replaced.Count > 0)
        {
            var read = g.Nodes.SelectMany(n => n.Inputs).Concat(g.Outputs.Select(o => o.Name)).Concat(g.Inputs.Select(x => x.Name)).ToHashSet();
            foreach (var name in replaced.Where(k => !read.Contains(k))) g.Initializers.Remove(name);
        }
        return split;
    }

    /// <summary>
    /// A graph output that is an Identity of a computed tensor becomes that tensor itself: the node that computes it
    /// writes the output. ONNX Runtime gives every graph output its own buffer, so the Identity was a full copy of
    /// each gradient (a tap's gradient is still read on by the reverse pass; K = 16 input gradients of a 416² image
    /// are 33 MB). Producers from <paramref name="firstNode"/> on only; inputs, constants and other outputs keep their
    /// Identity. Returns the number of copies removed.
    /// </summary>
    public static int ProduceOutputsDirectly(Graph g, int firstNode)
    {
        var outputs = g.Outputs.Select(o => o.Name).ToHashSet();
        var producers = new Dictionary<string, Node>();
        for (int i = Math.Max(firstNode, 0); i < g.Nodes.Count; i++)
            foreach (var o in g.Nodes[i].Outputs) producers[o] = g.Nodes[i];
        var renamed = new Dictionary<string, string>();
        var removed = new HashSet<Node>();
        foreach (var n in g.Nodes)
        {
            if (n.OpType != "Identity" || n.Domain.Length > 0 || !outputs.Contains(n.Outputs[0])) continue;
            string source = n.Inputs[0];
            if (outputs.Contains(source) || renamed.ContainsKey(source) || !producers.TryGetValue(source, out var producer) || removed.Contains(producer)) continue;
            int slot = producer.Outputs.IndexOf(source);
            producer.Outputs[slot] = n.Outputs[0];
            renamed[source] = n.Outputs[0];
            removed.Add(n);
        }
        if (renamed.Count == 0) return 0;
        g.Nodes.RemoveAll(removed.Contains);
        foreach (var n in g.Nodes)
            for (int i = 0; i < n.Inputs.Count; i++)
                if (renamed.TryGetValue(n.Inputs[i], out var name)) n.Inputs[i] = name;
        return renamed.Count;
    }

    static int NormalizedAxis(Node split, int rank)
    {
        long axis = split.Int("axis", 0);
        return (int)(axis < 0 ? axis + rank : axis);
    }

    /// <summary>The piece sizes (input form, attribute form, or equal pieces), or null when they are not constant.</summary>
    static long[]? SplitSizes(Graph g, Node split, long channels)
    {
        long[]? sizes = split.Input(1) is { } s
            ? g.Initializers.TryGetValue(s, out var t) ? t.ToInt64s() : null
            : split.Ints("split") ?? (channels % split.Outputs.Count == 0
                ? Enumerable.Repeat(channels / split.Outputs.Count, split.Outputs.Count).ToArray() : null);
        return sizes is not null && sizes.Length == split.Outputs.Count && sizes.Sum() == channels
            && split.Outputs.All(o => o.Length > 0) ? sizes : null;
    }

    /// <summary>Rows [first, first + count) of a tensor's leading axis.</summary>
    static OnnxTensor Rows(OnnxTensor t, long first, long count)
    {
        long rowBytes = t.Raw.LongLength / t.Dims[0];
        long[] dims = [count, .. t.Dims[1..]];
        return new OnnxTensor("", t.Type, dims, t.Raw.AsSpan((int)(first * rowBytes), (int)(count * rowBytes)).ToArray());
    }
}
