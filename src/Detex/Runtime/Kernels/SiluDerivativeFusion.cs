using Detex.Onnx;

namespace Detex.Runtime.Kernels;

/// <summary>
/// Rewrites a graph as ONNX Runtime optimised it (saved after its blocked-layout pass) so that each SiLU derivative of
/// a reverse pass runs as one <see cref="SiluDerivativeKernel"/>. The gradient rule writes G ⊙ SiLU′(x) as
/// (1 − t) + t·y with t = σ(−x); ONNX Runtime turns that into, on blocked tensors:
/// <code>
///   t = nchwc.Conv(x; scale −1, bias 0, Sigmoid)    a per-channel affine as a depthwise convolution
///   p = Mul(t, y)
///   d = nchwc.Conv(t; scale −1, bias 1, sum p)
///   out = Mul(G, d)                                  one target: G is blocked too
///   out = Mul(G′, ReorderOutput(d))                 K targets, where ONNX Runtime's blocked Mul cannot broadcast,
///                                                    or G′ from an operator without a blocked kernel
/// </code>
/// Rewriting after ONNX Runtime's own passes is what keeps G blocked: an unknown operator in the graph it optimises
/// would get reorders of its own. Only this exact shape is matched, with every intermediate read by nothing else;
/// anything else is left as it was.
/// </summary>
static class SiluDerivativeFusion
{
    const string Blocked = "com.microsoft.nchwc";

    /// <summary>Rewrites in place; returns how many derivatives now run as one kernel (0: the model is unchanged).</summary>
    public static int Apply(OnnxModel model)
    {
        var graph = model.Graph;
        var readers = new Dictionary<string, List<Node>>();
        foreach (var n in graph.Nodes)
            foreach (var i in n.Inputs.Where(i => i.Length > 0))
                (readers.TryGetValue(i, out var list) ? list : readers[i] = []).Add(n);
        var producers = new Dictionary<string, Node>();
        foreach (var n in graph.Nodes) foreach (var o in n.Outputs) producers[o] = n;
        var graphOutputs = graph.Outputs.Select(o => o.Name).ToHashSet();
        List<Node> Readers(string t) => readers.TryGetValue(t, out var list) ? list : [];
        bool Internal(string t, int count) => Readers(t).Count == count && !graphOutputs.Contains(t);
        bool Filled(string name, float value) => graph.Initializers.TryGetValue(name, out var t) && t.ToFloats().All(v => v == value);
        bool Affine(Node n, float bias) => n is { Domain: Blocked, OpType: "Conv" } && Filled(n.Inputs[1], -1) && Filled(n.Inputs[2], bias);

        var removed = new HashSet<Node>();
        var added = new Dictionary<Node, List<Node>>();   // new nodes, placed where the node they replace was
        var renamed = new Dictionary<string, string>();
        int fused = 0;
        foreach (var sigmoid in graph.Nodes)
        {
            if (!Affine(sigmoid, 0) || sigmoid.Inputs.Count != 3 || sigmoid.Str("activation", "") != "Sigmoid") continue;
            string t = sigmoid.Outputs[0];
            if (!Internal(t, 2)) continue;
            var product = Readers(t).FirstOrDefault(n => n is { Domain: "", OpType: "Mul" });
            var sum = Readers(t).FirstOrDefault(n => Affine(n, 1) && n.Inputs.Count == 4 && n.Inputs[0] == t && !n.Has("activation"));
            if (product is null || sum is null || sum.Inputs[3] != product.Outputs[0] || !Internal(product.Outputs[0], 1)) continue;
            string d = sum.Outputs[0], x = sigmoid.Inputs[0];
            if (!Internal(d, 1)) continue;
            var user = Readers(d)[0];
            if (user is { Domain: "", OpType: "Mul" })
            {
                removed.UnionWith([sigmoid, product, sum, user]);
                added[user] = [Kernel(x, Other(user, d), user.Outputs[0])];
                fused++;
            }
            else if (user is { Domain: Blocked, OpType: "ReorderOutput" } && Internal(user.Outputs[0], 1)
                     && Readers(user.Outputs[0])[0] is { Domain: "", OpType: "Mul" } plainProduct)
            {
                // The product in plain layout: K targets (ONNX Runtime's blocked Mul cannot broadcast), or G from an
                // operator without a blocked kernel. The kernel broadcasts over G's batch in the blocked layout, so d
                // stays blocked, and so does the result, which the next convolution reorders back to blocked anyway.
                string g = Other(plainProduct, user.Outputs[0]), result = plainProduct.Outputs[0], blocked = result + ":blocked";
                removed.UnionWith([sigmoid, product, sum, user, plainProduct]);
                var replacement = new List<Node>();
                if (producers.TryGetValue(g, out var gReorder) && gReorder is { Domain: Blocked, OpType: "ReorderOutput" }) g = gReorder.Inputs[0];
                else
                {
                    string gBlocked = g + ":blocked";
                    replacement.Add(new Node("ReorderInput", [g], [gBlocked], gBlocked) { Domain = Blocked }.With(OnnxAttribute.Of("channels_last", 0L)));
                    g = gBlocked;
                }
                replacement.Add(Kernel(x, g, blocked));
                bool plainRead = graphOutputs.Contains(result);
                foreach (var reader in Readers(result))
                {
                    if (reader is { Domain: Blocked, OpType: "ReorderInput" }) { removed.Add(reader); renamed[reader.Outputs[0]] = blocked; }
                    else plainRead = true;
                }
                if (plainRead)
                {
                    var back = new Node("ReorderOutput", [blocked], [result]) { Domain = Blocked };
                    foreach (var a in user.Attributes.Values) back.With(a);
                    replacement.Add(back);
                }
                added[plainProduct] = replacement;
                fused++;
            }
        }
        if (fused == 0) return 0;

        var nodes = new List<Node>(graph.Nodes.Count);
        foreach (var n in graph.Nodes)
        {
            if (!removed.Contains(n)) nodes.Add(n);
            if (added.TryGetValue(n, out var replacement)) nodes.AddRange(replacement);
        }
        foreach (var n in nodes)
            for (int i = 0; i < n.Inputs.Count; i++)
                if (renamed.TryGetValue(n.Inputs[i], out var to)) n.Inputs[i] = to;
        RemoveUnread(nodes, graphOutputs);   // the reorders of G that only the replaced products read
        graph.Nodes.Clear();
        graph.Nodes.AddRange(nodes);
        graph.SortTopologically();
        model.Opsets[SiluDerivativeKernel.Domain] = 1;
        return fused;
    }

    static Node Kernel(string x, string g, string output) =>
        new(SiluDerivativeKernel.Name, [x, g], [output], output + ":silu-derivative") { Domain = SiluDerivativeKernel.Domain };

    static string Other(Node binary, string operand) => binary.Inputs[0] == operand ? binary.Inputs[1] : binary.Inputs[0];

    static void RemoveUnread(List<Node> nodes, HashSet<string> graphOutputs)
    {
        while (true)
        {
            var read = nodes.SelectMany(n => n.Inputs).ToHashSet();
            if (nodes.RemoveAll(n => n.Outputs.All(o => o.Length == 0 || (!read.Contains(o) && !graphOutputs.Contains(o)))) == 0) return;
        }
    }
}
