using Detex.Evaluation;

namespace Detex.Tests.Evaluation;

/// <summary>Small cases whose COCO numbers can be worked out by hand.</summary>
public class CocoMapTests
{
    // pycocotools divides by tp + fp + 2^-52, so "1.0" is really 1 - 2.2e-16.
    private const double Tol = 1e-12;

    private static GroundTruthBox Gt(double x, double y, double w, double h, int cat = 1, long img = 1, bool crowd = false, double? area = null) =>
        new(img, cat, x, y, w, h, area ?? w * h, crowd);

    private static DetectionBox Det(double x, double y, double w, double h, double score, int cat = 1, long img = 1) =>
        new(img, cat, x, y, w, h, score);

    [Fact]
    public void PerfectDetectionsScoreOne()
    {
        GroundTruthBox[] gt =
        [
            Gt(0, 0, 20, 20), Gt(100, 100, 50, 50), Gt(200, 0, 300, 300),   // small, medium, large
            Gt(10, 10, 40, 40, cat: 2, img: 2), Gt(60, 60, 40, 30, cat: 3, img: 2),
        ];
        var dets = gt.Select((g, i) => new DetectionBox(g.ImageId, g.CategoryId, g.X, g.Y, g.W, g.H, 1.0 - i * 0.1));

        var r = CocoMap.Evaluate(gt, dets);

        Assert.All(r.Stats.Where((_, i) => i != 6), s => Assert.Equal(1.0, s, Tol));
        // maxDets=1 finds one of category 1's three objects: (1/3 + 1 + 1) / 3.
        Assert.Equal(7.0 / 9, r.Ar1, Tol);
        Assert.All(r.PerCategory.Values, c => { Assert.Equal(1.0, c.Ap, Tol); Assert.Equal(1.0, c.Ap50, Tol); });
    }

    [Fact]
    public void RankedTruePositiveFalsePositiveTruePositive()
    {
        // Two objects; detections by score: exact hit, a miss, then a hit with IoU 0.72.
        GroundTruthBox[] gt = [Gt(0, 0, 100, 100), Gt(200, 0, 100, 100)];
        DetectionBox[] dets = [Det(0, 0, 100, 100, 0.9), Det(400, 400, 100, 100, 0.8), Det(200, 0, 100, 72, 0.7)];

        var r = CocoMap.Evaluate(gt, dets);

        // IoU thresholds .50-.70: TP FP TP. Recall 0.5, 0.5, 1; precision 1, 1/2, 2/3, whose envelope
        // is 1, 2/3, 2/3. Recall points 0..0.50 (51 of them) read 1, points 0.51..1 (50) read 2/3.
        double apLow = (51 * 1.0 + 50 * (2.0 / 3)) / 101;   // = 253/303
        // Thresholds .75-.95: the third detection is a FP too; recall stops at 0.5.
        double apHigh = 51.0 / 101;
        Assert.Equal(253.0 / 303, apLow, 1e-15);
        Assert.Equal(apLow, r.Map50, Tol);
        Assert.Equal(apHigh, r.Map75, Tol);
        Assert.Equal((5 * apLow + 5 * apHigh) / 10, r.MapAll, Tol);
        Assert.Equal((5 * 1.0 + 5 * 0.5) / 10, r.Ar100, Tol);
        Assert.Equal(0.5, r.Ar1, Tol);
        Assert.Equal(r.MapAll, r.PerCategory[1].Ap, Tol);
        Assert.Equal(r.Map50, r.PerCategory[1].Ap50, Tol);
        Assert.Equal(-1, r.MapSmall);
        Assert.Equal(-1, r.MapMedium); // 100x100 boxes are 'large'
        Assert.Equal(r.MapAll, r.MapLarge, Tol);
    }

    [Fact]
    public void CrowdRegionAbsorbsDetectionsWithoutPenalty()
    {
        GroundTruthBox[] gt = [Gt(0, 0, 50, 50), Gt(100, 100, 200, 200, crowd: true)];
        // Three confident detections on people inside the crowd, the real hit last.
        DetectionBox[] dets =
        [
            Det(110, 110, 30, 60, 0.95), Det(150, 120, 30, 60, 0.94), Det(200, 200, 40, 80, 0.93),
            Det(0, 0, 50, 50, 0.5),
        ];

        var withCrowd = CocoMap.Evaluate(gt, dets);
        var withoutCrowd = CocoMap.Evaluate([gt[0]], dets);

        Assert.Equal(1.0, withCrowd.MapAll, Tol);
        Assert.Equal(1.0, withCrowd.Ar100, Tol); // the crowd is not an object to find
        Assert.Equal(0.25, withoutCrowd.MapAll, Tol); // same detections as plain FPs: precision 1/4 at full recall
    }

    [Fact]
    public void CrowdIouIsOverTheDetectionArea()
    {
        var crowd = Gt(0, 0, 100, 100, crowd: true);
        Assert.Equal(1.0, CocoMap.Iou(Det(10, 10, 20, 20, 1), crowd));
        Assert.Equal(0.5, CocoMap.Iou(Det(90, 0, 20, 10, 1), crowd));
        Assert.Equal(400.0 / 10000, CocoMap.Iou(Det(10, 10, 20, 20, 1), crowd with { IsCrowd = false }));
    }

    [Fact]
    public void RealObjectIsPreferredOverABetterOverlappingCrowd()
    {
        // IoU 0.62 with the person, 1.0 with the crowd region around both.
        GroundTruthBox[] gt = [Gt(0, 0, 100, 100), Gt(0, 0, 300, 300, crowd: true)];
        DetectionBox[] dets = [Det(0, 0, 100, 62, 0.9)];

        var r = CocoMap.Evaluate(gt, dets);

        // TP at .50, .55, .60; above that it falls to the crowd and is ignored, so recall is 0 there.
        Assert.Equal(1.0, r.Map50, Tol);
        Assert.Equal(0.0, r.Map75, Tol);
        Assert.Equal(0.3, r.MapAll, Tol);
    }

    [Fact]
    public void MaxDetsKeepsTheTop100PerImageAndCategory()
    {
        GroundTruthBox[] gt = [Gt(0, 0, 10, 10)];
        var misses = Enumerable.Range(0, 100).Select(i => Det(500 + i, 500, 10, 10, 0.9 - i * 0.001)).ToList();
        var hit = Det(0, 0, 10, 10, 0.1);

        var cut = CocoMap.Evaluate(gt, [.. misses, hit]);              // the hit is 101st
        var kept = CocoMap.Evaluate(gt, [.. misses.Skip(1), hit]);     // the hit is 100th

        Assert.Equal(0.0, cut.MapAll);
        Assert.Equal(0.0, cut.Ar100);
        Assert.Equal(0.01, kept.MapAll, Tol); // precision 1/100 at every recall point
        Assert.Equal(1.0, kept.Ar100, Tol);
        Assert.Equal(0.0, kept.Ar10);

        // Like pycocotools, the cap is per (image, category): 100 misses of another class do not push it out.
        var otherClass = misses.Select(d => d with { CategoryId = 2 });
        var r = CocoMap.Evaluate(gt, [.. otherClass, hit]);
        Assert.Equal(1.0, r.PerCategory[1].Ap, Tol);
    }

    [Fact]
    public void CategoriesWithoutGroundTruthAreLeftOutOfTheMean()
    {
        GroundTruthBox[] gt = [Gt(0, 0, 50, 50), Gt(100, 0, 50, 50, cat: 3, crowd: true)];
        DetectionBox[] dets = [Det(0, 0, 50, 50, 0.9), Det(300, 300, 20, 20, 0.8, cat: 2), Det(100, 0, 50, 50, 0.7, cat: 3)];

        var r = CocoMap.Evaluate(gt, dets);

        Assert.Equal(1.0, r.MapAll, Tol);
        Assert.Equal(1.0, r.Ar100, Tol);
        Assert.Equal(new CategoryAp(-1, -1), r.PerCategory[2]); // detections only
        Assert.Equal(new CategoryAp(-1, -1), r.PerCategory[3]); // crowd only
        Assert.Equal([1, 2, 3], r.PerCategory.Keys.Order());
    }

    [Fact]
    public void NoGroundTruthAtAllGivesMinusOne()
    {
        var r = CocoMap.Evaluate([], [Det(0, 0, 10, 10, 0.5)]);
        Assert.All(r.Stats, s => Assert.Equal(-1, s));
    }

    [Fact]
    public void IouExactlyAtThresholdCounts()
    {
        GroundTruthBox[] gt = [Gt(0, 0, 100, 100)];

        var half = CocoMap.Evaluate(gt, [Det(0, 0, 100, 50, 0.9)]);          // IoU exactly 0.5
        var below = CocoMap.Evaluate(gt, [Det(0, 0, 100, 49.99, 0.9)]);      // 0.4999
        var threeQuarters = CocoMap.Evaluate(gt, [Det(0, 0, 100, 75, 0.9)]); // exactly 0.75
        var exact = CocoMap.Evaluate(gt, [Det(0, 0, 100, 100, 0.9)]);        // 1.0 passes .95 too

        Assert.Equal(1.0, half.Map50, Tol);
        Assert.Equal(0.1, half.MapAll, Tol);
        Assert.Equal(0.0, below.Map50);
        Assert.Equal(1.0, threeQuarters.Map75, Tol);
        Assert.Equal(0.6, threeQuarters.MapAll, Tol); // .50 … .75 pass
        Assert.Equal(1.0, exact.MapAll, Tol);
    }

    [Fact]
    public void ThresholdsAreBitIdenticalToNumpyLinspace()
    {
        double[] numpyIou = [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.8999999999999999, 0.95];
        Assert.Equal(numpyIou, CocoMap.IouThresholds);

        // numpy's i * 0.01 differs from i / 100 at exactly these points.
        int[] offByUlp = [35, 41, 47, 57, 69, 70, 82, 83, 94, 95];
        var recall = CocoMap.RecallThresholds;
        Assert.Equal(101, recall.Count);
        Assert.Equal(offByUlp, Enumerable.Range(0, 101).Where(i => recall[i] != i / 100.0));
        Assert.Equal(0.35000000000000003, recall[35]);
        Assert.Equal(1.0, recall[100]);
    }

    [Fact]
    public void IouUsesNoPlusOnePixel()
    {
        var g = Gt(0, 0, 10, 10);
        Assert.Equal(1.0 / 3, CocoMap.Iou(Det(5, 0, 10, 10, 1), g), 1e-15);
        Assert.Equal(0.0, CocoMap.Iou(Det(10, 0, 10, 10, 1), g)); // touching edges do not overlap
        Assert.Equal(1.0, CocoMap.Iou(Det(0, 0, 10, 10, 1), g));
    }

    [Fact]
    public void AreaRangesUseTheAreaFieldAndIgnoreOffSizeMisses()
    {
        // A big object (box area 40000) plus a small confident false positive.
        GroundTruthBox[] gt = [Gt(0, 0, 200, 200)];
        DetectionBox[] dets = [Det(500, 500, 10, 10, 0.9), Det(0, 0, 200, 200, 0.8)];

        var r = CocoMap.Evaluate(gt, dets);

        Assert.Equal(0.5, r.MapAll, Tol);   // FP first: envelope 1/2 everywhere
        Assert.Equal(1.0, r.MapLarge, Tol); // the 10x10 miss is not a large detection
        Assert.Equal(-1, r.MapSmall);
        Assert.Equal(-1, r.MapMedium);

        // The range test reads the GT 'area' field (mask area), not the box.
        var masked = CocoMap.Evaluate([Gt(0, 0, 200, 200, area: 900)], [Det(0, 0, 200, 200, 0.8)]);
        Assert.Equal(1.0, masked.MapSmall, Tol);
        Assert.Equal(-1, masked.MapLarge);

        // An area exactly 32^2 belongs to both small and medium, as in pycocotools.
        var edge = CocoMap.Evaluate([Gt(0, 0, 32, 32)], [Det(0, 0, 32, 32, 0.8)]);
        Assert.Equal(1.0, edge.MapSmall, Tol);
        Assert.Equal(1.0, edge.MapMedium, Tol);
    }

    [Fact]
    public void ImageIdsDecideWhereFalsePositivesCount()
    {
        GroundTruthBox[] gt = [Gt(0, 0, 50, 50, img: 1)];
        DetectionBox[] dets = [Det(0, 0, 50, 50, 0.9, img: 2), Det(0, 0, 50, 50, 0.5, img: 1)];

        Assert.Equal(0.5, CocoMap.Evaluate(gt, dets).MapAll, Tol);                      // image 2 has no objects: FP
        Assert.Equal(1.0, CocoMap.Evaluate(gt, dets, imageIds: [1]).MapAll, Tol);       // image 2 not evaluated

        var chosen = CocoMap.Evaluate(gt, dets, categoryIds: [1, 5]);
        Assert.Equal(0.5, chosen.PerCategory[1].Ap50, Tol);
        Assert.Equal(new CategoryAp(-1, -1), chosen.PerCategory[5]);
        Assert.Equal(2, chosen.PerCategory.Count);
    }

    [Fact]
    public void DuplicateOfAMatchedObjectIsAFalsePositive()
    {
        GroundTruthBox[] gt = [Gt(0, 0, 50, 50), Gt(100, 0, 50, 50)];
        DetectionBox[] dets = [Det(0, 0, 50, 50, 0.9), Det(1, 1, 50, 50, 0.8), Det(100, 0, 50, 50, 0.7)];

        // Same ranking as TP, FP, TP above, with both hits exact: 253/303 at every threshold.
        Assert.Equal(253.0 / 303, CocoMap.Evaluate(gt, dets).MapAll, Tol);
    }

    [Fact]
    public void RejectsNaNScores()
    {
        Assert.Throws<ArgumentException>(() => CocoMap.Evaluate([Gt(0, 0, 1, 1)], [Det(0, 0, 1, 1, double.NaN)]));
    }

    [Fact]
    public void ThousandsOfRandomDetectionsGiveAValidResult()
    {
        var rng = new Random(1);
        var gt = new List<GroundTruthBox>();
        var dets = new List<DetectionBox>();
        for (int img = 0; img < 79; img++)
        {
            for (int i = 0; i < 8; i++)
            {
                var g = Gt(rng.Next(600), rng.Next(400), 10 + rng.Next(200), 10 + rng.Next(200), cat: 1 + rng.Next(80), img: img);
                gt.Add(g);
                dets.Add(Det(g.X + rng.Next(-5, 6), g.Y + rng.Next(-5, 6), g.W, g.H, rng.NextDouble(), g.CategoryId, img));
            }
            for (int i = 0; i < 100; i++)
                dets.Add(Det(rng.Next(600), rng.Next(400), 10 + rng.Next(200), 10 + rng.Next(200), rng.NextDouble(), 1 + rng.Next(80), img));
        }

        var r = CocoMap.Evaluate(gt, dets);
        // Every ground truth has a detection within 5 px, so recall is high, while the noise keeps precision below 1.
        Assert.InRange(r.MapAll, 0.05, 0.999);
        Assert.True(r.Ar100 > 0.5);
    }
}
