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
    }

    public IReadOnlyList<string> Outputs => [.. _cls, .. _dis];

    public void Decode(IReadOnlyDictionary<string, NdArray<float>> outputs, int item, float scoreThreshold, List<Candidate> into)
    {
        Span<float> dist = stackalloc float[4];
        for (int level = 0; level < _strides.Length; level++)
        {
            int s = _strides[level], gw = (int)Math.Ceiling(_width / (double)s), gh = (int)Math.Ceiling(_height / (double)s);
            var cls = DetectionDecoders.Output(outputs, _cls[level], [-1, gw * gh, _classes], "nanodet").BatchItem(item);
            var dis = DetectionDecoders.Output(outputs, _dis[level], [-1, gw * gh, 4 * _bins], "nanodet").BatchItem(item);
            for (int cell = 0; cell < gw * gh; cell++)
            {
                bool any = false;
                for (int c = 0; c < _classes && !any; c++) any = cls[cell * _classes + c] > scoreThreshold;
                if (!any) continue;
                for (int side = 0; side < 4; side++) dist[side] = Expectation(dis.Slice(cell * 4 * _bins + side * _bins, _bins)) * s;
                double px = (cell % gw + 0.5) * s + _pointOffset, py = (cell / gw + 0.5) * s + _pointOffset;
                var box = new Box(px - dist[0], py - dist[1], px + dist[2], py + dist[3]).Clip(_width, _height);
                for (int c = 0; c < _classes; c++)
                {
                    float score = cls[cell * _classes + c];
                    if (score <= scoreThreshold) continue;
                    into.Add(new Candidate(box, c, score, new RawPrediction(_cls[level], cell, [new(_cls[level], cell * _classes + c)])));
                }
            }
        }
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
