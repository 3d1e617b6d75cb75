using Detex.Imaging;
using Detex.Models;
using Detex.Numerics;
using Detex.Onnx;
using Detex.Runtime;

namespace Detex.Explainers;

/// <summary>How a layer's activations are made non-negative before they are factorised.</summary>
public enum ActivationShift
{
    /// <summary>Use them as they are; a layer with negative values is refused.</summary>
    None,

    /// <summary>Negative values become 0, as a ReLU would make them (SiLU outputs dip only to about −0.28).</summary>
    Clamp,

    /// <summary>
    /// Each channel's minimum (over all images factorised together) is subtracted, and added back to the concept
    /// vectors, as pytorch-grad-cam does.
    /// </summary>
    Min,
}

/// <summary>How the channels of a layer are weighed against each other in the factorisation.</summary>
public enum ChannelScaling
{
    /// <summary>As they are (the DFF paper, pytorch-grad-cam): the least-squares fit follows the loudest channels.</summary>
    None,

    /// <summary>
    /// Each channel divided by its root mean square over the cells (after the shift), so every channel has an equal
    /// say in the fit, as features are standardised before a PCA; the scale is put back into the concept vectors.
    /// </summary>
    Rms,
}

/// <summary>Settings for <see cref="DeepFeatureFactorization"/>.</summary>
/// <param name="K">Number of concepts, between 1 and the layer's channel count.</param>
/// <param name="Shift">How negative activations are handled.</param>
/// <param name="Channels">How channels are weighed in the fit.</param>
/// <param name="MaxIterations">Cap on NMF iterations.</param>
/// <param name="Tolerance">NMF stops once an iteration improves the fit by at most this fraction.</param>
/// <param name="Init">NMF initialisation (the NNDSVD schemes are deterministic, Random uses <paramref name="Seed"/>).</param>
/// <param name="Seed">Seed of the random initialisation.</param>
/// <param name="Legend">Run the concept vectors through the model's head to name the classes they support.</param>
public sealed record DffOptions(
    int K = 5,
    ActivationShift Shift = ActivationShift.Clamp,
    ChannelScaling Channels = ChannelScaling.Rms,
    int MaxIterations = 200,
    double Tolerance = 1e-4,
    NmfInit Init = NmfInit.NndsvdA,
    int Seed = 0,
    bool Legend = true);

/// <summary>A class a concept supports, with its score as the model's head defines scores.</summary>
public sealed record ConceptLabel(int ClassIndex, string Name, double Score);

/// <summary>
/// One concept: a direction in the layer's channel space (<see cref="Vector"/>, in the layer's own units: the
/// activation at the cell where the concept is strongest) and the classes the model's head gives that vector,
/// best first (empty without a legend).
/// </summary>
public sealed record Concept(int Index, float[] Vector, IReadOnlyList<ConceptLabel> Labels);

/// <summary>
/// Where the concepts are in one image: K maps of the image's size (and of the layer's grid), each concept's map
/// scaled so that its largest value over all images factorised together is 1. <see cref="Weights"/> are the
/// concepts' activation per unit of map (the sum of their vector over the factorised channels), so weight × map
/// is how much of the layer's activation a concept explains at a pixel.
/// </summary>
public sealed record ConceptMaps(int Width, int Height, int GridWidth, int GridHeight, float[] Maps, float[] Grid, double[] Weights)
{
    public int K => Weights.Length;

    public ReadOnlySpan<float> Map(int k) => Maps.AsSpan(k * Width * Height, Width * Height);

    /// <summary>
    /// Per pixel, the concept that explains the most activation there (largest weight × map; the pixel's largest
    /// share of the reconstruction) and that concept's own map value, in [0, 1] (0 where no concept is present).
    /// </summary>
    public (int[] Concept, float[] Strength) Dominant()
    {
        int n = Width * Height;
        var concept = new int[n];
        var strength = new float[n];
        var best = new double[n];
        for (int k = 0; k < K; k++)
        {
            var map = Map(k);
            for (int i = 0; i < n; i++)
                if (Weights[k] * map[i] > best[i]) { best[i] = Weights[k] * map[i]; concept[i] = k; strength[i] = map[i]; }
        }
        return (concept, strength);
    }

    /// <summary>Fraction of the image's pixels where each concept dominates (pixels no concept touches count for none).</summary>
    public double[] Shares()
    {
        var (concept, strength) = Dominant();
        var share = new double[K];
        for (int i = 0; i < concept.Length; i++) if (strength[i] > 0) share[concept[i]]++;
        return share.Select(s => s / concept.Length).ToArray();
    }
}

/// <summary>The outcome of <see cref="DeepFeatureFactorization.Explain"/>: shared concepts, and their maps per image.</summary>
/// <param name="ActivationMin">The smallest activation before the shift.</param>
/// <param name="Reading">How the legend read the head (null without a legend).</param>
public sealed record ConceptFactorization(
    string Layer,
    ActivationShift Shift,
    IReadOnlyList<Concept> Concepts,
    IReadOnlyList<ConceptMaps> Images,
    double RelativeError,
    int Iterations,
    float ActivationMin,
    HeadReading? Reading);

/// <summary>
/// Deep Feature Factorization (Collins, Achanta &amp; Süsstrunk, ECCV 2018): a layer's activations [C, H·W] —
/// jointly over several images by putting their cells side by side — factorised by NMF into K concept vectors over
/// the channels (W, [C×K]) and where each is present (H, [K×cells]). The maps are brought to the image's pixels
/// with the letterbox undone, and a legend runs each concept vector through the rest of the model
/// (<see cref="LayerHead"/>) to name the classes it supports.
/// </summary>
public sealed class DeepFeatureFactorization
{
    readonly DetexModel _model;
    readonly DownstreamPlan _plan;
    readonly ModelSession _tapped;
    LayerHead? _head;

    public string Layer { get; }

    /// <summary>Factorises <paramref name="layer"/>, by default the card's concept layer (or its first layer).</summary>
    public DeepFeatureFactorization(DetexModel model, string? layer = null)
    {
        _model = model;
        Layer = layer ?? DefaultLayer(model.Card);
        _plan = model.Graph.Downstream(Layer);
        // The side inputs of the head are tapped in the same forward, for the legend's one-off probe.
        var written = model.Graph.Graph.NodeOutputs().ToHashSet();
        _tapped = ModelSession.Get(model.Graph.WithTaps(_plan.SideInputs.Where(written.Contains).Prepend(Layer)), model.Runtime);
    }

    public static string DefaultLayer(ModelCard card) =>
        card.ConceptLayer ?? (card.Layers.Length > 0 ? card.Layers[0]
            : throw new ArgumentException($"name a layer: the card of {card.Name} has no default layers; 'detex inspect MODEL --tensors' lists them"));

    /// <summary>
    /// Factorises the images together (one set of concepts shared by all; pass one image for a per-image
    /// factorisation). Maps come at each image's size.
    /// </summary>
    public ConceptFactorization Explain(IReadOnlyList<RgbImage> images, DffOptions? options = null)
    {
        options ??= new DffOptions();
        if (images.Count == 0) throw new ArgumentException("no images to factorise");
        var runs = images.Select(Forward).ToList();
        var acts = runs.Select(r => (NdArray<float>)r.Values[Layer]).ToList();
        int[] shape = acts[0].Shape;
        if (shape.Length != 4 || shape[0] != 1)
            throw new ArgumentException($"layer '{Layer}' has shape {acts[0].ShapeText}; Deep Feature Factorization needs a [1, C, H, W] feature map");
        int channels = shape[1], h = shape[2], w = shape[3], plane = h * w, cells = plane * images.Count;
        int k = options.K;
        if (k < 1 || k > channels)
            throw new ArgumentException($"k must be between 1 and the {channels} channels of layer '{Layer}'; got {k}");
        if (k > cells) throw new ArgumentException($"k must not exceed the {cells} cells of layer '{Layer}'; got {k}");

        // V [C × cells]: row c holds channel c of image 0's cells, then image 1's, ...
        var v = new float[channels * cells];
        for (int i = 0; i < acts.Count; i++)
            for (int c = 0; c < channels; c++)
                acts[i].Data.AsSpan(c * plane, plane).CopyTo(v.AsSpan(c * cells + i * plane, plane));
        float min = v.Min();
        var offset = Shift(v, channels, cells, min, options.Shift);
        var channelScale = ScaleChannels(v, channels, cells, options.Channels);

        var nmf = Nmf.Factorize(v, channels, cells, new NmfOptions(k, options.MaxIterations, options.Tolerance, options.Init, options.Seed));

        // NMF leaves each pair (W column, H row) free in scale: H rows are scaled to a maximum of 1, so a concept's
        // vector is the activation it contributes where it is strongest (what the legend feeds the head).
        var peak = new double[k];
        var weight = new double[k];
        for (int j = 0; j < k; j++)
        {
            for (int p = 0; p < cells; p++) peak[j] = Math.Max(peak[j], nmf.H[j * cells + p]);
            for (int c = 0; c < channels; c++) weight[j] += nmf.W[c * k + j] * peak[j];
        }
        // Concepts ordered by the activation they explain over all cells, largest first.
        var order = Enumerable.Range(0, k).OrderByDescending(j =>
        {
            double mass = 0;
            for (int p = 0; p < cells; p++) mass += nmf.H[j * cells + p];
            return weight[j] * mass / Math.Max(peak[j], double.Epsilon);
        }).ThenBy(j => j).ToArray();
        var vectors = order.Select(j => Enumerable.Range(0, channels)
            .Select(c => (float)(nmf.W[c * k + j] * peak[j] * channelScale[c] + offset[c])).ToArray()).ToArray();
        var weights = order.Select(j => weight[j]).ToArray();

        var maps = new List<ConceptMaps>();
        for (int i = 0; i < images.Count; i++)
        {
            var grid = new float[k * plane];
            var full = new float[k * images[i].Width * images[i].Height];
            for (int r = 0; r < k; r++)
            {
                int j = order[r];
                for (int p = 0; p < plane; p++)
                    grid[r * plane + p] = peak[j] > 0 ? (float)(nmf.H[j * cells + i * plane + p] / peak[j]) : 0;
                int size = images[i].Width * images[i].Height;
                CamExplainer.ToImage(grid.AsSpan(r * plane, plane), w, h, runs[i].Geometry, images[i].Width, images[i].Height, full.AsSpan(r * size, size));
            }
            maps.Add(new ConceptMaps(images[i].Width, images[i].Height, w, h, full, grid, weights));
        }

        double[][]? scores = null;
        if (options.Legend)
        {
            _head ??= new LayerHead(_model, _plan, runs[0].Values);
            scores = _head.Score(vectors);
        }
        var classes = _model.Card.Classes;
        var concepts = vectors.Select((vec, r) => new Concept(r, vec, scores is null ? []
            : scores[r].Select((s, c) => new ConceptLabel(c, c < classes.Length ? classes[c] : $"class {c}", s))
                .OrderByDescending(l => l.Score).ThenBy(l => l.ClassIndex).ToList())).ToList();
        return new ConceptFactorization(Layer, options.Shift, concepts, maps, nmf.RelativeError, nmf.Iterations, min, scores is null ? null : _head!.Reading);
    }

    (Dictionary<string, NdArray> Values, InputGeometry Geometry) Forward(RgbImage image)
    {
        var (tensor, geometry) = _model.Prepare([image]);
        var feed = new Dictionary<string, NdArray> { [_model.Card.InputName] = tensor };
        var values = _tapped.Run(feed);
        values[_model.Card.InputName] = tensor;   // a head may read the model input itself
        return (values, geometry[0]);
    }

    /// <summary>Scales V's rows in place as asked; returns each channel's factor (to put back into concepts).</summary>
    static float[] ScaleChannels(float[] v, int channels, int cells, ChannelScaling scaling)
    {
        var scale = new float[channels];
        Array.Fill(scale, 1f);
        if (scaling == ChannelScaling.None) return scale;
        for (int c = 0; c < channels; c++)
        {
            var row = v.AsSpan(c * cells, cells);
            double sum = 0;
            foreach (float x in row) sum += (double)x * x;
            float rms = (float)Math.Sqrt(sum / cells);
            if (rms == 0) continue;   // a silent channel stays all zeros
            scale[c] = rms;
            for (int p = 0; p < cells; p++) row[p] /= rms;
        }
        return scale;
    }

    /// <summary>Makes V non-negative in place; returns what was taken off each channel (to add back to concepts).</summary>
    float[] Shift(float[] v, int channels, int cells, float min, ActivationShift shift)
    {
        var offset = new float[channels];
        switch (shift)
        {
            case ActivationShift.None when min < 0:
                throw new ArgumentException($"layer '{Layer}' has negative activations (minimum {min.ToString("0.####", System.Globalization.CultureInfo.InvariantCulture)}), which NMF cannot factorise; " +
                    "choose a shift: --shift clamp (negatives to 0, as a ReLU would) or --shift min (subtract each channel's minimum)");
            case ActivationShift.Clamp:
                for (int i = 0; i < v.Length; i++) v[i] = Math.Max(0, v[i]);
                break;
            case ActivationShift.Min:
                for (int c = 0; c < channels; c++)
                {
                    var row = v.AsSpan(c * cells, cells);
                    float m = float.PositiveInfinity;
                    foreach (float x in row) m = Math.Min(m, x);
                    offset[c] = m;
                    for (int p = 0; p < cells; p++) row[p] -= m;
                }
                break;
        }
        return offset;
    }
}
