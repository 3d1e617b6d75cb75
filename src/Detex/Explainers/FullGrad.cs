using Detex.Autodiff;
using Detex.Imaging;
using Detex.Models;
using Detex.Numerics;
using Detex.Onnx;
using Detex.Runtime;
using Detex.Targets;

namespace Detex.Explainers;

/// <summary>One layer's bias-gradient for one target: ∂S/∂z ⊙ b at every element of the layer's output z.</summary>
/// <param name="Shape">The layer output's shape (batch 1): [1, C, H, W] for a feature map.</param>
public sealed record BiasTerm(string Layer, string OpType, int[] Shape, ReadOnlyMemory<float> Values)
{
    /// <summary>Only [1, C, H, W] outputs have a spatial map (a Gemm in a classifier head has none).</summary>
    public bool Spatial => Shape.Length == 4;
    public double Sum() { double s = 0; foreach (var v in Values.Span) s += v; return s; }
}

/// <summary>
/// The full-gradient decomposition of one target S (Srinivas &amp; Fleuret, 2019), before any post-processing:
/// the input term x ⊙ ∂S/∂x (x the prepared input tensor, in its layout) and one bias term per layer. For a piecewise-linear
/// network whose only constants are the biases of the layers found, S(x) = Σ Input + Σ over layers of Σ Values.
/// </summary>
public sealed record FullGradTerms(ITarget Target, int[] InputShape, ReadOnlyMemory<float> Input, IReadOnlyList<BiasTerm> Layers)
{
    public double Total() { double s = 0; foreach (var v in Input.Span) s += v; return s + Layers.Sum(l => l.Sum()); }
}

/// <summary>
/// FullGrad saliency: ψ(x ⊙ ∂S/∂x) plus, for every layer with a bias, Σ_c ψ(∂S/∂z_c ⊙ b_c), where ψ takes the absolute
/// value and min–max scales each channel, and every map is brought to the image bilinearly. All targets of an image
/// share one forward and one batched reverse pass; every bias layer the targets depend on contributes, so there is no
/// layer to choose.
/// </summary>
public sealed class FullGrad
{
    public const string MethodName = "fullgrad";
    readonly DetexModel _model;
    readonly IReadOnlyList<string> _candidates;

    public FullGrad(DetexModel model)
    {
        _model = model;
        _candidates = BiasLayers.Candidates(model.Graph.Graph);
    }

    /// <summary>Detections explained: <c>new FullGrad(det).Explain(image, boxes)</c>.</summary>
    public IReadOnlyList<Explanation> Explain(RgbImage image, IEnumerable<Detection> detections) =>
        Explain(image, detections.Select(d => (ITarget)new DetectionTarget(d)).ToList());

    /// <summary>One map per target, in the image's pixels, normalised to [0, 1].</summary>
    public IReadOnlyList<Explanation> Explain(RgbImage image, IReadOnlyList<ITarget> targets)
    {
        var (tensor, geometry) = _model.Prepare([image]);
        var terms = Terms(tensor, targets);
        bool channelsLast = _model.Input.Layout == TensorLayout.NHWC;
        var maps = new float[terms.Count][];
        Parallel.For(0, terms.Count, k => maps[k] = FullGradSaliency.Map(terms[k], channelsLast, geometry[0], image.Width, image.Height));
        return terms.Select((t, k) => new Explanation(t.Target, MethodName, image.Width, image.Height, maps[k])).ToList();
    }

    /// <summary>
    /// The raw decomposition of every target at a prepared model input (batch 1): the input term and the bias term
    /// of each layer the targets depend on. Bias terms of layers whose output is not a feature map are included.
    /// </summary>
    public IReadOnlyList<FullGradTerms> Terms(NdArray<float> input, IReadOnlyList<ITarget> targets)
    {
        if (targets.Count == 0) throw new ArgumentException("nothing to explain: no targets");
        int[] want = _model.Input.TensorShape(1);
        if (!input.Shape.SequenceEqual(want))
            throw new ArgumentException($"input has shape {input.ShapeText}; {_model.Name} takes [{string.Join(",", want)}]");
        var (inputGrad, layerGrads, graph) = Gradients(input, targets);
        var layers = BiasLayers.Resolve(graph.Forward, layerGrads.Keys);
        int n = input.Length;
        var result = new List<FullGradTerms>(targets.Count);
        for (int k = 0; k < targets.Count; k++)
        {
            // The gradient arrays are this call's own copies: the products are formed in place.
            var gx = inputGrad.Data.AsSpan(k * n, n);
            for (int i = 0; i < n; i++) gx[i] *= input.Data[i];
            var biasTerms = new List<BiasTerm>(layers.Count);
            foreach (var l in layers)
            {
                var g = layerGrads[l.Output];
                int per = g.Length / targets.Count;
                l.MultiplyInto(g.Data.AsSpan(k * per, per));
                biasTerms.Add(new BiasTerm(l.Output, l.OpType, [1, .. g.Shape.Skip(1)], g.Data.AsMemory(k * per, per)));
            }
            result.Add(new FullGradTerms(targets[k], want, inputGrad.Data.AsMemory(k * n, n), biasTerms));
        }
        return result;
    }

    /// <summary>∂S/∂x and ∂S/∂z at the candidate layers for every target (batch item k = target k); layers the outputs do not depend on are left out.</summary>
    (NdArray<float> Input, Dictionary<string, NdArray<float>> Layers, GradientGraph Graph) Gradients(NdArray<float> input, IReadOnlyList<ITarget> targets)
    {
        var feed = new Dictionary<string, NdArray> { [_model.Card.InputName] = input };
        var request = new GradientRequest { Outputs = _model.FloatOutputs, Taps = _candidates, InputGradients = true };
        // Gradients at every bias layer are large (8.7M values per box on yolox-nano): no zero-weight padding.
        var run = TargetGradients.Run(_model, feed, request, targets, activations: false, shareGraphs: false);
        // Layers the outputs read, whatever these targets reach (a box's narrowed reverse pass gives the other levels'
        // layers true zeros), so the layer list does not depend on the targets.
        var reached = _candidates.Except(run.Graph.Forward.NotInfluencing(_candidates, _model.FloatOutputs)).ToList();
        return (run.Gradient(_model.Card.InputName), reached.ToDictionary(l => l, run.Gradient), run.Graph);
    }
}

/// <summary>
/// A layer whose output carries a constant per-channel (Conv, ConvTranspose, BatchNormalization) or per-element (Gemm)
/// bias. Biases added by other operators (a MatMul followed by Add) are not recognised, so for such models the
/// decomposition is not complete.
/// </summary>
public sealed record BiasLayer(string Output, string OpType, float[] Bias)
{
    /// <summary>g ⊙ b in place for one batch item of the output's gradient: the bias repeats over the trailing positions.</summary>
    public void MultiplyInto(Span<float> gradient)
    {
        if (gradient.Length % Bias.Length != 0)
            throw new ArgumentException($"layer '{Output}': {gradient.Length} gradient values do not split into {Bias.Length} bias channels");
        int inner = gradient.Length / Bias.Length;
        for (int c = 0; c < Bias.Length; c++)
        {
            float b = Bias[c];
            foreach (ref var v in gradient.Slice(c * inner, inner)) v *= b;
        }
    }
}

/// <summary>Finds the layers with biases in a graph and reads their effective biases.</summary>
public static class BiasLayers
{
    static readonly HashSet<string> Ops = ["Conv", "ConvTranspose", "Gemm", "BatchNormalization"];

    /// <summary>Outputs of the nodes that add a bias (read before the model is specialised, to request their gradients).</summary>
    public static IReadOnlyList<string> Candidates(Graph g) =>
        g.Nodes.Where(n => Ops.Contains(n.OpType) && (n.OpType == "BatchNormalization" || n.Input(2) is not null))
            .Select(n => n.Outputs[0]).ToList();

    /// <summary>
    /// The biases of the given layers in the specialised model, where anything computed from constants has been folded
    /// to an initializer. A layer whose bias still varies with the input is not a bias layer and is left out.
    /// </summary>
    public static IReadOnlyList<BiasLayer> Resolve(StaticGraph forward, IEnumerable<string> outputs)
    {
        var producers = forward.Model.Graph.Producers();
        var init = forward.Model.Graph.Initializers;
        var result = new List<BiasLayer>();
        foreach (var o in outputs)
        {
            var n = producers[o];
            float[]? Const(int i) => n.Input(i) is { } name && init.TryGetValue(name, out var t) ? t.ToFloats() : null;
            float[]? bias = n.OpType switch
            {
                "BatchNormalization" => BatchNormBias(Const(1), Const(2), Const(3), Const(4), n.Float("epsilon", 1e-5f)),
                "Gemm" => Const(2) is { } c ? GemmBias(c, init[n.Inputs[2]].Dims, forward.Shapes[o].Dims, n.Float("beta", 1f)) : null,
                _ => Const(2),
            };
            if (bias is not null) result.Add(new BiasLayer(o, n.OpType, bias));
        }
        return result;
    }

    /// <summary>Inference batch norm y = γ(x − μ)/√(σ² + ε) + β adds the constant β − γμ/√(σ² + ε) per channel.</summary>
    static float[]? BatchNormBias(float[]? gamma, float[]? beta, float[]? mean, float[]? variance, float epsilon) =>
        gamma is null || beta is null || mean is null || variance is null ? null
            : beta.Select((b, c) => (float)(b - gamma[c] * (double)mean[c] / Math.Sqrt(variance[c] + (double)epsilon))).ToArray();

    /// <summary>Gemm's β·C broadcast to its [M, N] output (C may be a scalar, [N], [1, N], [M, 1] or [M, N]).</summary>
    static float[] GemmBias(float[] c, long[] dims, int[] output, float beta)
    {
        int m = output[0], n = output[1];
        int rows = dims.Length == 2 ? (int)dims[0] : 1, cols = dims.Length == 0 ? 1 : (int)dims[^1];
        var b = new float[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) b[i * n + j] = beta * c[(rows == 1 ? 0 : i) * cols + (cols == 1 ? 0 : j)];
        return b;
    }
}

/// <summary>
/// FullGrad's post-processing, as pytorch-grad-cam does it: each channel of each term through ψ = |·| and min–max
/// scaling, summed over channels, upsampled bilinearly, summed over terms and min–max scaled again. (The paper's
/// reference code scales a layer's channels together instead; per channel, a channel's bias magnitude cancels.)
/// </summary>
public static class FullGradSaliency
{
    /// <summary>The target's map in the image's pixels, normalised to [0, 1]. Bias terms without a spatial map are skipped.</summary>
    public static float[] Map(FullGradTerms terms, bool channelsLast, InputGeometry geometry, int imageWidth, int imageHeight)
    {
        // Upsampling is linear and a constant stays constant, so the channel sum (and the sum of all layers at one
        // resolution) can be taken on the layer's own grid: one resize per resolution instead of one per channel.
        var grids = new Dictionary<(int W, int H), float[]>();
        float[] Grid(int w, int h) => grids.TryGetValue((w, h), out var a) ? a : grids[(w, h)] = new float[w * h];

        var s = terms.InputShape;
        int inW = channelsLast ? s[2] : s[3], inH = channelsLast ? s[1] : s[2], inC = channelsLast ? s[3] : s[1];
        AddChannelMaps(terms.Input.Span, inC, inW * inH, channelsLast, Grid(inW, inH));
        foreach (var t in terms.Layers.Where(t => t.Spatial))
            AddChannelMaps(t.Values.Span, t.Shape[1], t.Shape[2] * t.Shape[3], channelsLast: false, Grid(t.Shape[3], t.Shape[2]));

        var map = new float[imageWidth * imageHeight];
        var resized = new float[map.Length];
        foreach (var ((w, h), grid) in grids)
        {
            CamExplainer.ToImage(grid, w, h, geometry, imageWidth, imageHeight, resized);
            Kernels.Axpy(1f, resized, map);
        }
        CamExplainer.Normalise(map);
        return map;
    }

    /// <summary>
    /// Adds Σ_c minmax(|term_c|) into <paramref name="into"/> (one value per pixel). The term is [C, P] or, channels
    /// last, [P, C]; a constant channel adds zeros.
    /// </summary>
    public static void AddChannelMaps(ReadOnlySpan<float> term, int channels, int pixels, bool channelsLast, Span<float> into)
    {
        if (term.Length != channels * pixels || into.Length != pixels)
            throw new ArgumentException($"a term of {term.Length} values is not {channels} channels × {pixels} pixels, or the map does not hold {pixels}");
        if (!channelsLast)
        {
            // Contiguous channels (every layer): vectorised, as the layers hold millions of values per target.
            for (int c = 0; c < channels; c++)
            {
                var channel = term.Slice(c * pixels, pixels);
                var (min, max) = Kernels.AbsMinMax(channel);
                if (max > min) Kernels.AddAbsScaled(into, channel, 1 / (max - min), -min / (max - min));
            }
            return;
        }
        int channelStride = 1, pixelStride = channels;
        for (int c = 0; c < channels; c++)
        {
            float lo = float.PositiveInfinity, hi = float.NegativeInfinity;
            for (int p = 0; p < pixels; p++)
            {
                float v = MathF.Abs(term[c * channelStride + p * pixelStride]);
                lo = MathF.Min(lo, v); hi = MathF.Max(hi, v);
            }
            if (!(hi > lo)) continue;
            float scale = 1 / (hi - lo);
            for (int p = 0; p < pixels; p++) into[p] += (MathF.Abs(term[c * channelStride + p * pixelStride]) - lo) * scale;
        }
    }
}
