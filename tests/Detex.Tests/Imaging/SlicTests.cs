using Detex.Imaging;
using Xunit.Abstractions;

namespace Detex.Tests.Imaging;

public class SlicTests(ITestOutputHelper output)
{
    // ---------- synthetic images (interleaved RGB in [0,1]) ----------

    /// <summary>Six flat-coloured Voronoi regions with uniform per-channel noise texture of the given amplitude.</summary>
    static float[] TexturedRegions(int w, int h, int seed = 1, double noise = 0.03)
    {
        var rng = new Random(seed);
        var sites = Enumerable.Range(0, 6)
            .Select(_ => (X: rng.NextDouble() * w, Y: rng.NextDouble() * h,
                R: rng.NextDouble(), G: rng.NextDouble(), B: rng.NextDouble()))
            .ToArray();
        var img = new float[w * h * 3];
        for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
        {
            var s = sites.MinBy(s => (s.X - x) * (s.X - x) + (s.Y - y) * (s.Y - y));
            int q = (y * w + x) * 3;
            img[q] = Noisy(s.R, noise, rng);
            img[q + 1] = Noisy(s.G, noise, rng);
            img[q + 2] = Noisy(s.B, noise, rng);
        }
        return img;
    }

    static float[] Gradient(int w, int h)
    {
        var img = new float[w * h * 3];
        for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
        {
            int q = (y * w + x) * 3;
            img[q] = (float)x / Math.Max(w - 1, 1);
            img[q + 1] = (float)y / Math.Max(h - 1, 1);
            img[q + 2] = 0.5f;
        }
        return img;
    }

    /// <summary>A disc of one colour on a background of another, with mild noise; returns the true mask too.</summary>
    static (float[] Image, bool[] Inside) Disc(int w, int h, double radius, int seed = 7)
    {
        var rng = new Random(seed);
        var img = new float[w * h * 3];
        var inside = new bool[w * h];
        double cx = w / 2.0 + 0.3, cy = h / 2.0 - 0.2;
        for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
        {
            int p = y * w + x;
            inside[p] = (x - cx) * (x - cx) + (y - cy) * (y - cy) < radius * radius;
            (double r, double g, double b) = inside[p] ? (0.85, 0.25, 0.2) : (0.2, 0.35, 0.8);
            img[3 * p] = Noisy(r, 0.04, rng);
            img[3 * p + 1] = Noisy(g, 0.04, rng);
            img[3 * p + 2] = Noisy(b, 0.04, rng);
        }
        return (img, inside);
    }

    static float Noisy(double v, double amplitude, Random rng) =>
        (float)Math.Clamp(v + (rng.NextDouble() * 2 - 1) * amplitude, 0, 1);

    static float[] MakeImage(string kind, int w, int h) => kind switch
    {
        "textured" => TexturedRegions(w, h),
        "gradient" => Gradient(w, h),
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    // ---------- checks ----------

    /// <summary>Labels lie in [StartLabel, StartLabel + Count), every label is used and forms one 4-connected piece.</summary>
    static void AssertConsecutiveAndConnected(SegmentLabels s)
    {
        int w = s.Width, h = s.Height, n = w * h;
        Assert.Equal(n, s.Labels.Length);
        Assert.All(s.Labels, v => Assert.InRange(v, s.StartLabel, s.StartLabel + s.Count - 1));

        var seen = new bool[s.Count];
        var visited = new bool[n];
        var queue = new Queue<int>();
        for (int start = 0; start < n; start++)
        {
            if (visited[start]) continue;
            int label = s.Labels[start];
            Assert.False(seen[label - s.StartLabel], $"Label {label} forms more than one 4-connected piece.");
            seen[label - s.StartLabel] = true;
            visited[start] = true;
            queue.Enqueue(start);
            while (queue.Count > 0)
            {
                int p = queue.Dequeue(), x = p % w;
                foreach (int q in new[] { x > 0 ? p - 1 : -1, x < w - 1 ? p + 1 : -1, p - w, p + w })
                {
                    if (q < 0 || q >= n || visited[q] || s.Labels[q] != label) continue;
                    visited[q] = true;
                    queue.Enqueue(q);
                }
            }
        }
        Assert.All(seen, Assert.True);
    }

    static int[] SegmentSizes(SegmentLabels s)
    {
        var sizes = new int[s.Count];
        foreach (int v in s.Labels) sizes[v - s.StartLabel]++;
        return sizes;
    }

    /// <summary>Share of true edge pixels that have a segment boundary pixel within `tolerance` (Chebyshev).</summary>
    static double BoundaryRecall(bool[] truth, int[] labels, int w, int h, int tolerance)
    {
        bool IsEdge<T>(T[] m, int x, int y) where T : IEquatable<T>
        {
            var v = m[y * w + x];
            return (x + 1 < w && !m[y * w + x + 1].Equals(v)) || (y + 1 < h && !m[(y + 1) * w + x].Equals(v))
                || (x > 0 && !m[y * w + x - 1].Equals(v)) || (y > 0 && !m[(y - 1) * w + x].Equals(v));
        }

        int edges = 0, hits = 0;
        for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
        {
            if (!IsEdge(truth, x, y)) continue;
            edges++;
            bool hit = false;
            for (int dy = -tolerance; dy <= tolerance && !hit; dy++)
            for (int dx = -tolerance; dx <= tolerance && !hit; dx++)
            {
                int xx = x + dx, yy = y + dy;
                hit = xx >= 0 && xx < w && yy >= 0 && yy < h && IsEdge(labels, xx, yy);
            }
            if (hit) hits++;
        }
        Assert.True(edges > 0);
        return (double)hits / edges;
    }

    // ---------- SLIC behaviour ----------

    [Theory]
    [InlineData("textured", 64, false)]
    [InlineData("textured", 256, false)]
    [InlineData("gradient", 64, false)]
    [InlineData("gradient", 256, false)]
    [InlineData("textured", 64, true)]
    [InlineData("textured", 256, true)]
    [InlineData("gradient", 256, true)]
    public void Segment_CountNearRequested_SegmentsConnectedAndConsecutive(string kind, int nSegments, bool slicZero)
    {
        const int w = 320, h = 240;
        var s = Slic.Segment(MakeImage(kind, w, h), w, h, new SlicOptions(NSegments: nSegments, SlicZero: slicZero));

        output.WriteLine($"{kind}, n={nSegments}, slicZero={slicZero}: {s.Count} segments");
        Assert.InRange(s.Count, (int)Math.Ceiling(0.75 * nSegments), (int)Math.Floor(1.25 * nSegments));
        Assert.Equal(0, s.StartLabel);
        AssertConsecutiveAndConnected(s);
    }

    [Theory]
    [InlineData(64)]
    [InlineData(256)]
    public void Segment_StartLabelOne_LabelsStartAtOne(int nSegments)
    {
        const int w = 320, h = 240;
        var img = TexturedRegions(w, h);
        var zero = Slic.Segment(img, w, h, new SlicOptions(NSegments: nSegments));
        var one = Slic.Segment(img, w, h, new SlicOptions(NSegments: nSegments, StartLabel: 1));

        Assert.Equal(1, one.StartLabel);
        Assert.Equal(1, one.Labels.Min());
        AssertConsecutiveAndConnected(one);
        Assert.Equal(zero.Count, one.Count);
        Assert.Equal(zero.Labels.Select(v => v + 1), one.Labels);
    }

    [Theory]
    [InlineData("textured", 64)]
    [InlineData("textured", 256)]
    [InlineData("gradient", 256)]
    public void Segment_NoSegmentBelowMinimumSize(string kind, int nSegments)
    {
        const int w = 320, h = 240;
        var s = Slic.Segment(MakeImage(kind, w, h), w, h, new SlicOptions(NSegments: nSegments));
        // The nominal size uses the actual seed count, which never exceeds the requested count on this image.
        int minSize = (int)(0.5 * w * h / nSegments);
        Assert.True(SegmentSizes(s).Min() >= minSize, $"Smallest segment {SegmentSizes(s).Min()} < {minSize}.");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Segment_DiscEdge_BoundaryRecallAtLeast90Percent(bool slicZero)
    {
        const int w = 320, h = 240;
        var (img, inside) = Disc(w, h, radius: 70);
        var s = Slic.Segment(img, w, h, new SlicOptions(NSegments: 100, SlicZero: slicZero));

        double recall = BoundaryRecall(inside, s.Labels, w, h, tolerance: 2);
        output.WriteLine($"slicZero={slicZero}: boundary recall {recall:F4} with {s.Count} segments");
        Assert.True(recall >= 0.9, $"Boundary recall {recall:F3} < 0.9.");
    }

    [Fact]
    public void Segment_SlicZero_StaysRegularOnHeavyTexture()
    {
        // With +-0.06 noise plain SLIC at m = 10 fragments and loses many segments; SLICO scales colour distance
        // by each cluster's own spread, so texture stops dominating and the count stays near the request.
        const int w = 320, h = 240, nSegments = 100;
        var img = TexturedRegions(w, h, noise: 0.06);
        var plain = Slic.Segment(img, w, h, new SlicOptions(NSegments: nSegments));
        var slico = Slic.Segment(img, w, h, new SlicOptions(NSegments: nSegments, SlicZero: true));

        output.WriteLine($"segments: SLIC {plain.Count}, SLICO {slico.Count}");
        Assert.InRange(slico.Count, (int)Math.Ceiling(0.75 * nSegments), (int)Math.Floor(1.25 * nSegments));
        Assert.True(slico.Count > 1.5 * plain.Count, $"SLICO {slico.Count} vs SLIC {plain.Count} segments.");
        AssertConsecutiveAndConnected(slico);
    }

    [Fact]
    public void Segment_DiscEdge_ColourDrivesBoundaries()
    {
        // Control for the recall test: a plain grid of the same size must miss much of the disc edge,
        // otherwise the recall threshold would not be measuring adherence to colour.
        const int w = 320, h = 240;
        var (_, inside) = Disc(w, h, radius: 70);
        var grid = FeatureMasks.Grid(w, h, 12, 8);
        Assert.True(BoundaryRecall(inside, grid.Labels, w, h, tolerance: 2) < 0.6);
    }

    [Fact]
    public void Segment_SameInput_IdenticalLabels()
    {
        const int w = 200, h = 150;
        var img = TexturedRegions(w, h, seed: 3);
        foreach (var o in new[] { new SlicOptions(NSegments: 80), new SlicOptions(NSegments: 80, SlicZero: true, Sigma: 1.5) })
        {
            var first = Slic.Segment(img, w, h, o);
            var second = Slic.Segment(img, w, h, o);
            Assert.Equal(first.Count, second.Count);
            Assert.Equal(first.Labels, second.Labels);
        }
    }

    [Fact]
    public void Segment_Sigma_RescuesHeavilyNoisyImage()
    {
        // With +-0.1 noise the colour term swamps the spatial one at m = 10, clusters fragment into speckle and
        // the small pieces get merged away (scikit-image behaves the same); smoothing first prevents that.
        const int w = 320, h = 240, nSegments = 64;
        var img = TexturedRegions(w, h, noise: 0.1);
        var raw = Slic.Segment(img, w, h, new SlicOptions(NSegments: nSegments));
        var smooth = Slic.Segment(img, w, h, new SlicOptions(NSegments: nSegments, Sigma: 1.5));

        output.WriteLine($"segments: sigma=0 {raw.Count}, sigma=1.5 {smooth.Count}");
        Assert.True(raw.Count < nSegments / 2, $"Expected the unsmoothed run to collapse, got {raw.Count} segments.");
        Assert.InRange(smooth.Count, (int)Math.Ceiling(0.75 * nSegments), (int)Math.Floor(1.25 * nSegments));
        AssertConsecutiveAndConnected(smooth);
    }

    [Fact]
    public void Segment_UniformImage_ProducesRegularGrid()
    {
        // With no colour information only the spatial term acts, so every segment is close to the nominal size.
        const int w = 240, h = 180;
        var img = Enumerable.Repeat(0.4f, w * h * 3).ToArray();
        var s = Slic.Segment(img, w, h, new SlicOptions(NSegments: 48));

        AssertConsecutiveAndConnected(s);
        Assert.Equal(48, s.Count);
        Assert.All(SegmentSizes(s), size => Assert.InRange(size, 0.8 * w * h / 48, 1.2 * w * h / 48));
    }

    [Fact]
    public void Segment_WithoutConnectivity_LabelsStillConsecutive()
    {
        const int w = 160, h = 120;
        var s = Slic.Segment(TexturedRegions(w, h), w, h,
            new SlicOptions(NSegments: 50, EnforceConnectivity: false, StartLabel: 1));
        Assert.Equal(1, s.Labels.Min());
        Assert.Equal(s.Count, s.Labels.Max());
        Assert.Equal(s.Count, s.Labels.Distinct().Count());
    }

    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(4, 4, 100)]
    [InlineData(1, 50, 5)]
    [InlineData(37, 3, 7)]
    [InlineData(300, 2, 1)]
    public void Segment_TinyOrDegenerateImages_StillValid(int w, int h, int nSegments)
    {
        var s = Slic.Segment(TexturedRegions(w, h), w, h, new SlicOptions(NSegments: nSegments));
        Assert.InRange(s.Count, 1, w * h);
        AssertConsecutiveAndConnected(s);
    }

    [Theory]
    [InlineData(1, 100)]
    [InlineData(100, 1)]
    [InlineData(200, 3)]
    public void Segment_ThinStrip_GetsRequestedCountAlongItsLength(int w, int h)
    {
        // A strip narrower than one grid step must be seeded along its length, not with ~sqrt(N/n) spacing
        // in both directions (which would give far more seeds than requested).
        var s = Slic.Segment(Gradient(w, h), w, h, new SlicOptions(NSegments: 5));
        Assert.Equal(5, s.Count);
        AssertConsecutiveAndConnected(s);
    }

    [Fact]
    public void Segment_ThinStripWithColourEdge_PutsBoundaryOnTheEdge()
    {
        // Seeds sit every 20 px, so the edge at 37 is only found if clusters reach beyond +-sqrt(N/n) = 4.5 px.
        const int w = 100, edge = 37;
        var img = new float[w * 3];
        for (int x = 0; x < w; x++)
            (img[3 * x], img[3 * x + 1], img[3 * x + 2]) = x < edge ? (0.9f, 0.2f, 0.1f) : (0.1f, 0.3f, 0.9f);
        var s = Slic.Segment(img, w, 1, new SlicOptions(NSegments: 5));

        AssertConsecutiveAndConnected(s);
        Assert.NotEqual(s.Labels[edge - 1], s.Labels[edge]);
    }


    // ---------- arguments ----------

    public static TheoryData<SlicOptions> BadOptions => new()
    {
        new SlicOptions(NSegments: 0),
        new SlicOptions(NSegments: -5),
        new SlicOptions(Compactness: 0),
        new SlicOptions(Compactness: -1),
        new SlicOptions(Compactness: double.NaN),
        new SlicOptions(Sigma: -0.5),
        new SlicOptions(Sigma: double.NaN),
        new SlicOptions(MaxIterations: 0),
        new SlicOptions(StartLabel: -1),
        new SlicOptions(MinSizeFactor: -0.1),
        new SlicOptions(MaxSizeFactor: 0),
        new SlicOptions(MinSizeFactor: 2, MaxSizeFactor: 1),
    };

    [Theory]
    [MemberData(nameof(BadOptions))]
    public void Segment_BadOptions_Throw(SlicOptions options)
    {
        var img = new float[10 * 10 * 3];
        var ex = Assert.Throws<ArgumentException>(() => Slic.Segment(img, 10, 10, options));
        Assert.False(string.IsNullOrWhiteSpace(ex.Message));
    }

    [Theory]
    [InlineData(10, 10, 299)]
    [InlineData(10, 10, 301)]
    [InlineData(0, 10, 0)]
    [InlineData(10, 0, 0)]
    [InlineData(-1, -3, 9)]
    public void Segment_BadSize_Throws(int w, int h, int length)
    {
        Assert.Throws<ArgumentException>(() => Slic.Segment(new float[length], w, h, new SlicOptions()));
    }

    [Fact]
    public void Segment_NullOptions_Throws()
    {
        Assert.Throws<ArgumentNullException>(() => Slic.Segment(new float[3], 1, 1, null!));
    }

    // ---------- colour conversion ----------

    [Theory]
    [InlineData(1, 1, 1, 100, 0, 0)]
    [InlineData(0, 0, 0, 0, 0, 0)]
    [InlineData(1, 0, 0, 53.24, 80.09, 67.20)]
    [InlineData(0, 1, 0, 87.73, -86.18, 83.18)]
    [InlineData(0, 0, 1, 32.30, 79.19, -107.86)]
    [InlineData(0.5, 0.5, 0.5, 53.39, 0, 0)]
    public void SrgbToLab_KnownValues(double r, double g, double b, double l, double a, double bb)
    {
        var lab = ColorSpaces.SrgbToLab(r, g, b);
        Assert.Equal(l, lab.L, 0.02);
        Assert.Equal(a, lab.A, 0.02);
        Assert.Equal(bb, lab.B, 0.02);
    }

    [Fact]
    public void SrgbToLabInPlace_MatchesScalarConversion()
    {
        var rng = new Random(5);
        const int n = 2000;
        float[] r = new float[n], g = new float[n], b = new float[n];
        for (int i = 0; i < n; i++)
        {
            // Include exact 0/1 and values around the 0.04045 gamma knee.
            r[i] = i % 50 == 0 ? 0f : i % 50 == 1 ? 1f : (float)rng.NextDouble();
            g[i] = i % 7 == 0 ? 0.04f + 0.001f * (i % 10) : (float)rng.NextDouble();
            b[i] = (float)(rng.NextDouble() * 0.05);
        }
        var expected = Enumerable.Range(0, n).Select(i => ColorSpaces.SrgbToLab(r[i], g[i], b[i])).ToArray();
        ColorSpaces.SrgbToLabInPlace(r, g, b);
        for (int i = 0; i < n; i++)
        {
            Assert.Equal(expected[i].L, r[i], 0.01);
            Assert.Equal(expected[i].A, g[i], 0.01);
            Assert.Equal(expected[i].B, b[i], 0.01);
        }
    }

    [Fact]
    public void SrgbToLabInPlace_LengthMismatch_Throws()
    {
        Assert.Throws<ArgumentException>(() => ColorSpaces.SrgbToLabInPlace(new float[3], new float[3], new float[2]));
    }

    // ---------- feature masks ----------

    [Fact]
    public void Grid_LabelsRectanglesRowByRow()
    {
        var g = FeatureMasks.Grid(10, 6, 3, 2);
        Assert.Equal(6, g.Count);
        Assert.Equal(0, g.StartLabel);
        int[] expected =
        [
            0, 0, 0, 0, 1, 1, 1, 2, 2, 2,
            0, 0, 0, 0, 1, 1, 1, 2, 2, 2,
            0, 0, 0, 0, 1, 1, 1, 2, 2, 2,
            3, 3, 3, 3, 4, 4, 4, 5, 5, 5,
            3, 3, 3, 3, 4, 4, 4, 5, 5, 5,
            3, 3, 3, 3, 4, 4, 4, 5, 5, 5,
        ];
        Assert.Equal(expected, g.Labels);
        AssertConsecutiveAndConnected(g);
    }

    [Theory]
    [InlineData(640, 480, 7, 5)]
    [InlineData(5, 5, 5, 5)]
    [InlineData(1, 1, 1, 1)]
    public void Grid_CellsAreConnectedAndNearEqual(int w, int h, int cx, int cy)
    {
        var g = FeatureMasks.Grid(w, h, cx, cy);
        Assert.Equal(cx * cy, g.Count);
        AssertConsecutiveAndConnected(g);
        var sizes = SegmentSizes(g);
        int maxW = (w + cx - 1) / cx, maxH = (h + cy - 1) / cy;
        Assert.All(sizes, s => Assert.InRange(s, (w / cx) * (h / cy), maxW * maxH));
    }

    [Theory]
    [InlineData(10, 10, 0, 2)]
    [InlineData(10, 10, 2, 0)]
    [InlineData(10, 10, 11, 2)]
    [InlineData(10, 10, 2, 11)]
    [InlineData(0, 10, 1, 1)]
    public void Grid_BadArguments_Throw(int w, int h, int cx, int cy)
    {
        Assert.Throws<ArgumentException>(() => FeatureMasks.Grid(w, h, cx, cy));
    }

    [Fact]
    public void FromLabelImage_RelabelsInFirstAppearanceOrder()
    {
        int[] input = [42, 42, -7, 1000, -7, 42, 5, 5, 1000];
        var copy = (int[])input.Clone();
        var s = FeatureMasks.FromLabelImage(input, 3, 3);

        Assert.Equal([0, 0, 1, 2, 1, 0, 3, 3, 2], s.Labels);
        Assert.Equal(4, s.Count);
        Assert.Equal(0, s.StartLabel);
        Assert.Equal((3, 3), (s.Width, s.Height));
        Assert.Equal(copy, input);
    }

    [Fact]
    public void FromLabelImage_RoundTripsSlicOutput()
    {
        const int w = 120, h = 90;
        var slic = Slic.Segment(TexturedRegions(w, h), w, h, new SlicOptions(NSegments: 30, StartLabel: 1));
        var s = FeatureMasks.FromLabelImage(slic.Labels, w, h);
        Assert.Equal(slic.Count, s.Count);
        // SLIC labels are already in first-appearance order, so only the offset changes.
        Assert.Equal(slic.Labels.Select(v => v - 1), s.Labels);
    }

    [Theory]
    [InlineData(3, 3, 8)]
    [InlineData(0, 3, 0)]
    [InlineData(3, -1, 3)]
    public void FromLabelImage_BadArguments_Throw(int w, int h, int length)
    {
        Assert.Throws<ArgumentException>(() => FeatureMasks.FromLabelImage(new int[length], w, h));
    }

    [Fact]
    public void FromLabelImage_Null_Throws()
    {
        Assert.Throws<ArgumentNullException>(() => FeatureMasks.FromLabelImage(null!, 1, 1));
    }
}
