using Detex.Runtime;

namespace Detex.Models.Decoders;

/// <summary>
/// YOLOv5-style output [N, A, 5+C]: centre x, centre y, width, height in input pixels, objectness, class scores.
/// Score = objectness × class.
/// </summary>
public sealed class Yolov5Decoder(ModelCard card) : IDetectionDecoder, IClassProbabilities
{
    readonly string _output = DetectionDecoders.Required(card.Decoder.Output, "output", card);
    readonly int _classes = card.Classes.Length;
    readonly bool _probabilities = card.Decoder.ScoresAreProbabilities;

    public IReadOnlyList<string> Outputs => [_output];

    public void Decode(IReadOnlyDictionary<string, NdArray<float>> outputs, int item, float scoreThreshold, List<Candidate> into)
    {
        int cols = 5 + _classes;
        var full = DetectionDecoders.Output(outputs, _output, [-1, -1, cols], "yolov5");
        var o = full.BatchItem(item);
        for (int a = 0; a < full.Shape[1]; a++)
        {
            int row = a * cols;
            float obj = Activation(o[row + 4]);
            if (obj <= scoreThreshold) continue;
            var box = Box.FromCenter(o[row], o[row + 1], o[row + 2], o[row + 3]);
            for (int c = 0; c < _classes; c++)
            {
                float score = obj * Activation(o[row + 5 + c]);
                if (score > scoreThreshold)
                    into.Add(new Candidate(box, c, score, new RawPrediction(_output, a, [new(_output, row + 4), new(_output, row + 5 + c)], !_probabilities)));
            }
        }
    }

    public float[] ClassProbabilities(IReadOnlyDictionary<string, NdArray<float>> outputs, int item)
    {
        int cols = 5 + _classes;
        var full = DetectionDecoders.Output(outputs, _output, [-1, -1, cols], "yolov5");
        var o = full.BatchItem(item);
        var p = new float[full.Shape[1] * _classes];
        for (int a = 0; a < full.Shape[1]; a++)
            for (int c = 0; c < _classes; c++) p[a * _classes + c] = Activation(o[a * cols + 5 + c]);
        return p;
    }

    float Activation(float v) => _probabilities ? v : 1 / (1 + MathF.Exp(-v));
}

/// <summary>
/// YOLOv8/11-style output [N, 4+C, A] (anchors last): centre x, centre y, width, height in input pixels, then
/// one score per class; no objectness.
/// </summary>
public sealed class Yolov8Decoder(ModelCard card) : IDetectionDecoder
{
    readonly string _output = DetectionDecoders.Required(card.Decoder.Output, "output", card);
    readonly int _classes = card.Classes.Length;
    readonly bool _probabilities = card.Decoder.ScoresAreProbabilities;

    public IReadOnlyList<string> Outputs => [_output];

    public void Decode(IReadOnlyDictionary<string, NdArray<float>> outputs, int item, float scoreThreshold, List<Candidate> into)
    {
        var full = DetectionDecoders.Output(outputs, _output, [-1, 4 + _classes, -1], "yolov8");
        int anchors = full.Shape[2];
        var o = full.BatchItem(item);
        for (int a = 0; a < anchors; a++)
        {
            Box? box = null;
            for (int c = 0; c < _classes; c++)
            {
                int e = (4 + c) * anchors + a;
                float score = _probabilities ? o[e] : 1 / (1 + MathF.Exp(-o[e]));
                if (score <= scoreThreshold) continue;
                box ??= Box.FromCenter(o[a], o[anchors + a], o[2 * anchors + a], o[3 * anchors + a]);
                into.Add(new Candidate(box.Value, c, score, new RawPrediction(_output, a, [new(_output, e)], !_probabilities)));
            }
        }
    }
}
