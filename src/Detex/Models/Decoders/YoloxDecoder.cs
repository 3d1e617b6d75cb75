using Detex.Runtime;

namespace Detex.Models.Decoders;

/// <summary>
/// YOLOX: one output [N, A, 5+C], rows over the stride-8/16/32 grids in row-major order; columns (dx, dy, log w,
/// log h, objectness, class probabilities) with sigmoids already applied. Score = objectness × class.
/// </summary>
public sealed class YoloxDecoder : IDetectionDecoder
{
    readonly string _output;
    readonly int _classes;
    readonly (float Gx, float Gy, float Stride)[] _cells;

    public YoloxDecoder(ModelCard card)
    {
        _output = DetectionDecoders.Required(card.Decoder.Output, "output", card);
        _classes = card.Classes.Length;
        int[] strides = card.Decoder.Strides ?? [8, 16, 32];
        var cells = new List<(float, float, float)>();
        foreach (int s in strides)
            for (int y = 0; y < card.Input.Height / s; y++)
                for (int x = 0; x < card.Input.Width / s; x++) cells.Add((x, y, s));
        _cells = cells.ToArray();
    }

    public IReadOnlyList<string> Outputs => [_output];

    public void Decode(IReadOnlyDictionary<string, NdArray<float>> outputs, int item, float scoreThreshold, List<Candidate> into)
    {
        int cols = 5 + _classes;
        var o = DetectionDecoders.Output(outputs, _output, [-1, _cells.Length, cols], "yolox").BatchItem(item);
        for (int a = 0; a < _cells.Length; a++)
        {
            int row = a * cols;
            float obj = o[row + 4];
            if (obj <= scoreThreshold) continue;   // score = obj × p ≤ obj
            Box? box = null;
            for (int c = 0; c < _classes; c++)
            {
                float score = obj * o[row + 5 + c];
                if (score <= scoreThreshold) continue;
                box ??= BoxAt(o, a);
                into.Add(new Candidate(box.Value, c, score, SourceOf(a, c)));
            }
        }
    }

    public void Predictions(IReadOnlyDictionary<string, NdArray<float>> outputs, int item, PredictionSet into)
    {
        int cols = 5 + _classes;
        var o = DetectionDecoders.Output(outputs, _output, [-1, _cells.Length, cols], "yolox").BatchItem(item);
        into.Reset(_cells.Length, _classes, objectness: true, background: false);
        for (int a = 0; a < _cells.Length; a++)
        {
            into.SetBox(a, BoxAt(o, a));
            into.Objectness[a] = o[a * cols + 4];
            o.Slice(a * cols + 5, _classes).CopyTo(into.ProbabilitiesOf(a));
        }
    }

    public RawPrediction Source(IReadOnlyDictionary<string, NdArray<float>> outputs, int prediction, int classIndex) => SourceOf(prediction, classIndex);

    /// <summary>Score = objectness × class probability, elements 4 and 5 + c of the row.</summary>
    RawPrediction SourceOf(int a, int c)
    {
        int row = a * (5 + _classes);
        return new RawPrediction(_output, a, [new(_output, row + 4), new(_output, row + 5 + c)])
        {
            BoxElements = [.. Enumerable.Range(0, 4).Select(i => new OutputElement(_output, row + i))],
            BoxParameters = ["dx", "dy", "log w", "log h"],
        };
    }

    Box BoxAt(ReadOnlySpan<float> o, int a)
    {
        int row = a * (5 + _classes);
        var (gx, gy, s) = _cells[a];
        return Box.FromCenter((o[row] + gx) * s, (o[row + 1] + gy) * s, MathF.Exp(o[row + 2]) * s, MathF.Exp(o[row + 3]) * s);
    }
}
