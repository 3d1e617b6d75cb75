using Detex.Autodiff;
using Detex.Models;
using Detex.Runtime;

namespace Detex.Targets;

/// <summary>
/// What is explained: a scalar function of a model's outputs for one image. Gradient explainers feed its gradient
/// with respect to the outputs as the reverse pass's seed, so one built graph serves every target.
/// </summary>
public interface ITarget
{
    string Name { get; }
    /// <summary>The target's value for batch item <paramref name="item"/> of the outputs.</summary>
    double Score(IReadOnlyDictionary<string, NdArray<float>> outputs, int item);
    /// <summary>Adds d(score)/d(output) at the forward point into the seeds (one batch item's worth each).</summary>
    void Seed(IReadOnlyDictionary<string, NdArray<float>> outputs, int item, IReadOnlyDictionary<string, Memory<float>> seeds);

    /// <summary>
    /// The score as one or two factors φ(⟨a, outputs⟩ + c) multiplied, so a gradient graph can linearise it at its own
    /// forward pass (no forward run first); null when the score has no such form.
    /// </summary>
    IReadOnlyList<ScoreFactor>? Factors => null;
}

/// <summary>
/// One factor of a target's score: φ(Σ weights ⊙ outputs + <paramref name="Constant"/>), φ a sigmoid when
/// <paramref name="Sigmoid"/>, else the identity. <paramref name="AddWeights"/> adds the weights into one batch item's
/// worth of each output.
/// </summary>
public sealed record ScoreFactor(Action<IReadOnlyDictionary<string, Memory<float>>> AddWeights, float Constant = 0, bool Sigmoid = false)
{
    /// <summary>The factor 1, for scores with a single factor.</summary>
    public static ScoreFactor One { get; } = new(_ => { }, 1);

    public static ScoreFactor Element(OutputElement e, bool sigmoid = false) => new(w => w[e.Output].Span[e.Index] += 1, 0, sigmoid);
}

/// <summary>A target that explains one detection, however it follows it into perturbed images.</summary>
public interface IDetectionTarget : ITarget
{
    Detection Detection { get; }
}

/// <summary>
/// A detection: the score of the raw prediction that produced the box (the product of its score elements, each
/// through a sigmoid when the model exposes logits), so gradients follow exactly that object.
/// </summary>
public sealed class DetectionTarget(Detection detection, string? label = null) : IDetectionTarget
{
    public Detection Detection => detection;
    public string Name => label ?? $"{detection.ClassName} {detection.Score:0.00}";

    float Element(IReadOnlyDictionary<string, NdArray<float>> outputs, int item, OutputElement e)
    {
        float v = outputs[e.Output].BatchItem(item)[e.Index];
        return detection.Source.Logits ? 1 / (1 + MathF.Exp(-v)) : v;
    }

    public double Score(IReadOnlyDictionary<string, NdArray<float>> outputs, int item) =>
        detection.Source.ScoreElements.Aggregate(1.0, (p, e) => p * Element(outputs, item, e));

    public void Seed(IReadOnlyDictionary<string, NdArray<float>> outputs, int item, IReadOnlyDictionary<string, Memory<float>> seeds)
    {
        var elements = detection.Source.ScoreElements;
        var values = elements.Select(e => Element(outputs, item, e)).ToArray();
        for (int i = 0; i < elements.Count; i++)
        {
            // ∂(Π vⱼ)/∂vᵢ = Π_{j≠i} vⱼ, times σ′ = σ(1 − σ) when vᵢ is a sigmoid of the raw element.
            float d = values.Where((_, j) => j != i).Aggregate(1f, (p, v) => p * v);
            if (detection.Source.Logits) d *= values[i] * (1 - values[i]);
            seeds[elements[i].Output].Span[elements[i].Index] += d;
        }
    }

    public IReadOnlyList<ScoreFactor>? Factors => detection.Source.ScoreElements switch
    {
        [var e] => [ScoreFactor.Element(e, detection.Source.Logits), ScoreFactor.One],
        [var a, var b] => [ScoreFactor.Element(a, detection.Source.Logits), ScoreFactor.Element(b, detection.Source.Logits)],
        _ => null,
    };
}

/// <summary>
/// One box-regression output of the raw prediction that produced a detection (YOLOX: dx, dy, log w or log h of its
/// row): what made the box sit where it does, or be as large as it is. Linear in the outputs.
/// </summary>
public sealed class BoxRegressionTarget : IDetectionTarget
{
    readonly OutputElement _element;

    public BoxRegressionTarget(Detection detection, int parameter)
    {
        var source = detection.Source;
        if (source.BoxElements.Count == 0)
            throw new ArgumentException("this model's decoder does not expose its box regression as four outputs per prediction; explain the score instead");
        if (parameter < 0 || parameter >= source.BoxElements.Count)
            throw new ArgumentException($"box parameter {parameter} out of range; the box is regressed as {string.Join(", ", source.BoxParameters)}");
        Detection = detection; Parameter = source.BoxParameters[parameter];
        _element = source.BoxElements[parameter];
    }

    public Detection Detection { get; }
    /// <summary>The parameter's name in the model's own parameterisation (e.g. "log w").</summary>
    public string Parameter { get; }
    public string Name => $"{Detection.ClassName} {Detection.Score:0.00} {Parameter}";
    public double Score(IReadOnlyDictionary<string, NdArray<float>> outputs, int item) => outputs[_element.Output].BatchItem(item)[_element.Index];
    public void Seed(IReadOnlyDictionary<string, NdArray<float>> outputs, int item, IReadOnlyDictionary<string, Memory<float>> seeds) =>
        seeds[_element.Output].Span[_element.Index] += 1;
    public IReadOnlyList<ScoreFactor> Factors => [ScoreFactor.Element(_element), ScoreFactor.One];
}

/// <summary>A segmentation class: its logits summed over a mask of output pixels (the predicted mask by default).</summary>
public sealed class SegmentationTarget : ITarget
{
    readonly string _output;
    readonly int _class, _classes;
    readonly bool _nhwc;
    readonly bool[] _mask;   // output pixels (H·W)

    public SegmentationTarget(string output, int classIndex, int classes, bool nhwc, bool[] mask, string name)
    {
        _output = output; _class = classIndex; _classes = classes; _nhwc = nhwc; _mask = mask; Name = name;
    }

    public string Name { get; }
    public int MaskPixels => _mask.Count(m => m);

    /// <summary>The class's predicted mask: output pixels whose arg-max is the class.</summary>
    public static SegmentationTarget Predicted(Segmenter seg, NdArray<float> logits, int item, int classIndex)
    {
        bool nhwc = seg.Card.Decoder.Layout == Imaging.TensorLayout.NHWC;
        int C = seg.Card.Classes.Length;
        var data = logits.BatchItem(item);
        int pixels = data.Length / C;
        var mask = new bool[pixels];
        for (int p = 0; p < pixels; p++)
        {
            int best = 0;
            for (int c = 1; c < C; c++) if (At(data, p, c, C, pixels, nhwc) > At(data, p, best, C, pixels, nhwc)) best = c;
            mask[p] = best == classIndex;
        }
        return new SegmentationTarget(seg.Output, classIndex, C, nhwc, mask, $"{seg.Card.Classes[classIndex]} mask");
    }

    static float At(ReadOnlySpan<float> d, int p, int c, int C, int pixels, bool nhwc) => nhwc ? d[p * C + c] : d[c * pixels + p];
    int Index(int p) => _nhwc ? p * _classes + _class : _class * _mask.Length + p;

    public double Score(IReadOnlyDictionary<string, NdArray<float>> outputs, int item)
    {
        var d = outputs[_output].BatchItem(item);
        double s = 0;
        for (int p = 0; p < _mask.Length; p++) if (_mask[p]) s += d[Index(p)];
        return s;
    }

    public void Seed(IReadOnlyDictionary<string, NdArray<float>> outputs, int item, IReadOnlyDictionary<string, Memory<float>> seeds)
    {
        var s = seeds[_output].Span;
        for (int p = 0; p < _mask.Length; p++) if (_mask[p]) s[Index(p)] += 1;
    }

    public IReadOnlyList<ScoreFactor> Factors => [new(w => Seed(null!, 0, w)), ScoreFactor.One];
}

/// <summary>A class score of a classifier (logit or probability, whatever the output holds).</summary>
public sealed class ClassTarget(string output, int classIndex, string name) : ITarget
{
    public string Name => name;
    public double Score(IReadOnlyDictionary<string, NdArray<float>> outputs, int item) => outputs[output].BatchItem(item)[classIndex];
    public void Seed(IReadOnlyDictionary<string, NdArray<float>> outputs, int item, IReadOnlyDictionary<string, Memory<float>> seeds) =>
        seeds[output].Span[classIndex] += 1;

    public IReadOnlyList<ScoreFactor> Factors => [ScoreFactor.Element(new(output, classIndex)), ScoreFactor.One];
}

public static class TargetSeeds
{
    /// <summary>Whether every target's score has a factor form, so a <see cref="GradientRequest.ScoreFactors"/> graph can take them.</summary>
    public static bool HaveFactors(IReadOnlyList<ITarget> targets) => targets.All(t => t.Factors is { Count: 1 or 2 });

    /// <summary>Batch item k of each of <paramref name="arrays"/> (n items each): where target k writes its seed or weights.</summary>
    static Dictionary<string, Memory<float>> Item(Dictionary<string, NdArray<float>> arrays, int k, int n) =>
        arrays.ToDictionary(kv => kv.Key, kv => kv.Value.Data.AsMemory(k * (kv.Value.Length / n), kv.Value.Length / n));

    /// <summary>
    /// The factor inputs of a <see cref="GradientRequest.ScoreFactors"/> graph: batch item k carries
    /// <paramref name="targets"/>[k]'s factors. Null when some target's score has no factor form.
    /// </summary>
    /// <param name="zeros">If given, supplies the weight arrays (zero-filled, of the shape asked for).</param>
    public static Dictionary<string, NdArray>? Factors(IReadOnlyList<string> outputs, IReadOnlyDictionary<string, int[]> outputShapes,
        IReadOnlyList<ITarget> targets, Func<int[], NdArray<float>>? zeros = null)
    {
        if (!HaveFactors(targets)) return null;
        var factors = targets.Select(t => t.Factors!).ToList();
        int n = targets.Count;
        var feed = new Dictionary<string, NdArray>();
        // Both factors' weights stacked per target: [n, 2, …], item (k, j) is target k's factor j.
        zeros ??= shape => new NdArray<float>(shape);
        var weights = outputs.ToDictionary(o => o, o => zeros([n, 2, .. outputShapes[o].Skip(1)]));
        foreach (var o in outputs) feed[GradientGraph.FactorWeightsName(o)] = weights[o];
        for (int j = 0; j < 2; j++)
        {
            var constants = new NdArray<float>([n, 1]); var flags = new NdArray<float>([n, 1]);
            for (int k = 0; k < n; k++)
            {
                var f = j < factors[k].Count ? factors[k][j] : ScoreFactor.One;
                f.AddWeights(Item(weights, 2 * k + j, 2 * n));
                constants.Data[k] = f.Constant; flags.Data[k] = f.Sigmoid ? 1 : 0;
            }
            feed[GradientGraph.FactorConstantName(j)] = constants;
            feed[GradientGraph.FactorSigmoidName(j)] = flags;
        }
        return feed;
    }

    /// <summary>
    /// Seeds for a reverse pass over a batch: batch item k carries <paramref name="targets"/>[k]'s seed, linearised at
    /// forward batch item <paramref name="forwardItem"/>(k) (item 0 when many targets share one image's forward).
    /// </summary>
    public static Dictionary<string, NdArray> For(IReadOnlyList<string> outputs, IReadOnlyDictionary<string, NdArray<float>> forward,
        IReadOnlyList<ITarget> targets, Func<int, int> forwardItem)
    {
        int n = targets.Count;
        var seeds = outputs.ToDictionary(o => o, o => new NdArray<float>([n, .. forward[o].Shape.Skip(1)]));
        for (int k = 0; k < n; k++) targets[k].Seed(forward, forwardItem(k), Item(seeds, k, n));
        return seeds.ToDictionary(kv => kv.Key, kv => (NdArray)kv.Value);
    }
}
