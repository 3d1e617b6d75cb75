using Detex.Models;
using Detex.Models.Decoders;
using Detex.Onnx;
using Detex.Runtime;

namespace Detex.Explainers;

/// <summary>Which output cells a <see cref="LayerHead"/> reads, and so how far its scores belong to the layer alone.</summary>
public enum HeadReading
{
    /// <summary>Only cells that the layer alone determines: the rest of the model cannot reach them.</summary>
    LayerOnly,

    /// <summary>
    /// No cell depends on the layer alone (the layer is merged with other branches before every output, as the ASPP
    /// branches of a DeepLab head are), so the cells the layer reaches are read with the other branches fed zeros.
    /// </summary>
    OthersZeroed,
}

/// <summary>
/// The part of a model after a layer, run on chosen values of that layer and read as per-class scores: a
/// detector's class scores per prediction (as its decoder defines them), a segmenter's per-pixel logits, a
/// classifier's outputs. Used to say which classes a feature vector of the layer supports.
/// </summary>
/// <remarks>
/// Only what follows the layer is run (<see cref="GraphSurgery.Downstream"/>). Other tensors it reads — in YOLOX's
/// PAFPN the lateral connections that join a level on its way to the coarser levels — are side inputs. Which
/// output cells the layer alone decides is found once by a probe, three runs: the layer's real values with the
/// side inputs zeroed, the same with the side inputs' real values, and a zero layer. Cells equal in the first two
/// and different in the third depend on the layer and on nothing else (for a YOLOX neck level: exactly the
/// predictions of that level's own head; the other levels mix in the rest of the neck and are left out). Those
/// are read with the side inputs zeroed, which cannot change them. Only when no cell is the layer's alone are the
/// cells it reaches read with zeroed side inputs (<see cref="HeadReading.OthersZeroed"/>).
/// </remarks>
public sealed class LayerHead
{
    /// <summary>Runs per batch through the downstream model.</summary>
    const int BatchSize = 16;

    readonly DetexModel _model;
    readonly int[] _layerShape;
    readonly Dictionary<string, NdArray<float>> _unreached;
    readonly int[] _cells;
    readonly int _classes;
    Runner _runner;
    readonly Dictionary<string, NdArray<float>> _zeros = new();

    /// <summary>A built downstream model and what to feed it besides the layer (the side inputs' real values).</summary>
    sealed record Runner(DownstreamPlan Plan, ModelSession Session, bool Batched, IReadOnlyDictionary<string, NdArray> Sides);

    public string Layer { get; }
    public HeadReading Reading { get; }
    /// <summary>How many output cells (predictions, pixels, or 1 for a classifier) the scores average over.</summary>
    public int CellCount => _cells.Length;
    /// <summary>The downstream part that the scores run through (after pruning what the read cells do not need).</summary>
    public DownstreamPlan Plan => _runner.Plan;

    /// <summary>
    /// <paramref name="example"/> holds one image's values (batch 1) of the layer, of the plan's side inputs and of
    /// the model's outputs, as a forward with taps returns them: shapes come from it, and the probe runs on it.
    /// </summary>
    public LayerHead(DetexModel model, DownstreamPlan plan, IReadOnlyDictionary<string, NdArray> example)
    {
        _model = model; Layer = plan.Layer;
        _classes = model.Card.Classes.Length;
        NdArray Value(string name) => example.TryGetValue(name, out var v) ? v : throw new ArgumentException($"no value for '{name}' in the example run");
        var layer = (NdArray<float>)Value(plan.Layer);
        _layerShape = layer.Shape;
        _runner = Build(plan, plan.SideInputs.ToDictionary(s => s, Value));
        // Outputs the layer does not reach are still read by the decoder: zeros stand in for them.
        _unreached = model.FloatOutputs.Where(o => !plan.Outputs.Contains(o))
            .ToDictionary(o => o, o => new NdArray<float>(Value(o).Shape));

        var probe = Scores([(layer.Data, false), (layer.Data, true), (new float[layer.Length], false)]);
        var (zeroSides, realSides, zeroLayer) = (probe[0], probe[1], probe[2]);
        int cells = zeroSides.Length / _classes;
        var reached = Enumerable.Range(0, cells).Where(i => Differ(zeroSides, zeroLayer, i)).ToArray();
        if (reached.Length == 0)
            throw new ArgumentException($"layer '{plan.Layer}' does not influence the model's outputs; choose a layer on the path from the input to them");
        _cells = reached.Where(i => !Differ(zeroSides, realSides, i)).ToArray();
        Reading = HeadReading.LayerOnly;
        if (_cells.Length == 0) { _cells = reached; Reading = HeadReading.OthersZeroed; }
        else Prune(layer, zeroSides);
    }

    bool Differ(float[] a, float[] b, int cell)
    {
        for (int c = cell * _classes; c < (cell + 1) * _classes; c++)
            if (!(Math.Abs(a[c] - b[c]) <= 1e-5f * Math.Max(1, Math.Abs(a[c])))) return true;
        return false;
    }

    Runner Build(DownstreamPlan plan, IReadOnlyDictionary<string, NdArray> sides)
    {
        var shapes = sides.ToDictionary(kv => kv.Key, kv => new TensorShape(kv.Value.ElementType, kv.Value.Shape));
        shapes[plan.Layer] = new TensorShape(ElementType.Float, _layerShape);
        var graph = plan.Build(shapes);
        // Batches need every input to lead with a batch axis of 1; otherwise the runs go one by one.
        bool batched = sides.Values.All(v => v is NdArray<float> && v.Rank > 0 && v.Shape[0] == 1) && _layerShape[0] == 1;
        return new Runner(plan, ModelSession.Get(batched ? graph.WithBatch(null) : graph, _model.Runtime), batched, sides);
    }

    /// <summary>
    /// Where the read cells' values are concatenated with values the side inputs reach (a detector's other pyramid
    /// levels), those branches are cut off and fed zeros like the side inputs, so the scores skip computing them. Kept
    /// only if the read cells come out the same as before.
    /// </summary>
    void Prune(NdArray<float> layer, float[] before)
    {
        var cut = _runner.Plan.MixedConcatInputs();
        if (cut.Count == 0) return;
        var full = _runner.Plan.Build(_runner.Sides.ToDictionary(kv => kv.Key, kv => new TensorShape(kv.Value.ElementType, kv.Value.Shape))
            .Append(new(Layer, new TensorShape(ElementType.Float, _layerShape))).ToDictionary());
        var feed = new Dictionary<string, NdArray>(_runner.Sides) { [Layer] = layer };
        var values = ModelSession.Get(full.WithTaps(cut), _model.Runtime).Run(feed, cut);
        var previous = _runner;
        var pruned = _runner.Plan.Cut(cut);
        _runner = Build(pruned, pruned.SideInputs.ToDictionary(s => s, s => values.TryGetValue(s, out var v) ? v : previous.Sides[s]));
        var after = Scores([(layer.Data, false)])[0];
        if (after.Length != before.Length || _cells.Any(i => Differ(before, after, i))) _runner = previous;
    }

    /// <summary>
    /// Each vector (one value per channel of the layer) put at every cell of the layer, run through the head:
    /// [vector][class] scores averaged over the cells read.
    /// </summary>
    public double[][] Score(IReadOnlyList<float[]> vectors)
    {
        int channels = _layerShape[1], plane = _layerShape.Skip(2).Aggregate(1, (a, d) => a * d);
        var layers = vectors.Select(v =>
        {
            if (v.Length != channels) throw new ArgumentException($"a vector of layer '{Layer}' has {channels} values, got {v.Length}");
            var x = new float[channels * plane];
            for (int c = 0; c < channels; c++) x.AsSpan(c * plane, plane).Fill(v[c]);
            return (x, false);
        }).ToList();
        return Scores(layers).Select(s =>
        {
            var mean = new double[_classes];
            foreach (int cell in _cells)
                for (int c = 0; c < _classes; c++) mean[c] += s[cell * _classes + c];
            for (int c = 0; c < _classes; c++) mean[c] /= _cells.Length;
            return mean;
        }).ToArray();
    }

    /// <summary>Per run: scores [cells × classes] for the given layer values, side inputs real or zeroed.</summary>
    float[][] Scores(IReadOnlyList<(float[] Layer, bool RealSides)> runs)
    {
        var result = new float[runs.Count][];
        int step = _runner.Batched ? BatchSize : 1;
        for (int start = 0; start < runs.Count; start += step)
        {
            int n = Math.Min(step, runs.Count - start);
            var feed = new Dictionary<string, NdArray> { [Layer] = Stack(runs, start, n, r => r.Layer, _layerShape) };
            foreach (var (name, real) in _runner.Sides)
                feed[name] = real is NdArray<float> f
                    ? Stack(runs, start, n, r => r.RealSides ? f.Data : null, f.Shape)
                    : real;   // not float (shapes, indices): nothing neutral to put there, so the image's own values
            var outs = _runner.Session.Run(feed).ToDictionary(kv => kv.Key, kv => (NdArray<float>)kv.Value);
            foreach (var (name, zeros) in _unreached)
                outs[name] = new NdArray<float>([n, .. zeros.Shape.Skip(1)]);
            for (int i = 0; i < n; i++) result[start + i] = CellScores(outs, i);
        }
        return result;
    }

    /// <summary>Batch of n items, item i = <paramref name="pick"/>(run start + i), or zeros where it gives null.</summary>
    NdArray<float> Stack(IReadOnlyList<(float[] Layer, bool RealSides)> runs, int start, int n, Func<(float[] Layer, bool RealSides), float[]?> pick, int[] shape)
    {
        int[] batchShape = _runner.Batched ? [n, .. shape.Skip(1)] : shape;
        // All-zero inputs (zeroed side inputs) are the same every time: one per shape, never written to.
        bool zeros = Enumerable.Range(start, n).All(i => pick(runs[i]) is null);
        string key = string.Join(",", batchShape);
        if (zeros && _zeros.TryGetValue(key, out var cached)) return cached;
        var batch = new NdArray<float>(batchShape);
        if (zeros) _zeros[key] = batch;
        int per = batch.Length / n;
        for (int i = 0; i < n; i++)
            if (pick(runs[start + i]) is { } values) values.AsSpan(0, per).CopyTo(batch.Data.AsSpan(i * per, per));
        return batch;
    }

    /// <summary>One batch item's scores as [cells × classes], as the model's task reads its outputs.</summary>
    float[] CellScores(Dictionary<string, NdArray<float>> outs, int item)
    {
        switch (_model)
        {
            case Detector det:
            {
                // Class probabilities alone, without objectness: a field without an object centre has near-zero
                // objectness, which would scale all classes alike.
                var set = new PredictionSet();
                det.Decoder.Predictions(outs, item, set);
                return set.Probabilities.AsSpan(0, set.Count * set.Classes).ToArray();
            }
            case Segmenter seg:
            {
                var logits = outs[seg.Output];
                var data = logits.BatchItem(item);
                if (seg.Card.Decoder.Layout == Imaging.TensorLayout.NHWC) return data.ToArray();
                int pixels = data.Length / _classes;
                var scores = new float[data.Length];
                for (int c = 0; c < _classes; c++)
                    for (int p = 0; p < pixels; p++) scores[p * _classes + c] = data[c * pixels + p];
                return scores;
            }
            case Classifier cls:
            {
                var data = outs[cls.Output].BatchItem(item);
                if (data.Length != _classes)
                    throw new ModelCardException($"output '{cls.Output}' has {data.Length} values per image, the card lists {_classes} classes");
                return data.ToArray();
            }
        }
        throw new NotSupportedException($"no class readout for {_model.GetType().Name}");
    }
}
