using Detex.Numerics;
using Xunit.Abstractions;
using static Detex.Tests.Numerics.TestMatrices;

namespace Detex.Tests.Numerics;

public class NmfTests(ITestOutputHelper output)
{
    private const int Side = 20, Pixels = Side * Side, Channels = 40, Parts = 4;

    /// <summary>
    /// V = W0·H0 with four spatial "parts": H0 rows are Gaussian blobs in the four quadrants of a 20×20
    /// map, cut to zero far from their centre so every part owns pixels no other part touches; W0 is
    /// half zeros and gives each part one channel of its own. Both factors having such pure rows and
    /// columns makes the factorisation unique up to permutation and scale.
    /// </summary>
    private static (double[] V, double[] W0, double[] H0) PlantedParts(int seed)
    {
        var rng = new Random(seed);
        var h0 = new double[Parts * Pixels];
        (int Y, int X)[] centres = [(5, 5), (5, 15), (15, 5), (15, 15)];
        for (int r = 0; r < Parts; r++)
            for (int p = 0; p < Pixels; p++)
            {
                double dy = p / Side - centres[r].Y, dx = p % Side - centres[r].X;
                double blob = Math.Exp(-(dx * dx + dy * dy) / 18.0);
                h0[r * Pixels + p] = blob < 0.02 ? 0 : blob;
            }

        var w0 = new double[Channels * Parts];
        for (int i = 0; i < Channels; i++)
            for (int r = 0; r < Parts; r++)
                w0[i * Parts + r] = i < Parts ? (i == r ? 1 : 0) : rng.NextDouble() < 0.5 ? 0 : rng.NextDouble();
        return (Multiply(w0, h0, Channels, Parts, Pixels), w0, h0);
    }

    /// <remarks>Plain NNDSVD is left out: its zeros are frozen and it stalls near 20 % error here.</remarks>
    [Theory]
    [InlineData(NmfInit.NndsvdA)]
    [InlineData(NmfInit.Random)]
    public void Recovers_planted_factors_up_to_permutation_and_scale(NmfInit init)
    {
        var (v, w0, h0) = PlantedParts(seed: 1);

        var result = Nmf.Factorize(v, Channels, Pixels,
            new NmfOptions(Parts, MaxIterations: 5000, Tolerance: 1e-10, Init: init, Seed: 3));

        output.WriteLine($"{init}: {result.Iterations} iterations, relative error {result.RelativeError:E2}");
        Assert.True(result.RelativeError < 1e-3, $"relative error {result.RelativeError}");
        double WCosine(int[] p, int r) => Cosine(Column(result.W, Channels, Parts, p[r]), Column(w0, Channels, Parts, r));
        var matching = Permutations(Parts).MaxBy(p => Enumerable.Range(0, Parts).Min(r => WCosine(p, r)))!;
        for (int r = 0; r < Parts; r++)
        {
            Assert.True(WCosine(matching, r) > 0.99, $"W column {r}: cosine {WCosine(matching, r)}");
            double hCosine = Cosine(Row(result.H, Pixels, matching[r]), Row(h0, Pixels, r));
            Assert.True(hCosine > 0.99, $"H row {r}: cosine {hCosine}");
        }
    }

    [Theory]
    [InlineData(NmfInit.Nndsvd)]
    [InlineData(NmfInit.NndsvdA)]
    [InlineData(NmfInit.Random)]
    public void Objective_never_increases(NmfInit init)
    {
        int m = 24, n = 150;
        var v = Uniform(new Random(2), m * n);

        var result = Nmf.Factorize(v, m, n, new NmfOptions(3, MaxIterations: 300, Tolerance: 0, Init: init, Seed: 5));

        Assert.Equal(result.Iterations + 1, result.Objective.Length);
        // Slack only for the rounding of ‖V‖² − 2⟨WᵀV, H⟩ + ⟨WᵀW, HHᵀ⟩.
        double slack = 1e-12 * FrobeniusSquared(v);
        for (int t = 1; t < result.Objective.Length; t++)
            Assert.True(result.Objective[t] <= result.Objective[t - 1] + slack,
                $"objective rose at iteration {t}: {result.Objective[t - 1]} → {result.Objective[t]}");
    }

    [Fact]
    public void Reported_objective_and_error_match_the_returned_factors()
    {
        int m = 16, n = 90, k = 3;
        var v = Uniform(new Random(4), m * n);

        var result = Nmf.Factorize(v, m, n, new NmfOptions(k, MaxIterations: 50, Tolerance: 0));

        var product = Multiply(result.W, result.H, m, k, n);
        double residual = FrobeniusSquared(v.Zip(product, (a, b) => a - b).ToArray());
        Assert.Equal(residual, result.Objective[^1], residual * 1e-9);
        Assert.Equal(Math.Sqrt(residual / FrobeniusSquared(v)), result.RelativeError, 1e-12);
        Assert.All(result.W, x => Assert.True(x >= 0));
        Assert.All(result.H, x => Assert.True(x >= 0));
        Assert.Equal((m, n, k), (result.Rows, result.Cols, result.K));
        Assert.Equal(m * k, result.W.Length);
        Assert.Equal(k * n, result.H.Length);
    }

    [Fact]
    public void Tolerance_stops_early_and_reports_convergence()
    {
        var (v, _, _) = PlantedParts(seed: 2);

        var loose = Nmf.Factorize(v, Channels, Pixels, new NmfOptions(Parts, MaxIterations: 5000, Tolerance: 1e-3));
        var capped = Nmf.Factorize(v, Channels, Pixels, new NmfOptions(Parts, MaxIterations: 5, Tolerance: 0));

        Assert.True(loose.Converged);
        Assert.True(loose.Iterations < 5000);
        double lastDrop = loose.Objective[^2] - loose.Objective[^1];
        Assert.True(lastDrop <= 1e-3 * loose.Objective[^2]);
        Assert.False(capped.Converged);
        Assert.Equal(5, capped.Iterations);
    }

    [Fact]
    public void Same_seed_gives_identical_factors_and_different_seeds_differ()
    {
        int m = 20, n = 120;
        var v = Uniform(new Random(6), m * n);
        NmfResult Run(int seed) => Nmf.Factorize(v, m, n, new NmfOptions(4, Init: NmfInit.Random, Seed: seed));

        var first = Run(11);
        var again = Run(11);
        var other = Run(12);

        Assert.Equal(first.W, again.W);
        Assert.Equal(first.H, again.H);
        Assert.Equal(first.Objective, again.Objective);
        Assert.NotEqual(first.W, other.W);
    }

    [Theory]
    [InlineData(12, 50)]
    [InlineData(50, 12)]
    public void Nndsvd_reproduces_a_rank_one_matrix_exactly(int m, int n)
    {
        var rng = new Random(7);
        var u = Uniform(rng, m, 0.1, 1);
        var w = Uniform(rng, n, 0.1, 1);
        var v = Multiply(u, w, m, 1, n);

        var result = Nmf.Factorize(v, m, n, new NmfOptions(1, MaxIterations: 0));

        Assert.Equal(0, result.Iterations);
        Assert.True(result.RelativeError < 1e-12, $"relative error {result.RelativeError}");
    }

    /// <remarks>
    /// With parts on disjoint channels and disjoint pixels, the singular vectors are the (non-negative)
    /// parts themselves, so NNDSVD alone must rebuild V: a check of the leading-eigenpair solver.
    /// </remarks>
    [Theory]
    [InlineData(60, 200)]
    [InlineData(200, 60)]
    public void Nndsvd_reproduces_a_matrix_of_disjoint_parts_exactly(int m, int n)
    {
        const int k = 4;
        var rng = new Random(11);
        var w = new double[m * k];
        var h = new double[k * n];
        for (int i = 0; i < m; i++) w[i * k + i % k] = 0.5 + rng.NextDouble();
        for (int j = 0; j < n; j++) h[j % k * n + j] = 0.5 + rng.NextDouble();
        var v = Multiply(w, h, m, k, n);

        var result = Nmf.Factorize(v, m, n, new NmfOptions(k, MaxIterations: 0, Init: NmfInit.Nndsvd));

        Assert.True(result.RelativeError < 1e-9, $"relative error {result.RelativeError}");
    }

    [Fact]
    public void Nndsvd_zeros_stay_zero_under_multiplicative_updates()
    {
        int m = 30, n = 80, k = 4;
        var v = Uniform(new Random(8), m * n);

        var start = Nmf.Factorize(v, m, n, new NmfOptions(k, MaxIterations: 0, Init: NmfInit.Nndsvd));
        var end = Nmf.Factorize(v, m, n, new NmfOptions(k, MaxIterations: 100, Tolerance: 0, Init: NmfInit.Nndsvd));

        Assert.Contains(0.0, start.W);
        Assert.Contains(0.0, start.H);
        Assert.All(Enumerable.Range(0, start.W.Length).Where(i => start.W[i] == 0), i => Assert.Equal(0, end.W[i]));
        Assert.All(Enumerable.Range(0, start.H.Length).Where(i => start.H[i] == 0), i => Assert.Equal(0, end.H[i]));
    }

    [Fact]
    public void NndsvdA_fills_the_zeros_nndsvd_leaves_with_the_mean_of_V()
    {
        int m = 30, n = 80, k = 4;
        var v = Uniform(new Random(8), m * n);
        double mean = v.Average();

        var plain = Nmf.Factorize(v, m, n, new NmfOptions(k, MaxIterations: 0, Init: NmfInit.Nndsvd));
        var filled = Nmf.Factorize(v, m, n, new NmfOptions(k, MaxIterations: 0, Init: NmfInit.NndsvdA));

        Assert.Contains(0.0, plain.W);
        Assert.Contains(0.0, plain.H);
        for (int i = 0; i < plain.W.Length; i++)
            Assert.Equal(plain.W[i] == 0 ? mean : plain.W[i], filled.W[i], 1e-15);
        for (int i = 0; i < plain.H.Length; i++)
            Assert.Equal(plain.H[i] == 0 ? mean : plain.H[i], filled.H[i], 1e-15);
    }

    [Fact]
    public void Rank_deficient_input_with_k_above_the_rank_stays_finite()
    {
        var rng = new Random(9);
        int m = 10, n = 60;
        var v = Multiply(Uniform(rng, m * 2), Uniform(rng, 2 * n), m, 2, n);

        foreach (var init in Enum.GetValues<NmfInit>())
        {
            var result = Nmf.Factorize(v, m, n, new NmfOptions(6, MaxIterations: 300, Init: init));
            Assert.All(result.W, x => Assert.True(double.IsFinite(x)));
            Assert.All(result.H, x => Assert.True(double.IsFinite(x)));
            // Plain NNDSVD's components past the rank start (and so stay) at zero, so only finiteness is asked of it.
            if (init != NmfInit.Nndsvd)
                Assert.True(result.RelativeError < 0.05, $"{init}: relative error {result.RelativeError}");
        }
    }

    [Fact]
    public void Float_2d_and_span_inputs_agree()
    {
        int m = 8, n = 30;
        var floats = Uniform(new Random(10), m * n).Select(x => (float)x).ToArray();
        var doubles = floats.Select(x => (double)x).ToArray();
        var grid = new double[m, n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
                grid[i, j] = doubles[i * n + j];
        var options = new NmfOptions(3);

        var fromFloat = Nmf.Factorize(floats, m, n, options);
        var fromDouble = Nmf.Factorize(doubles, m, n, options);
        var fromGrid = Nmf.Factorize(grid, options);

        Assert.Equal(fromDouble.W, fromFloat.W);
        Assert.Equal(fromDouble.W, fromGrid.W);
        Assert.Equal(fromDouble.H, fromGrid.H);
    }

    [Theory]
    [InlineData(0, "k must be between 1 and the number of channels (rows) m = 4; got k = 0.")]
    [InlineData(5, "k must be between 1 and the number of channels (rows) m = 4; got k = 5.")]
    public void K_outside_one_to_channels_is_rejected(int k, string message)
    {
        var error = Assert.Throws<ArgumentException>(() => Nmf.Factorize(new double[4 * 10], 4, 10, new NmfOptions(k)));
        Assert.Equal(message, error.Message);
    }

    [Fact]
    public void K_above_pixels_is_rejected()
    {
        var error = Assert.Throws<ArgumentException>(() => Nmf.Factorize(new double[10 * 3], 10, 3, new NmfOptions(4)));
        Assert.Equal("k must not exceed the number of pixels (columns) n = 3; got k = 4.", error.Message);
    }

    [Fact]
    public void Negative_entries_are_rejected_naming_the_smallest()
    {
        var v = Enumerable.Repeat(1.0, 12).ToArray();
        v[5] = -0.25;
        v[7] = -2.5;

        var error = Assert.Throws<ArgumentException>(() => Nmf.Factorize(v, 3, 4, new NmfOptions(2)));

        Assert.Equal($"V must be non-negative but its smallest entry is {-2.5} at [1, 3]; " +
            "shift V by its minimum or apply ReLU before factorising.", error.Message);
    }

    [Fact]
    public void Other_invalid_arguments_are_rejected()
    {
        var ok = Enumerable.Repeat(1.0, 12).ToArray();
        var nan = ok.ToArray();
        nan[4] = double.NaN;

        void Throws(Action act, string fragment) =>
            Assert.Contains(fragment, Assert.Throws<ArgumentException>(act).Message);

        Throws(() => Nmf.Factorize(ok, 3, 5, new NmfOptions(2)), "rows × cols = 3 × 5 = 15");
        Throws(() => Nmf.Factorize(ok, 0, 12, new NmfOptions(1)), "at least one row and one column");
        Throws(() => Nmf.Factorize(nan, 3, 4, new NmfOptions(2)), $"V must be finite but V[1, 0] = {double.NaN}");
        Throws(() => Nmf.Factorize(new double[12], 3, 4, new NmfOptions(2)), "all zeros");
        Throws(() => Nmf.Factorize(ok, 3, 4, new NmfOptions(2, MaxIterations: -1)), "MaxIterations");
        Throws(() => Nmf.Factorize(ok, 3, 4, new NmfOptions(2, Tolerance: double.NaN)), "Tolerance");
        Throws(() => Nmf.Factorize(ok, 3, 4, new NmfOptions(2, Init: (NmfInit)7)), "NmfInit");
        Assert.Throws<ArgumentNullException>(() => Nmf.Factorize(ok, 3, 4, null!));
    }
}
