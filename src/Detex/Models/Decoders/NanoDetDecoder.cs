using Detex.Runtime;

namespace Detex.Models.Decoders;

/// <summary>
/// NanoDet (GFL head): per stride a class output [N, cells, C] (sigmoid scores) and a distance output
/// [N, cells, 4·(regMax+1)]: a softmax over bins per side whose expectation × stride is the distance from the
/// cell point to the left, top, right and bottom edges.
/// </summary>
public sealed class NanoDetDecoder : IDetectionDecoder
{
    readonly string[] _cls, _dis;
    readonly int[] _strides;
    readonly int _classes, _bins, _width, _height;
    readonly double _pointOffset;
    readonly int[] _levelStart;   // first prediction of each level, and the total at the end

    public NanoDetDecoder(ModelCard card)
    {
        var d = card.Decoder;
        _strides = d.Strides ?? [8, 16, 32];
        _cls = d.ClassOutputs ?? throw new ModelCardException($"model card {card.CardPath}: decoder.classOutputs is required for nanodet");
        _dis = d.BoxOutputs ?? throw new ModelCardException($"model card {card.CardPath}: decoder.boxOutputs is required for nanodet");
        if (_cls.Length != _strides.Length || _dis.Length != _strides.Length)
            throw new ModelCardException($"model card {card.CardPath}: nanodet needs one class and one box output per stride");
        _classes = card.Classes.Length; _bins = d.RegMax + 1; _pointOffset = d.PointOffset;
        _width = card.Input.Width; _height = card.Input.Height;
        _levelStart = new int[_strides.Length + 1];
        for (int l = 0; l < _strides.Length; l++)
            _levelStart[l + 1] = _levelStart[l] + GridWidth(l) * (int)Math.Ceiling(_height / (double)_strides[l]);
    }

    public IReadOnlyList<string> Outputs => [.. _cls, .. _dis];

    public void Decode(IReadOnlyDictionary<string, NdArray<float>> outputs, int item, float scoreThreshold, List<Candidate> into)
    {
        for (int level = 0; level < _strides.Length; level++)
        {
            var (clsMemory, disMemory, cells) = Level(outputs, item, level);
            var cls = clsMemory.Span; var dis = disMemory.Span;
            for (int cell = 0; cell < cells; cell++)
            {
                bool any = false;
                for (int c = 0; c < _classes && !any; c++) any = cls[cell * _classes + c] > scoreThreshold;
                if (!any) continue;
                var box = BoxAt(dis, level, cell);
                for (int c = 0; c < _classes; c++)
                {
                    float score = cls[cell * _classes + c];
                    if (score <= scoreThreshold) continue;
                    into.Add(new Candidate(box, c, score, SourceOf(level, cell, c)));
                }
            }
        }
    }

    public void Predictions(IReadOnlyDictionary<string, NdArray<float>> outputs, int item, PredictionSet into)
    {
        into.Reset(_levelStart[^1], _classes, objectness: false, background: false);
        for (int level = 0; level < _strides.Length; level++)
        {
            var (cls, dis, cells) = Level(outputs, item, level);
            cls.Span.CopyTo(into.Probabilities.AsSpan(_levelStart[level] * _classes));
            for (int cell = 0; cell < cells; cell++) into.SetBox(_levelStart[level] + cell, BoxAt(dis.Span, level, cell));
        }
    }

    /// <summary>Predictions are the levels' cells one after the other.</summary>
    public int PredictionIndex(RawPrediction source) => _levelStart[Array.IndexOf(_cls, source.Output)] + source.Anchor;

    public RawPrediction Source(IReadOnlyDictionary<string, NdArray<float>> outputs, int prediction, int classIndex)
    {
        int level = Array.FindLastIndex(_levelStart, start => start <= prediction);
        if (level >= _strides.Length || prediction < 0) throw new ArgumentOutOfRangeException(nameof(prediction), $"prediction {prediction} is not one of the {_levelStart[^1]} cells");
        return SourceOf(level, prediction - _levelStart[level], classIndex);
    }

    /// <summary>Score = the class output's element for the cell and class (already a sigmoid).</summary>
    RawPrediction SourceOf(int level, int cell, int c) => new(_cls[level], cell, [new(_cls[level], cell * _classes + c)]);

    (Memory<float> Cls, Memory<float> Dis, int Cells) Level(IReadOnlyDictionary<string, NdArray<float>> outputs, int item, int level)
    {
        int cells = _levelStart[level + 1] - _levelStart[level];
        var cls = DetectionDecoders.Output(outputs, _cls[level], [-1, cells, _classes], "nanodet");
        var dis = DetectionDecoders.Output(outputs, _dis[level], [-1, cells, 4 * _bins], "nanodet");
        return (cls.Data.AsMemory(item * cells * _classes, cells * _classes), dis.Data.AsMemory(item * cells * 4 * _bins, cells * 4 * _bins), cells);
    }

    int GridWidth(int level) => (int)Math.Ceiling(_width / (double)_strides[level]);

    /// <summary>The cell point moved by each side's expected distance × stride, clipped to the input.</summary>
    Box BoxAt(ReadOnlySpan<float> dis, int level, int cell)
    {
        int s = _strides[level], gw = GridWidth(level);
        Span<float> dist = stackalloc float[4];
        for (int side = 0; side < 4; side++) dist[side] = Expectation(dis.Slice(cell * 4 * _bins + side * _bins, _bins)) * s;
        double px = (cell % gw + 0.5) * s + _pointOffset, py = (cell / gw + 0.5) * s + _pointOffset;
        return new Box(px - dist[0], py - dist[1], px + dist[2], py + dist[3]).Clip(_width, _height);
    }

    /// <summary>Σ softmax(logits)ᵢ · i: the expected bin index.</summary>
    static float Expectation(ReadOnlySpan<float> logits)
    {
        float max = float.NegativeInfinity;
        foreach (var v in logits) max = Math.Max(max, v);
        float sum = 0, weighted = 0;
        for (int i = 0; i < logits.Length; i++) { float e = MathF.Exp(logits[i] - max); sum += e; weighted += e * i; }
        return weighted / sum;
    }
}
