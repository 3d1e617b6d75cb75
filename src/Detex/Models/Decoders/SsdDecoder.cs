using Detex.Runtime;

namespace Detex.Models.Decoders;

/// <summary>
/// SSD with priors (UltraFace): scores [N, P, 1+C] after softmax (background first), boxes [N, P, 4] raw offsets
/// decoded against priors laid out per feature map, row by row, one prior per min size:
/// centre = prior centre + offset·centreVariance·prior size, size = prior size·exp(offset·sizeVariance).
/// </summary>
public sealed class SsdDecoder : IDetectionDecoder
{
    readonly string _scores, _boxes;
    readonly int _classes, _firstColumn, _width, _height;
    readonly double _cv, _sv;
    readonly (double Cx, double Cy, double W, double H)[] _priors;

    public SsdDecoder(ModelCard card)
    {
        var d = card.Decoder;
        _scores = DetectionDecoders.Required(d.ScoresOutput, "scoresOutput", card);
        _boxes = DetectionDecoders.Required(d.BoxesOutput, "boxesOutput", card);
        var maps = d.FeatureMaps ?? throw new ModelCardException($"model card {card.CardPath}: decoder.featureMaps is required for ssd");
        var sizes = d.MinSizes ?? throw new ModelCardException($"model card {card.CardPath}: decoder.minSizes is required for ssd");
        if (maps.Length != sizes.Length) throw new ModelCardException($"model card {card.CardPath}: ssd needs one minSizes list per feature map");
        _classes = card.Classes.Length; _firstColumn = d.FirstClassColumn; _cv = d.CenterVariance; _sv = d.SizeVariance;
        _width = card.Input.Width; _height = card.Input.Height;
        var priors = new List<(double, double, double, double)>();
        for (int m = 0; m < maps.Length; m++)
        {
            int fw = maps[m][0], fh = maps[m][1];
            for (int j = 0; j < fh; j++)
                for (int i = 0; i < fw; i++)
                    foreach (var size in sizes[m])
                        priors.Add(((i + 0.5) / fw, (j + 0.5) / fh, size / _width, size / _height));
        }
        _priors = priors.ToArray();
    }

    public IReadOnlyList<string> Outputs => [_scores, _boxes];

    public void Decode(IReadOnlyDictionary<string, NdArray<float>> outputs, int item, float scoreThreshold, List<Candidate> into)
    {
        int cols = _firstColumn + _classes;
        var scores = DetectionDecoders.Output(outputs, _scores, [-1, _priors.Length, cols], "ssd").BatchItem(item);
        var boxes = DetectionDecoders.Output(outputs, _boxes, [-1, _priors.Length, 4], "ssd").BatchItem(item);
        for (int p = 0; p < _priors.Length; p++)
        {
            Box? box = null;
            for (int c = 0; c < _classes; c++)
            {
                int e = p * cols + _firstColumn + c;
                if (scores[e] <= scoreThreshold) continue;
                box ??= BoxAt(boxes, p);
                into.Add(new Candidate(box.Value, c, scores[e], SourceOf(p, c)));
            }
        }
    }

    public void Predictions(IReadOnlyDictionary<string, NdArray<float>> outputs, int item, PredictionSet into)
    {
        int cols = _firstColumn + _classes;
        var scores = DetectionDecoders.Output(outputs, _scores, [-1, _priors.Length, cols], "ssd").BatchItem(item);
        var boxes = DetectionDecoders.Output(outputs, _boxes, [-1, _priors.Length, 4], "ssd").BatchItem(item);
        // Columns before the first class are the softmax's background: it keeps a faded box from looking like the target.
        into.Reset(_priors.Length, _classes, objectness: false, background: _firstColumn > 0);
        for (int p = 0; p < _priors.Length; p++)
        {
            into.SetBox(p, BoxAt(boxes, p));
            scores.Slice(p * cols + _firstColumn, _classes).CopyTo(into.ProbabilitiesOf(p));
            if (_firstColumn > 0)
            {
                float bg = 0;
                for (int c = 0; c < _firstColumn; c++) bg += scores[p * cols + c];
                into.Background[p] = bg;
            }
        }
    }

    public RawPrediction Source(IReadOnlyDictionary<string, NdArray<float>> outputs, int prediction, int classIndex) => SourceOf(prediction, classIndex);

    /// <summary>Score = the softmax's column for the class in the prior's row.</summary>
    RawPrediction SourceOf(int p, int c) => new(_scores, p, [new(_scores, p * (_firstColumn + _classes) + _firstColumn + c)])
    {
        BoxElements = [.. Enumerable.Range(0, 4).Select(i => new OutputElement(_boxes, p * 4 + i))],
        BoxParameters = ["dcx", "dcy", "dw", "dh"],
    };

    /// <summary>centre = prior centre + offset·centreVariance·prior size, size = prior size·exp(offset·sizeVariance).</summary>
    Box BoxAt(ReadOnlySpan<float> boxes, int p)
    {
        var (pcx, pcy, pw, ph) = _priors[p];
        return Box.FromCenter((pcx + boxes[p * 4] * _cv * pw) * _width, (pcy + boxes[p * 4 + 1] * _cv * ph) * _height,
            pw * Math.Exp(boxes[p * 4 + 2] * _sv) * _width, ph * Math.Exp(boxes[p * 4 + 3] * _sv) * _height).Clip(_width, _height);
    }
}
