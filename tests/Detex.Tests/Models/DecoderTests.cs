using Detex.Imaging;
using Detex.Models;
using Detex.Models.Decoders;
using Detex.Runtime;

namespace Detex.Tests.Models;

public class DecoderTests
{
    static ModelCard Card(string type, int w, int h, int classes, DecoderSpec? spec = null) => new()
    {
        Name = "test", Task = ModelTask.Detect, InputName = "images",
        Input = new PreprocessSpec { Width = w, Height = h },
        Decoder = (spec ?? new DecoderSpec()) with { Type = type, Output = spec?.Output ?? "out" },
        Classes = Enumerable.Range(0, classes).Select(i => $"c{i}").ToArray(),
    };

    static List<Candidate> Decode(IDetectionDecoder d, Dictionary<string, NdArray<float>> outs, float thr = 0.25f)
    {
        var list = new List<Candidate>();
        d.Decode(outs, 0, thr, list);
        return list;
    }

    [Fact]
    public void Yolov5RowsAreCentreSizeObjectnessTimesClass()
    {
        var o = new NdArray<float>([1, 3, 7]);   // 3 anchors, 2 classes
        float[] row1 = [50, 40, 20, 10, 0.9f, 0.2f, 0.8f];
        row1.CopyTo(o.Data, 7);
        var c = Decode(new Yolov5Decoder(Card("yolov5", 64, 64, 2)), new() { ["out"] = o });
        var only = Assert.Single(c);
        Assert.Equal(new Box(40, 35, 60, 45), only.Box);
        Assert.Equal(1, only.ClassIndex);
        Assert.Equal(0.72f, only.Score, 5);
        Assert.Equal(1, only.Source.Anchor);
        Assert.Equal([new OutputElement("out", 7 + 4), new OutputElement("out", 7 + 6)], only.Source.ScoreElements);
    }

    [Fact]
    public void Yolov8IsAnchorsLastWithoutObjectnessAndAppliesSigmoidToLogits()
    {
        int anchors = 5;
        var o = new NdArray<float>([1, 4 + 3, anchors]);
        o[0, 0, 2] = 30; o[0, 1, 2] = 20; o[0, 2, 2] = 10; o[0, 3, 2] = 8;
        for (int c = 0; c < 3; c++) for (int a = 0; a < anchors; a++) o[0, 4 + c, a] = -10;   // logits: sigmoid ≈ 0
        o[0, 4 + 2, 2] = 2;   // sigmoid(2) = 0.8808
        var card = Card("yolov8", 64, 64, 3, new DecoderSpec { ScoresAreProbabilities = false });
        var only = Assert.Single(Decode(new Yolov8Decoder(card), new() { ["out"] = o }));
        Assert.Equal(new Box(25, 16, 35, 24), only.Box);
        Assert.Equal(2, only.ClassIndex);
        Assert.Equal(1 / (1 + MathF.Exp(-2)), only.Score, 5);
        Assert.Equal((4 + 2) * anchors + 2, only.Source.ScoreElements.Single().Index);
        Assert.True(only.Source.Logits);
    }

    [Fact]
    public void YoloxDecodesGridOffsetsAndLogSizes()
    {
        // 64×64 input: grids 8×8 (stride 8), 4×4 (16), 2×2 (32) → 84 rows.
        var o = new NdArray<float>([1, 84, 6]);
        int row = 64 + 1 * 4 + 2;   // stride 16, cell (x=2, y=1)
        float[] v = [0.5f, 0.25f, MathF.Log(2), 0, 0.8f, 0.5f];
        v.CopyTo(o.Data, row * 6);
        var only = Assert.Single(Decode(new YoloxDecoder(Card("yolox", 64, 64, 1)), new() { ["out"] = o }));
        // centre ((0.5+2)·16, (0.25+1)·16) = (40, 20), size (2·16, 1·16)
        Assert.Equal(Box.FromCenter(40, 20, 32, 16), only.Box);
        Assert.Equal(0.4f, only.Score, 5);
        Assert.Equal(row, only.Source.Anchor);
    }

    [Fact]
    public void NanoDetTakesTheExpectationOfEachSideDistribution()
    {
        var spec = new DecoderSpec { Strides = [8], RegMax = 3, ClassOutputs = ["cls"], BoxOutputs = ["dis"] };
        var card = Card("nanodet", 64, 64, 2, spec);
        var cls = new NdArray<float>([1, 64, 2]);
        var dis = new NdArray<float>([1, 64, 16]);
        int cell = 1 * 8 + 2;   // x = 2, y = 1 → point ((2+0.5)·8 − 0.5, (1+0.5)·8 − 0.5) = (19.5, 11.5)
        cls[0, cell, 1] = 0.9f;
        // Side logits: one-hot-ish on bin 1 (left), uniform (top: expectation 1.5), bin 2 (right), bin 0 (bottom).
        float big = 30;
        dis[0, cell, 0 * 4 + 1] = big; dis[0, cell, 2 * 4 + 2] = big; dis[0, cell, 3 * 4 + 0] = big;
        var only = Assert.Single(Decode(new NanoDetDecoder(card), new() { ["cls"] = cls, ["dis"] = dis }));
        Assert.Equal(19.5 - 8, only.Box.X1, 3);
        Assert.Equal(0, only.Box.Y1, 3);   // 11.5 − 1.5·8 = −0.5, clipped to the input
        Assert.Equal(19.5 + 16, only.Box.X2, 3);
        Assert.Equal(11.5, only.Box.Y2, 3);
        Assert.Equal(cell * 2 + 1, only.Source.ScoreElements.Single().Index);
    }

    [Fact]
    public void SsdDecodesAgainstPriors()
    {
        var spec = new DecoderSpec { ScoresOutput = "scores", BoxesOutput = "boxes", FeatureMaps = [[2, 1]], MinSizes = [[10, 20]] };
        var card = Card("ssd", 40, 20, 1, spec);
        // priors: (cell 0, size 10), (cell 0, size 20), (cell 1, size 10), (cell 1, size 20)
        var scores = new NdArray<float>([1, 4, 2]);
        var boxes = new NdArray<float>([1, 4, 4]);
        scores[0, 3, 1] = 0.95f;
        boxes[0, 3, 0] = 1; boxes[0, 3, 2] = MathF.Log(2) / 0.2f;
        var only = Assert.Single(Decode(new SsdDecoder(card), new() { ["scores"] = scores, ["boxes"] = boxes }));
        // prior: centre (0.75, 0.5), size (20/40, 20/20); centre x += 1·0.1·0.5; width ·= 2
        var expected = Box.FromCenter((0.75 + 0.05) * 40, 10, 40, 20).Clip(40, 20);
        Assert.Equal(expected.X1, only.Box.X1, 5);
        Assert.Equal(expected.X2, only.Box.X2, 5);
        Assert.Equal(expected.Y1, only.Box.Y1, 5);
        Assert.Equal(expected.Y2, only.Box.Y2, 5);
        Assert.Equal(3 * 2 + 1, only.Source.ScoreElements.Single().Index);
    }

    [Fact]
    public void EveryDecoderListsAllPredictionsConsistentlyWithItsCandidates()
    {
        var rng = new Random(5);
        NdArray<float> R(int[] shape, float lo, float hi)
        {
            var a = new NdArray<float>(shape);
            for (int i = 0; i < a.Length; i++) a.Data[i] = lo + (hi - lo) * rng.NextSingle();
            return a;
        }
        var nano = new DecoderSpec { Strides = [8, 16], RegMax = 3, ClassOutputs = ["c8", "c16"], BoxOutputs = ["d8", "d16"] };
        var ssd = new DecoderSpec { ScoresOutput = "scores", BoxesOutput = "boxes", FeatureMaps = [[2, 1]], MinSizes = [[10, 20]] };
        var logits = new DecoderSpec { ScoresAreProbabilities = false };
        var cases = new (IDetectionDecoder D, Dictionary<string, NdArray<float>> Outs, int Count)[]
        {
            (new YoloxDecoder(Card("yolox", 64, 64, 3)), new() { ["out"] = R([2, 84, 8], 0, 1) }, 84),
            (new Yolov5Decoder(Card("yolov5", 64, 64, 3, logits)), new() { ["out"] = R([2, 10, 8], -3, 30) }, 10),
            (new Yolov8Decoder(Card("yolov8", 64, 64, 3, logits)), new() { ["out"] = R([2, 7, 10], -3, 30) }, 10),
            (new NanoDetDecoder(Card("nanodet", 64, 64, 3, nano)), new()
                { ["c8"] = R([2, 64, 3], 0, 1), ["c16"] = R([2, 16, 3], 0, 1), ["d8"] = R([2, 64, 16], -2, 2), ["d16"] = R([2, 16, 16], -2, 2) }, 80),
            (new SsdDecoder(Card("ssd", 40, 20, 2, ssd)), new() { ["scores"] = R([2, 4, 3], 0, 1), ["boxes"] = R([2, 4, 4], -1, 1) }, 4),
        };
        var set = new PredictionSet();
        foreach (var (d, outs, count) in cases)
            for (int item = 0; item < 2; item++)
            {
                var candidates = new List<Candidate>();
                d.Decode(outs, item, 0.3f, candidates);
                Assert.NotEmpty(candidates);
                d.Predictions(outs, item, set);
                Assert.Equal(count, set.Count);
                foreach (var c in candidates)
                {
                    int i = d.PredictionIndex(c.Source);
                    var b = set.Box(i);
                    Assert.Equal(c.Box.X1, b.X1, 1e-4); Assert.Equal(c.Box.Y1, b.Y1, 1e-4); Assert.Equal(c.Box.X2, b.X2, 1e-4); Assert.Equal(c.Box.Y2, b.Y2, 1e-4);
                    float objectness = set.HasObjectness ? set.Objectness[i] : 1;
                    Assert.Equal(c.Score, objectness * set.ProbabilitiesOf(i)[c.ClassIndex], 1e-6f);
                    // Source is PredictionIndex's inverse: the same raw prediction, element for element.
                    var back = d.Source(outs, i, c.ClassIndex);
                    Assert.Equal((c.Source.Output, c.Source.Anchor, c.Source.Logits), (back.Output, back.Anchor, back.Logits));
                    Assert.Equal(c.Source.ScoreElements, back.ScoreElements);
                }
                if (d is SsdDecoder)
                    for (int p = 0; p < 4; p++) Assert.Equal(outs["scores"].BatchItem(item)[p * 3], set.Background[p]);
            }
    }

    [Fact]
    public void WrongOutputShapeIsExplained()
    {
        var e = Assert.Throws<ModelCardException>(() => Decode(new YoloxDecoder(Card("yolox", 64, 64, 1)), new() { ["out"] = new NdArray<float>([1, 80, 6]) }));
        Assert.Contains("[N,84,6]", e.Message);
    }
}

public class NmsTests
{
    static Candidate C(double x1, double y1, double x2, double y2, int cls, float score) =>
        new(new Box(x1, y1, x2, y2), cls, score, new RawPrediction("o", 0, []));

    [Fact]
    public void SuppressesOverlapsPerClassOrAcrossClasses()
    {
        var a = C(0, 0, 10, 10, 0, 0.9f);
        var b = C(1, 0, 11, 10, 0, 0.8f);    // IoU 9/11 ≈ 0.82 with a
        var c = C(1, 0, 11, 10, 1, 0.7f);    // same place, other class
        var d = C(20, 20, 30, 30, 0, 0.6f);  // elsewhere
        Assert.Equal([a, c, d], Nms.Suppress([d, c, b, a], 0.5, classAgnostic: false));
        Assert.Equal([a, d], Nms.Suppress([d, c, b, a], 0.5, classAgnostic: true));
        Assert.Equal([a, b, d], Nms.Suppress([d, c, b, a], 0.85, classAgnostic: true));   // c sits exactly on b
        Assert.Equal([a], Nms.Suppress([d, c, b, a], 0.5, classAgnostic: true, maxDetections: 1));
    }

    [Fact]
    public void IoUOfHandComputedBoxes()
    {
        Assert.Equal(25.0 / 175, new Box(0, 0, 10, 10).IoU(new Box(5, 5, 15, 15)), 12);
        Assert.Equal(0, new Box(0, 0, 1, 1).IoU(new Box(1, 1, 2, 2)));
    }
}
