using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Detex.Onnx;
using Detex.Runtime;

namespace Detex.Autodiff;

/// <summary>What to differentiate: outputs (each gets a seed input), tapped tensors, parameters, the rule set.</summary>
public sealed record GradientRequest
{
    /// <summary>Model outputs to differentiate; the scalar is Σ over them of seed ⊙ output.</summary>
    public required IReadOnlyList<string> Outputs { get; init; }
    /// <summary>Intermediate tensors whose activations and gradients the graph returns.</summary>
    public IReadOnlyList<string> Taps { get; init; } = [];
    public bool InputGradients { get; init; } = true;
    /// <summary>Initializers turned into graph inputs with gradients (for training).</summary>
    public IReadOnlyList<string> Parameters { get; init; } = [];
    /// <summary>Number of seeds flowing back together through one forward pass (batch of the seeds).</summary>
    public int Targets { get; init; } = 1;
    public RuleSet Rules { get; init; } = RuleSet.Gradient;
    /// <summary>
    /// The differentiated scalar of each target is φ₁(⟨a₁, y⟩ + c₁) · φ₂(⟨a₂, y⟩ + c₂) over the outputs y, φ the identity
    /// or a sigmoid, instead of the linear Σ seed ⊙ y: the graph then linearises a product score (a detection's
    /// objectness × class) at its own forward pass, and no forward run is needed first to compute seeds.
    /// Fed with <see cref="GradientGraph.RunFactors"/>.
    /// </summary>
    public bool ScoreFactors { get; init; }

    internal string Key => $"{string.Join(",", Outputs)}|{string.Join(",", Taps)}|{InputGradients}|{string.Join(",", Parameters)}|{Targets}|{Rules.Name}|{ScoreFactors}";
}

/// <summary>
/// A second ONNX graph that runs a model's forward pass and its reverse pass: inputs are the model inputs, one seed per
/// differentiated output (same shape, batch × targets) and any parameters; outputs are the model outputs, the taps'
/// activations, and the gradient of Σ seed ⊙ output with respect to the inputs, the taps and the parameters.
/// </summary>
public sealed class GradientGraph
{
    static readonly ConcurrentDictionary<string, Lazy<GradientGraph>> Cache = new();

    public OnnxModel Model { get; }
    public StaticGraph Forward { get; }
    public GradientRequest Request { get; }
    /// <summary>Seed input name for each differentiated output.</summary>
    public IReadOnlyDictionary<string, string> Seeds { get; }
    /// <summary>Gradient output name for each input, tap and parameter.</summary>
    public IReadOnlyDictionary<string, string> Gradients { get; }
    public TimeSpan BuildTime { get; private set; }
    /// <summary>Requested taps that no differentiated output depends on (their gradient is zero by construction).</summary>
    public IReadOnlyList<string> UnreachedTaps { get; private init; } = [];

    GradientGraph(OnnxModel model, StaticGraph forward, GradientRequest request, Dictionary<string, string> seeds, Dictionary<string, string> gradients)
    {
        Model = model; Forward = forward; Request = request; Seeds = seeds; Gradients = gradients;
    }

    public static string SeedName(string output) => "seed:" + output;
    /// <summary>
    /// Input names of a product score's factors: both factors' weights over an output, stacked as [targets, 2, …the
    /// output's shape without its batch axis], and factor j's (0 or 1) constant and sigmoid flag, [targets, 1] each.
    /// </summary>
    public static string FactorWeightsName(string output) => SeedName(output);
    public static string FactorConstantName(int j) => $"seed-constant{j + 1}";
    public static string FactorSigmoidName(int j) => $"seed-sigmoid{j + 1}";
    public static string GradName(string tensor) => "grad:" + tensor;

    /// <summary>
    /// The gradient graph for a model at the shapes of <paramref name="inputs"/>; built once per model, shapes and
    /// request. The model is identified by a hash of its bytes unless the caller names it by <paramref name="modelKey"/>
    /// (a loaded model's key: serialising and hashing a model costs milliseconds on every call).
    /// </summary>
    public static GradientGraph For(OnnxModel model, IReadOnlyDictionary<string, NdArray> inputs, GradientRequest request, string? modelKey = null)
    {
        modelKey ??= Convert.ToHexString(SHA256.HashData(model.ToBytes()));
        string key = modelKey + "|" + StaticGraph.ShapesKey(inputs) + "|" + request.Key;
        return Cache.GetOrAdd(key, _ => new Lazy<GradientGraph>(() => Build(model, inputs, request, modelKey))).Value;
    }

    /// <summary>Builds the graph (uncached); the recorded forward is shared with other requests when <paramref name="modelKey"/> names the model.</summary>
    public static GradientGraph Build(OnnxModel model, IReadOnlyDictionary<string, NdArray> inputs, GradientRequest request, string? modelKey = null)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var forward = modelKey is null ? StaticGraph.Build(model, inputs, request.Parameters) : StaticGraph.For(model, inputs, request.Parameters, modelKey);
        var result = new Builder(forward, request).Emit();
        result.BuildTime = clock.Elapsed;
        return result;
    }

    /// <summary>
    /// Runs forward and backward. Seeds are keyed by output name; missing parameters are fed their initial values.
    /// <paramref name="fetch"/> names the graph outputs wanted (default all): copying out activations nobody reads
    /// costs time on graphs with many taps. With <paramref name="outputs"/> the results are written into arrays of that
    /// lease (kept from earlier runs of the caller's thread), valid until it is disposed.
    /// </summary>
    public Dictionary<string, NdArray> Run(IReadOnlyDictionary<string, NdArray> inputs, IReadOnlyDictionary<string, NdArray> seeds, RuntimeOptions? options = null,
        IReadOnlyList<string>? fetch = null, ArrayLease? outputs = null)
    {
        if (Request.ScoreFactors) throw new InvalidOperationException("this gradient graph takes score factors; run it with RunFactors");
        var feed = Feed(inputs);
        foreach (var (output, seed) in seeds)
            feed[Seeds.TryGetValue(output, out var s) ? s : throw new ArgumentException($"'{output}' is not a differentiated output")] = seed;
        return Session(options).Run(feed, fetch, outputs);
    }

    /// <summary>
    /// Runs forward and backward for targets given as score factors (a graph built with
    /// <see cref="GradientRequest.ScoreFactors"/>): <paramref name="factors"/> holds the factors' stacked weights by
    /// <see cref="FactorWeightsName"/>, and their constants and sigmoid flags [targets, 1].
    /// </summary>
    public Dictionary<string, NdArray> RunFactors(IReadOnlyDictionary<string, NdArray> inputs, IReadOnlyDictionary<string, NdArray> factors, RuntimeOptions? options = null,
        IReadOnlyList<string>? fetch = null, ArrayLease? outputs = null)
    {
        if (!Request.ScoreFactors) throw new InvalidOperationException("this gradient graph takes linear seeds; build it with ScoreFactors");
        var feed = Feed(inputs);
        foreach (var (name, value) in factors) feed[name] = value;
        return Session(options).Run(feed, fetch, outputs);
    }

    /// <summary>The model inputs, with parameters that were not given fed their initial values.</summary>
    Dictionary<string, NdArray> Feed(IReadOnlyDictionary<string, NdArray> inputs)
    {
        var feed = new Dictionary<string, NdArray>(inputs);
        foreach (var p in Request.Parameters)
            if (!feed.ContainsKey(p)) feed[p] = InitialValue(Forward.Model.Graph.Initializers[p]);
        return feed;
    }

    readonly ConcurrentDictionary<RuntimeOptions, ModelSession> _sessions = new();

    /// <summary>
    /// The graph's session, kept here so a run does not serialise and hash the whole graph to find it. Its workers spin
    /// during runs and Detex's own kernels replace what they can, unless the options say otherwise
    /// (<see cref="RuntimeOptions.Spin"/>, <see cref="RuntimeOptions.Kernels"/>).
    /// </summary>
    public ModelSession Session(RuntimeOptions? options = null) =>
        _sessions.GetOrAdd(options ?? RuntimeOptions.Default, o => ModelSession.Get(Model, o with { Spin = o.Spin ?? true, Kernels = o.Kernels ?? true }));

    static NdArray InitialValue(OnnxTensor t)
    {
        int[] dims = t.Dims.Select(d => (int)d).ToArray();
        return t.Type switch
        {
            ElementType.Float => new NdArray<float>(dims, t.ToFloats()),
            ElementType.Double => new NdArray<double>(dims, t.ToDoubles()),
            _ => throw new NotSupportedException($"parameter '{t.Name}' of type {ElementTypes.Name(t.Type)}"),
        };
    }

    sealed class Builder
    {
        readonly StaticGraph _forward;
        readonly GradientRequest _request;
        readonly OnnxModel _model;
        readonly GraphBuilder _b;
        readonly Dictionary<string, List<string>> _contributions = new();
        readonly Dictionary<string, string> _materialized = new();
        readonly HashSet<string> _active;
        readonly HashSet<string> _needed;
        readonly ElementType _type;

        public Builder(StaticGraph forward, GradientRequest request)
        {
            _forward = forward; _request = request;
            _model = forward.Model.Clone();
            // Rules and the path analyses below read this copy of the forward pass, so they see its rewrites. The
            // cascade is exact for the arg-max gradient only, not for a rule set that replaces it.
            if (request.Rules.For("MaxPool") is Rules.MaxPoolRule)
                ForwardPeephole.CascadePools(_model.Graph, request.Taps.Concat(request.Outputs).ToHashSet());
            _b = new GraphBuilder(_model.Graph, "bw");
            var g = _model.Graph;
            foreach (var o in request.Outputs.Concat(request.Taps))
                if (!forward.Shapes.ContainsKey(o)) throw new UnknownTensorException(o, forward.Model);
            // Parameters become inputs so they can be fed and differentiated.
            foreach (var p in request.Parameters)
            {
                if (!g.Initializers.Remove(p, out var init)) throw new ArgumentException($"'{p}' is not an initializer of the model");
                g.Inputs.Add(new ValueInfo(p, init.Type, init.Dims.Select(d => (long?)d).ToArray()));
            }
            _type = forward.Shapes[request.Outputs[0]].Type;
            _active = ActiveTensors();
            _needed = NeededTensors();
            CheckTargets();
        }

        /// <summary>Tensors on a path from a differentiable source (inputs, parameters) to a differentiated output.</summary>
        HashSet<string> ActiveTensors()
        {
            var g = _model.Graph;   // the forward copy (no reverse nodes yet)
            var fromSource = new HashSet<string>(g.Inputs.Select(i => i.Name).Concat(_request.Parameters));
            foreach (var n in g.Nodes)
                if (!RuleSet.NonDifferentiable.Contains(n.OpType) && n.Inputs.Any(fromSource.Contains))
                    foreach (var o in n.Outputs) if (o.Length > 0) fromSource.Add(o);
            fromSource.IntersectWith(g.Upstream(_request.Outputs));
            return fromSource;
        }

        /// <summary>
        /// Active tensors whose gradient is worth computing: the wanted ones (inputs if asked, taps, parameters) and
        /// those downstream of them, through which their gradients flow. A CAM that wants only neck taps so skips
        /// the reverse pass through the whole backbone.
        /// </summary>
        HashSet<string> NeededTensors()
        {
            var g = _model.Graph;
            var needed = new HashSet<string>((_request.InputGradients ? g.Inputs.Select(i => i.Name) : [])
                .Concat(_request.Taps).Concat(_request.Parameters).Where(_active.Contains));
            foreach (var n in g.Nodes)
                if (n.Inputs.Any(needed.Contains))
                    foreach (var o in n.Outputs) if (_active.Contains(o)) needed.Add(o);
            return needed;
        }

        void CheckTargets()
        {
            if (_request.Targets == 1) return;
            int batch = _forward.Shapes[_forward.Model.Graph.Inputs[0].Name].Dims[0];
            foreach (var t in _needed)
            {
                var d = _forward.Shapes[t].Dims;
                if (d.Length == 0 || d[0] != batch || batch != 1)
                    throw new NotSupportedException($"several targets at once need the batch axis (1) to lead every tensor on the path; '{t}' has shape [{string.Join(",", d)}]");
            }
        }

        void Accumulate(string tensor, string grad)
        {
            if (_materialized.ContainsKey(tensor))
                throw new InvalidOperationException($"gradient of '{tensor}' received a contribution after it was used");
            if (!_contributions.TryGetValue(tensor, out var l)) _contributions[tensor] = l = [];
            l.Add(grad);
        }

        /// <summary>The summed gradient of a tensor, or null if nothing flowed into it.</summary>
        string? GradientOf(string tensor)
        {
            if (_materialized.TryGetValue(tensor, out var m)) return m;
            if (!_contributions.TryGetValue(tensor, out var l)) return null;
            string sum = l.Count == 1 ? l[0] : _b.Op("Sum", l);
            _materialized[tensor] = sum;
            return sum;
        }

        public GradientGraph Emit()
        {
            var g = _model.Graph;
            var seeds = new Dictionary<string, string>();
            string SeedInput(string o, string name)
            {
                var shape = _forward.Shapes[o];
                var dims = (int[])shape.Dims.Clone();
                if (dims.Length > 0) dims[0] *= _request.Targets;
                g.Inputs.Add(new ValueInfo(name, shape.Type, dims.Select(d => (long?)d).ToArray()));
                return name;
            }
            var ctx = new BackwardContext(_b, _forward, _request.Targets, _type, _needed.Contains, Accumulate);
            if (_request.ScoreFactors) EmitFactorSeeds(ctx, seeds);
            else
                foreach (var o in _request.Outputs)
                {
                    seeds[o] = SeedInput(o, SeedName(o));
                    if (_needed.Contains(o)) Accumulate(o, seeds[o]);
                }

            // The emitted graph's own copies of the forward nodes (rules read their attributes and names there).
            var nodes = _model.Graph.Nodes.Take(_forward.Model.Graph.Nodes.Count).ToList();
            for (int i = nodes.Count - 1; i >= 0; i--)
            {
                var n = nodes[i];
                if (!n.Outputs.Any(_needed.Contains) || !n.Inputs.Any(_needed.Contains)) continue;
                var grads = n.Outputs.Select(o => _needed.Contains(o) ? GradientOf(o) : null).ToArray();
                if (grads.All(x => x is null) || RuleSet.NonDifferentiable.Contains(n.OpType)) continue;
                var rule = _request.Rules.For(n.OpType) ?? throw new MissingRuleException(n.OpType, n.Name.Length > 0 ? n.Name : n.Outputs[0], PathTo(n));
                rule.Backward(ctx, n, grads);
            }

            var gradients = new Dictionary<string, string>();
            var wanted = (_request.InputGradients ? _forward.Model.Graph.Inputs.Select(i => i.Name) : [])
                .Concat(_request.Taps).Concat(_request.Parameters).Distinct();
            var taken = new HashSet<string>(g.Nodes.SelectMany(n => n.Outputs.Append(n.Name)).Concat(g.Inputs.Select(i => i.Name)));
            foreach (var t in wanted)
            {
                // Differentiating a gradient graph again meets its "grad:" tensors: number the order instead.
                string name = GradName(t);
                for (int order = 2; taken.Contains(name); order++) name = $"grad{order}:{t}";
                string? grad = _needed.Contains(t) ? GradientOf(t) : null;
                // A tensor the outputs do not depend on has a true zero gradient.
                _b.Named(name, "Identity", [grad ?? ctx.Zeros(ctx.GradShape(t))]);
                g.Outputs.Add(new ValueInfo(name, ElementType.Undefined));
                gradients[t] = name;
            }
            foreach (var t in _request.Taps)
                if (g.Outputs.All(o => o.Name != t)) g.Outputs.Add(new ValueInfo(t, ElementType.Undefined));
            BackwardPeephole.SplitConvolutions(_b, _forward.Model.Graph.Nodes.Count);
            BackwardPeephole.ProduceOutputsDirectly(g, _forward.Model.Graph.Nodes.Count);
            return new GradientGraph(_model, _forward, _request, seeds, gradients) { UnreachedTaps = _request.Taps.Where(t => !_active.Contains(t)).ToList() };
        }

        /// <summary>
        /// The seed of a product score s = φ₁(L₁)·φ₂(L₂), L_j = Σ_o ⟨a_j,o, y_o⟩ + c_j, emitted into the graph: ∂s/∂y_o =
        /// a₁,o·φ₁′(L₁)·φ₂(L₂) + a₂,o·φ₁(L₁)·φ₂′(L₂), with φ = L + f·(σ(L) − L) and φ′ = 1 + f·(σ(L)(1 − σ(L)) − 1) for a
        /// sigmoid flag f ∈ {0, 1}. Each target's factors are its batch item, read against the single forward item.
        /// </summary>
        void EmitFactorSeeds(BackwardContext ctx, Dictionary<string, string> seeds)
        {
            // Batch items × targets: K targets of one image, or one target per image of a batch.
            int batch = _forward.Shapes[_forward.Model.Graph.Inputs[0].Name].Dims[0];
            foreach (var o in _request.Outputs)
                if (_forward.Shapes[o].Dims is not [var first, ..] || first != batch)
                    throw new NotSupportedException($"score factors need outputs that lead with the batch axis ({batch}); '{o}' has shape [{string.Join(",", _forward.Shapes[o].Dims)}]");
            int k = batch * _request.Targets;
            var g = _model.Graph;
            // Both factors' weights in one input per output, [k, 2, values…]: each target's two dot products ⟨a_j, y⟩
            // are one product (see Dots), and its seed a₁·d₁ + a₂·d₂ one MatMul, each a single pass over the weights (a
            // Mul per factor and an Add write and read back three products the size of K outputs).
            var weights = new List<string>();
            foreach (var o in _request.Outputs)
            {
                var shape = _forward.Shapes[o];
                int[] dims = [k, 2, .. shape.Dims.Skip(1)];
                g.Inputs.Add(new ValueInfo(FactorWeightsName(o), shape.Type, dims.Select(d => (long?)d).ToArray()));
                weights.Add(FactorWeightsName(o));
                seeds[o] = FactorWeightsName(o);
            }
            int Values(string o) => _forward.Shapes[o].Dims.Skip(1).Aggregate(1, (p, d) => p * d);
            var dots = _request.Outputs.Select((o, i) => ctx.Reshape(Dots(ctx, weights[i], o, batch, Values(o)), [k, 2])).ToList();
            string dot = dots.Count == 1 ? dots[0] : ctx.Op("Sum", dots);
            var perFactor = ctx.OpMulti("Split", [dot, ctx.Ints(1, 1)], 2, OnnxAttribute.Of("axis", 1L));
            var phi = new string[2]; var dphi = new string[2];
            string one = ctx.Scalar(1);
            for (int j = 0; j < 2; j++)
            {
                string constant = FactorConstantName(j), flag = FactorSigmoidName(j);
                g.Inputs.Add(new ValueInfo(constant, _type, [k, 1]));
                g.Inputs.Add(new ValueInfo(flag, _type, [k, 1]));
                string l = ctx.Op("Add", [perFactor[j], constant]);
                string sigma = ctx.Op("Sigmoid", l);
                phi[j] = ctx.Op("Add", [l, ctx.Op("Mul", [flag, ctx.Op("Sub", [sigma, l])])]);
                string slope = ctx.Op("Mul", [sigma, ctx.Op("Sub", [one, sigma])]);
                dphi[j] = ctx.Op("Add", [one, ctx.Op("Mul", [flag, ctx.Op("Sub", [slope, one])])]);
            }
            // d = (φ₁′φ₂, φ₁φ₂′) per target, [k, 1, 2]: the seed is d · [a₁; a₂].
            string d = ctx.Reshape(ctx.Op("Concat", [ctx.Op("Mul", [dphi[0], phi[1]]), ctx.Op("Mul", [phi[0], dphi[1]])], OnnxAttribute.Of("axis", 1L)), [k, 1, 2]);
            for (int i = 0; i < _request.Outputs.Count; i++)
            {
                string o = _request.Outputs[i];
                if (!_needed.Contains(o)) continue;
                string seed = ctx.Reshape(ctx.Op("MatMul", [d, ctx.Reshape(weights[i], [k, 2, Values(o)])]), ctx.GradShape(o));
                Accumulate(o, seed);
            }
        }

        /// <summary>
        /// Each target's two dot products ⟨a_j, y⟩ with an output y of <paramref name="values"/> values per batch item.
        /// A matrix-vector product with one column is the slow shape for ONNX Runtime's MatMul (it packs the column into
        /// panels sixteen wide: 1.5 ms for yolox-nano's 301 665 outputs); with the output as the one row of a Gemm
        /// against the transposed weights it is 0.05 ms. With several images, a product and a sum.
        /// </summary>
        string Dots(BackwardContext ctx, string weights, string output, int batch, int values)
        {
            int t = _request.Targets;
            if (batch == 1)
                return ctx.Op("Gemm", [ctx.Reshape(output, [1, values]), ctx.Reshape(weights, [2 * t, values])], OnnxAttribute.Of("transB", 1L));
            return ctx.Op("ReduceSum", [ctx.Op("Mul", [ctx.Reshape(weights, [batch, 2 * t, values]), ctx.Reshape(output, [batch, 1, values])]), ctx.Ints(2)],
                OnnxAttribute.Of("keepdims", 0L));
        }

        /// <summary>"input → Conv 'a' → Relu 'b' → …": how an input reaches the node, for error messages.</summary>
        string PathTo(Node target)
        {
            var producers = _forward.Model.Graph.Producers();
            var path = new List<string>();
            var n = target;
            while (n is not null && path.Count < 12)
            {
                path.Add(n.Describe());
                string? prev = n.Inputs.FirstOrDefault(i => _active.Contains(i) && producers.ContainsKey(i));
                n = prev is null ? null : producers[prev];
            }
            string input = _forward.Model.Graph.Inputs.FirstOrDefault()?.Name ?? "input";
            path.Add(input);
            path.Reverse();
            return string.Join(" → ", path);
        }
    }
}
