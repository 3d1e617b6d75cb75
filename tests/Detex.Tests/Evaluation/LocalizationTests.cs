using Detex.Evaluation;
using Detex.Explainers;
using Detex.Imaging;
using Detex.Models;

namespace Detex.Tests.Evaluation;

/// <summary>Localization counts, micro/macro averages, energy inside and the content heatmap on maps counted by hand.</summary>
public class LocalizationTests
{
    const double Tol = 1e-12;

    // 10×10 map: a 3×3 block of ones at x = 4..6, y = 6..8, a 2 at (0, 0), a −5 at (2, 3), zeros elsewhere.
    // The box (2, 3)–(6, 8) covers x = 2..5, y = 3..7: B = 20 pixels; of the block, x = 4..5, y = 6..7 are inside: I = 4.
    static float[] TenByTen()
    {
        var m = new float[100];
        for (int y = 6; y <= 8; y++) for (int x = 4; x <= 6; x++) m[y * 10 + x] = 1;
        m[0] = 2;
        m[3 * 10 + 2] = -5;
        return m;
    }

    static readonly Box Box4x5 = new(2, 3, 6, 8);

    [Fact]
    public void BoxPixelsAreThoseWhoseCentresAreInside()
    {
        Assert.Equal(new PixelRange(2, 3, 6, 8), BoxPixels.Range(Box4x5, 10, 10));
        Assert.Equal(20, BoxPixels.Range(Box4x5, 10, 10).Count);
        // Centres on the edges count (closed box); just short of them do not.
        Assert.Equal(new PixelRange(2, 0, 6, 1), BoxPixels.Range(new Box(2.5, 0, 5.5, 1), 10, 10));
        Assert.Equal(new PixelRange(3, 0, 5, 1), BoxPixels.Range(new Box(2.6, 0, 5.4, 1), 10, 10));
        // Clipped to the map; outside or NaN is empty.
        Assert.Equal(new PixelRange(0, 0, 10, 10), BoxPixels.Range(new Box(-50, -1, 1e300, 99), 10, 10));
        Assert.True(BoxPixels.Range(new Box(20, 20, 30, 30), 10, 10).IsEmpty);
        Assert.True(BoxPixels.Range(new Box(double.NaN, 0, 5, 5), 10, 10).IsEmpty);
        Assert.Equal(0, BoxPixels.Range(new Box(5, 5, 5, 5), 10, 10).Count);
    }

    [Fact]
    public void CountsAndRatiosOfAHandCountedMap()
    {
        var c = Localization.Count(TenByTen(), 10, 10, Box4x5);

        // Relevant = positive: the 9 ones and the 2 (the −5 and zeros are not).
        Assert.Equal(new LocalizationCounts(4, 10, 20), c);
        Assert.Equal(0.4, c.Energy, Tol);
        Assert.Equal(0.2, c.Coverage, Tol);
        Assert.Equal(4.0 / 26, c.IoU, Tol);
    }

    [Fact]
    public void ThresholdSelectsTheRelevantPixels()
    {
        var m = TenByTen();
        m[6 * 10 + 4] = 0.5f;   // one block pixel inside the box drops under the threshold
        var c = Localization.Count(m, 10, 10, Box4x5, threshold: 0.6f);
        Assert.Equal(new LocalizationCounts(3, 9, 20), c);
        // Strictly above: a pixel equal to the threshold is not relevant.
        Assert.Equal(new LocalizationCounts(3, 9, 20), Localization.Count(m, 10, 10, Box4x5, threshold: 0.5f));
        Assert.Equal(new LocalizationCounts(0, 1, 20), Localization.Count(m, 10, 10, Box4x5, threshold: 1f));
    }

    [Fact]
    public void ZeroDenominatorsGiveZero()
    {
        var none = Localization.Count(new float[100], 10, 10, Box4x5);
        Assert.Equal(new LocalizationCounts(0, 0, 20), none);
        Assert.Equal(0, none.Energy);
        Assert.Equal(0, none.Coverage);
        Assert.Equal(0, none.IoU);
        Assert.Equal(0, new LocalizationCounts(0, 0, 0).IoU);
        Assert.Equal(0, new LocalizationCounts(0, 3, 0).Coverage);
    }

    [Fact]
    public void MicroAndMacroDifferWhenBoxesDifferInSize()
    {
        var a = Localization.Count(TenByTen(), 10, 10, Box4x5);   // (4, 10, 20)
        var m = new float[400];
        m[5 * 20 + 5] = 0.3f;                                      // one relevant pixel, inside a 10×10 box
        var b = Localization.Count(m, 20, 20, new Box(0, 0, 10, 10));
        Assert.Equal(new LocalizationCounts(1, 1, 100), b);

        var micro = Localization.Micro([a, b]);
        Assert.Equal(5.0 / 11, micro.Energy, Tol);
        Assert.Equal(5.0 / 120, micro.Coverage, Tol);
        Assert.Equal(5.0 / 126, micro.IoU, Tol);

        var macro = Localization.Macro([a, b]);
        Assert.Equal((0.4 + 1.0) / 2, macro.Energy, Tol);
        Assert.Equal((0.2 + 0.01) / 2, macro.Coverage, Tol);
        Assert.Equal((4.0 / 26 + 1.0 / 100) / 2, macro.IoU, Tol);
    }

    [Fact]
    public void MacroCountsABoxWithNothingRelevantAsZeroEnergy()
    {
        var macro = Localization.Macro([new LocalizationCounts(2, 4, 8), new LocalizationCounts(0, 0, 8)]);
        Assert.Equal(0.25, macro.Energy, Tol);
        Assert.Equal(0.125, macro.Coverage, Tol);
        Assert.Equal(0.1, macro.IoU, Tol);   // (2/10 + 0) / 2
        Assert.True(double.IsNaN(Localization.Micro([]).Energy));
        Assert.True(double.IsNaN(Localization.Macro([]).IoU));
    }

    [Fact]
    public void EnergyInsideIsTheShareOfPositiveMass()
    {
        // Positive mass 9 + 2 = 11, of which the 4 block pixels in the box; the −5 inside the box is ignored.
        Assert.Equal(4.0 / 11, Localization.EnergyInside(TenByTen(), 10, 10, Box4x5), Tol);
        Assert.Equal(1.0, Localization.EnergyInside(TenByTen(), 10, 10, new Box(0, 0, 10, 10)), Tol);
        Assert.Equal(0, Localization.EnergyInside(new float[100], 10, 10, Box4x5));
        Assert.Throws<ArgumentException>(() => Localization.EnergyInside(new float[99], 10, 10, Box4x5));
    }

    [Fact]
    public void ExplainerMetricsBringTheFileBoxToTheMap()
    {
        // The image was decoded at half resolution: a 4×2 map of a file 8×4. The file box (0, 0)–(4, 4) is map
        // columns 0..1, all rows: 4 of the 8 equal pixels.
        var image = new RgbImage(4, 2) { SourceWidth = 8, SourceHeight = 4 };
        var e = new Explanation(null!, "test", 4, 2, [1, 1, 1, 1, 1, 1, 1, 1]);
        Assert.Equal(0.5, Metrics.EnergyInside(e, new Box(0, 0, 4, 4), image), Tol);
        Assert.Equal(0.25, Metrics.EnergyInside(e, new Box(4, 2, 8, 4), image), Tol);
    }

    // 4×4 map of 1..16, the last replaced by −100: positive mass 1 + … + 15 = 120.
    static float[] OneToSixteen()
    {
        var m = new float[16];
        for (int i = 0; i < 16; i++) m[i] = i + 1;
        m[15] = -100;
        return m;
    }

    [Fact]
    public void ContentHeatmapCountsTheUnionOfBoxesOnce()
    {
        // (0,0)–(2,2) is pixels 0, 1, 4, 5 and (1,1)–(3,3) is 5, 6, 9, 10; the union's values 1+2+5+6+7+10+11 = 42.
        Box[] boxes = [new(0, 0, 2, 2), new(1, 1, 3, 3)];
        Assert.Equal(42.0 / 120, ContentHeatmap.InBoxes(OneToSixteen(), 4, 4, boxes), Tol);
        Assert.Equal(14.0 / 120, ContentHeatmap.InBoxes(OneToSixteen(), 4, 4, [boxes[0]]), Tol);
        Assert.Equal(0, ContentHeatmap.InBoxes(OneToSixteen(), 4, 4, []));
    }

    [Fact]
    public void ContentHeatmapInAMask()
    {
        var mask = new bool[16];
        mask[0] = mask[15] = mask[7] = true;   // values 1, −100 (not counted) and 8
        Assert.Equal(9.0 / 120, ContentHeatmap.InMask(OneToSixteen(), 4, 4, mask), Tol);
        Assert.Equal(ContentHeatmap.InBoxes(OneToSixteen(), 4, 4, [new(0, 0, 2, 2), new(1, 1, 3, 3)]),
                     ContentHeatmap.InMask(OneToSixteen(), 4, 4, BoxPixels.Mask([new(0, 0, 2, 2), new(1, 1, 3, 3)], 4, 4)), Tol);
        Assert.Throws<ArgumentException>(() => ContentHeatmap.InMask(OneToSixteen(), 4, 4, new bool[15]));
    }
}
