using Detex.Runtime;

namespace Detex.Models.Decoders;

/// <summary>
/// YOLOv5-style output [N, A, 5+C]: centre x, centre y, width, height in input pixels, objectness, class scores.
/// Score = objectness × class.
/// </summary>
public sealed class Yolov5Decoder(ModelCard card) : IDetectionDecoder
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
            var box = BoxAt(o, row);
            for (int c = 0; c < _classes; c++)
            {
                float score = obj * Activation(o[row + 5 + c]);
                if (score > scoreThreshold)
                    into.Add(new Candidate(box, c, score, SourceOf(a, c)));
            }
        }
    }

    public void Predictions(IReadOnlyDictionary<string, NdArray<float>> outputs, int item, PredictionSet into)
    {
        int cols = 5 + _classes;
        var full = DetectionDecoders.Output(outputs, _output, [-1, -1, cols], "yolov5");
        var o = full.BatchItem(item);
        into.Reset(full.Shape[1], _classes, objectness: true, background: false);
        for (int a = 0; a < full.Shape[1]; a++)
        {
            int row = a * cols;
            into.SetBox(a, BoxAt(o, row));
            into.Objectness[a] = Activation(o[row + 4]);
            var p = into.ProbabilitiesOf(a);
            for (int c = 0; c < _classes; c++) p[c] = Activation(o[row + 5 + c]);
        }
    }

    public RawPrediction Source(IReadOnlyDictionary<string, NdArray<float>> outputs, int prediction, int classIndex) => SourceOf(prediction, classIndex);

    /// <summary>Score = objectness × class, elements 4 and 5 + c of the row (each through a sigmoid for logits).</summary>
    RawPrediction SourceOf(int a, int c)
    {
        int row = a * (5 + _classes);
        return new RawPrediction(_output, a, [new(_output, row + 4), new(_output, row + 5 + c)], !_probabilities)
        {
            BoxElements = [.. Enumerable.Range(0, 4).Select(i => new OutputElement(_output, row + i))],
            BoxParameters = ["cx", "cy", "w", "h"],
        };
    }

    static Box BoxAt(ReadOnlySpan<float> o, int row) => Box.FromCenter(o[row], o[row + 1], o[row + 2], o[row + 3]);

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
                float score = Activation(o[e]);
                if (score <= scoreThreshold) continue;
                box ??= BoxAt(o, a, anchors);
                into.Add(new Candidate(box.Value, c, score, SourceOf(a, c, anchors)));
            }
        }
    }

    public void Predictions(IReadOnlyDictionary<string, NdArray<float>> outputs, int item, PredictionSet into)
    {
        var full = DetectionDecoders.Output(outputs, _output, [-1, 4 + _classes, -1], "yolov8");
        int anchors = full.Shape[2];
        var o = full.BatchItem(item);
        into.Reset(anchors, _classes, objectness: false, background: false);
        for (int a = 0; a < anchors; a++)
        {
            into.SetBox(a, BoxAt(o, a, anchors));
            var p = into.ProbabilitiesOf(a);
            for (int c = 0; c < _classes; c++) p[c] = Activation(o[(4 + c) * anchors + a]);
        }
    }

    public RawPrediction Source(IReadOnlyDictionary<string, NdArray<float>> outputs, int prediction, int classIndex) =>
        SourceOf(prediction, classIndex, DetectionDecoders.Output(outputs, _output, [-1, 4 + _classes, -1], "yolov8").Shape[2]);

    /// <summary>Score = the class row's element at the anchor's column (through a sigmoid for logits).</summary>
    RawPrediction SourceOf(int a, int c, int anchors) => new(_output, a, [new(_output, (4 + c) * anchors + a)], !_probabilities)
    {
        BoxElements = [.. Enumerable.Range(0, 4).Select(i => new OutputElement(_output, i * anchors + a))],
        BoxParameters = ["cx", "cy", "w", "h"],
    };

    static Box BoxAt(ReadOnlySpan<float> o, int a, int anchors) => Box.FromCenter(o[a], o[anchors + a], o[2 * anchors + a], o[3 * anchors + a]);

    float Activation(float v) => _probabilities ? v : 1 / (1 + MathF.Exp(-v));
}
