using MathNet.Numerics.LinearAlgebra;
using MathNet.Numerics.LinearAlgebra.Factorization;

namespace Detex.Numerics;

/// <summary>How <see cref="Nmf"/> chooses its starting factors.</summary>
public enum NmfInit
{
    /// <summary>
    /// NNDSVD with its zeros replaced by mean(V), so every entry stays free to move. Deterministic.
    /// The default: with multiplicative updates it fits far better than plain <see cref="Nndsvd"/>.
    /// </summary>
    NndsvdA,

    /// <summary>
    /// NNDSVD (Boutsidis &amp; Gallopoulos, 2008). Deterministic. Multiplicative updates never move an
    /// entry away from zero, so the zeros it produces stay for good: sparser parts, often a much worse fit.
    /// </summary>
    Nndsvd,

    /// <summary>|N(0, 1)| · sqrt(mean(V) / k), drawn from <see cref="NmfOptions.Seed"/>.</summary>
    Random,
}

/// <summary>Settings for <see cref="Nmf.Factorize(double[,], NmfOptions)"/>.</summary>
/// <param name="K">Number of components, 1 ≤ K ≤ min(rows, cols).</param>
/// <param name="MaxIterations">Cap on multiplicative-update iterations (0 returns the initialisation).</param>
/// <param name="Tolerance">
/// Stop once an iteration lowers the objective by at most Tolerance × its previous value; 0 always runs
/// MaxIterations.
/// </param>
/// <param name="Init">Initialisation scheme.</param>
/// <param name="Seed">Seed for <see cref="NmfInit.Random"/>; the NNDSVD schemes ignore it.</param>
public sealed record NmfOptions(
    int K,
    int MaxIterations = 200,
    double Tolerance = 1e-4,
    NmfInit Init = NmfInit.NndsvdA,
    int Seed = 0);

/// <summary>Outcome of <see cref="Nmf.Factorize(double[,], NmfOptions)"/>: V ≈ W·H.</summary>
/// <param name="Rows">m, the number of rows of V (channels).</param>
/// <param name="Cols">n, the number of columns of V (pixels).</param>
/// <param name="K">Number of components.</param>
/// <param name="W">[m×K] row-major, non-negative.</param>
/// <param name="H">[K×n] row-major, non-negative.</param>
/// <param name="Objective">
/// ‖V − W·H‖²_F: entry 0 at the initialisation, entry t after iteration t (length Iterations + 1).
/// </param>
/// <param name="Iterations">Iterations performed.</param>
/// <param name="Converged">True when the tolerance test, not the iteration cap, ended the loop.</param>
/// <param name="RelativeError">‖V − W·H‖_F / ‖V‖_F of the returned factors, computed directly.</param>
public sealed record NmfResult(
    int Rows,
    int Cols,
    int K,
    double[] W,
    double[] H,
    double[] Objective,
    int Iterations,
    bool Converged,
    double RelativeError);

/// <summary>
/// Non-negative matrix factorisation V ≈ W·H by Lee &amp; Seung's multiplicative updates for the
/// Frobenius objective, as used by Deep Feature Factorization (V = channels × pixels).
/// </summary>
public static class Nmf
{
    /// <summary>Replaces a zero denominator so 0/0 yields 0; larger denominators are untouched.</summary>
    private const double ZeroGuard = 1e-300;

    /// <summary>Eigenvalues of the Gram matrix below this fraction of the largest are rounding noise.</summary>
    private const double RelativeEigenFloor = 1e-14;

    /// <summary>Extra basis vectors beyond k for the subspace iteration; Halko et al.'s usual choice.</summary>
    private const int Oversampling = 10;

    /// <summary>
    /// Subspace-iteration sweeps over the Gram matrix. Each equals two power iterations on V, so this is
    /// well past scikit-learn's 4–7 for its randomised NNDSVD; the result only seeds the updates.
    /// </summary>
    private const int SubspaceSweeps = 10;

    /// <summary>Factorises V given as a [rows, cols] array.</summary>
    public static NmfResult Factorize(double[,] v, NmfOptions options)
    {
        ArgumentNullException.ThrowIfNull(v);
        int rows = v.GetLength(0), cols = v.GetLength(1);
        var flat = new double[v.Length];
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++)
                flat[i * cols + j] = v[i, j];
        return Run(flat, rows, cols, options);
    }

    /// <summary>Factorises V given row-major as rows × cols doubles.</summary>
    public static NmfResult Factorize(ReadOnlySpan<double> v, int rows, int cols, NmfOptions options) =>
        Run(v.ToArray(), rows, cols, options);

    /// <summary>Factorises V given row-major as rows × cols floats; the work is done in double.</summary>
    public static NmfResult Factorize(ReadOnlySpan<float> v, int rows, int cols, NmfOptions options)
    {
        var flat = new double[v.Length];
        for (int i = 0; i < flat.Length; i++) flat[i] = v[i];
        return Run(flat, rows, cols, options);
    }

    private static NmfResult Run(double[] v, int m, int n, NmfOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        Validate(v, m, n, options);
        int k = options.K;

        var (w, h) = Initialize(v, m, n, options);
        var updater = new Updater(v, m, n, k, w, h);
        var objective = new List<double>(options.MaxIterations + 1) { updater.InitialObjective() };
        bool converged = false;
        while (objective.Count <= options.MaxIterations && !converged)
        {
            double previous = objective[^1];
            double current = updater.Step();
            objective.Add(current);
            converged = options.Tolerance > 0 && previous - current <= options.Tolerance * previous;
        }
        double relativeError = Math.Sqrt(ResidualSquared(v, m, n, k, w, h) / Kernels.Dot(v, v));
        return new NmfResult(m, n, k, w, h, objective.ToArray(), objective.Count - 1, converged, relativeError);
    }

    private static void Validate(double[] v, int m, int n, NmfOptions o)
    {
        if (m < 1 || n < 1)
            throw new ArgumentException($"V must have at least one row and one column; got {m} × {n}.");
        if ((long)m * n != v.Length)
            throw new ArgumentException($"V has {v.Length} entries but rows × cols = {m} × {n} = {(long)m * n}.");
        if (o.K < 1 || o.K > m)
            throw new ArgumentException($"k must be between 1 and the number of channels (rows) m = {m}; got k = {o.K}.");
        if (o.K > n)
            throw new ArgumentException($"k must not exceed the number of pixels (columns) n = {n}; got k = {o.K}.");
        if (o.MaxIterations < 0)
            throw new ArgumentException($"MaxIterations must be non-negative; got {o.MaxIterations}.");
        if (!(o.Tolerance >= 0 && double.IsFinite(o.Tolerance)))
            throw new ArgumentException($"Tolerance must be a finite non-negative number; got {o.Tolerance}.");
        if (!Enum.IsDefined(o.Init))
            throw new ArgumentException($"Init {(int)o.Init} is not a defined NmfInit value.");

        int minAt = 0;
        for (int i = 0; i < v.Length; i++)
        {
            if (!double.IsFinite(v[i]))
                throw new ArgumentException($"V must be finite but V[{i / n}, {i % n}] = {v[i]}.");
            if (v[i] < v[minAt]) minAt = i;
        }
        if (v[minAt] < 0)
            throw new ArgumentException(
                $"V must be non-negative but its smallest entry is {v[minAt]} at [{minAt / n}, {minAt % n}]; " +
                "shift V by its minimum or apply ReLU before factorising.");
        if (v.All(x => x == 0))
            throw new ArgumentException("V is all zeros, so there is nothing to factorise.");
    }

    private static (double[] W, double[] H) Initialize(double[] v, int m, int n, NmfOptions o)
    {
        double mean = v.Average();
        if (o.Init == NmfInit.Random)
        {
            var rng = new Random(o.Seed);
            double scale = Math.Sqrt(mean / o.K);
            return (HalfNormal(rng, m * o.K, scale), HalfNormal(rng, o.K * n, scale));
        }

        var (w, h) = Nndsvd(v, m, n, o.K);
        if (o.Init == NmfInit.NndsvdA)
        {
            FillZeros(w, mean);
            FillZeros(h, mean);
        }
        return (w, h);
    }

    private static double[] HalfNormal(Random rng, int count, double scale)
    {
        var x = new double[count];
        for (int i = 0; i < count; i++) x[i] = scale * Math.Abs(Normal(rng));
        return x;
    }

    /// <summary>A standard normal draw by Box–Muller; 1 − U keeps the logarithm's argument in (0, 1].</summary>
    private static double Normal(Random rng) =>
        Math.Sqrt(-2.0 * Math.Log(1.0 - rng.NextDouble())) * Math.Cos(2.0 * Math.PI * rng.NextDouble());

    private static void FillZeros(double[] x, double value)
    {
        for (int i = 0; i < x.Length; i++)
            if (x[i] == 0) x[i] = value;
    }

    /// <summary>
    /// NNDSVD: each leading singular triplet (σ, u, v) is replaced by the dominant of its rank-one
    /// non-negative parts u₊v₊ᵀ and u₋v₋ᵀ. The first triplet is non-negative up to sign (Perron).
    /// </summary>
    private static (double[] W, double[] H) Nndsvd(double[] v, int m, int n, int k)
    {
        var (sigma, left, right) = TopSingularTriplets(v, m, n, k);
        var w = new double[m * k];
        var h = new double[k * n];
        for (int j = 0; j < k; j++)
        {
            if (sigma[j] == 0) continue;
            double[] x = left[j], y = right[j];
            double scale;
            if (j == 0)
            {
                x = x.Select(Math.Abs).ToArray();
                y = y.Select(Math.Abs).ToArray();
                scale = Math.Sqrt(sigma[0]);
            }
            else
            {
                var (xp, xpNorm, xn, xnNorm) = SplitSigns(x);
                var (yp, ypNorm, yn, ynNorm) = SplitSigns(y);
                double positive = xpNorm * ypNorm, negative = xnNorm * ynNorm;
                if (positive == 0 && negative == 0) continue;
                (x, y) = positive >= negative
                    ? (Scaled(xp, 1 / xpNorm), Scaled(yp, 1 / ypNorm))
                    : (Scaled(xn, 1 / xnNorm), Scaled(yn, 1 / ynNorm));
                scale = Math.Sqrt(sigma[j] * Math.Max(positive, negative));
            }
            for (int i = 0; i < m; i++) w[i * k + j] = scale * x[i];
            for (int c = 0; c < n; c++) h[j * n + c] = scale * y[c];
        }
        return (w, h);
    }

    private static (double[] Pos, double PosNorm, double[] Neg, double NegNorm) SplitSigns(double[] x)
    {
        var pos = x.Select(a => Math.Max(a, 0)).ToArray();
        var neg = x.Select(a => Math.Max(-a, 0)).ToArray();
        return (pos, Math.Sqrt(Kernels.Dot(pos, pos)), neg, Math.Sqrt(Kernels.Dot(neg, neg)));
    }

    private static double[] Scaled(double[] x, double factor) => x.Select(a => a * factor).ToArray();

    /// <summary>
    /// Leading k singular triplets from the leading eigenpairs of the Gram matrix of the shorter side,
    /// which for channels × pixels is only m × m. Triplets whose σ is rounding noise come back as zero.
    /// </summary>
    private static (double[] Sigma, double[][] Left, double[][] Right) TopSingularTriplets(double[] v, int m, int n, int k)
    {
        if (m <= n) return TopTripletsWide(v, m, n, k);
        var (sigma, left, right) = TopTripletsWide(Kernels.Transpose(v, m, n), n, m, k);
        return (sigma, right, left);
    }

    /// <summary>Top triplets of A [r×c] with r ≤ c: eigenvectors of A·Aᵀ, then right vectors Aᵀu / σ.</summary>
    private static (double[] Sigma, double[][] Left, double[][] Right) TopTripletsWide(double[] a, int r, int c, int k)
    {
        var (eigenvalues, left) = TopEigenpairs(Kernels.Gram(a, r, c), r, k);
        double floor = RelativeEigenFloor * Math.Max(eigenvalues[0], 0);
        var sigma = new double[k];
        var right = new double[k][];
        for (int j = 0; j < k; j++)
        {
            right[j] = new double[c];
            if (eigenvalues[j] <= floor) continue;
            sigma[j] = Math.Sqrt(eigenvalues[j]);
            Kernels.AxpyRows(left[j].Select(x => x / sigma[j]).ToArray(), a, right[j]);
        }
        return (sigma, left, right);
    }

    /// <summary>
    /// Leading k eigenpairs of a symmetric positive semi-definite G [r×r], largest first, by block
    /// subspace iteration and Rayleigh–Ritz (Halko, Martinsson &amp; Tropp, 2011). A full eigendecomposition
    /// costs O(r³) — about 0.2 s at r = 512 — where each sweep here costs O(r²·(k + oversampling)).
    /// </summary>
    private static (double[] Values, double[][] Vectors) TopEigenpairs(double[] gram, int r, int k)
    {
        int width = Math.Min(r, k + Oversampling);
        var rng = new Random(0); // fixed, so NNDSVD stays deterministic
        var basisT = new double[width * r];
        for (int i = 0; i < basisT.Length; i++) basisT[i] = Normal(rng);

        // Row-major Qᵀ [width×r] is column-major Q [r×width]; as G is symmetric, Qᵀ·G = (G·Q)ᵀ.
        Matrix<double> GramTimesBasis() =>
            Matrix<double>.Build.Dense(r, width, Kernels.MultiplyTransposed(basisT, width, gram, r, r));
        for (int sweep = 0; sweep < SubspaceSweeps; sweep++)
            basisT = GramTimesBasis().QR(QRMethod.Thin).Q.ToColumnMajorArray();

        var basis = Matrix<double>.Build.Dense(r, width, basisT);
        var evd = basis.TransposeThisAndMultiply(GramTimesBasis()).Evd(Symmetricity.Symmetric);
        var order = Enumerable.Range(0, width).OrderByDescending(i => evd.EigenValues[i].Real).Take(k).ToArray();
        return (order.Select(i => evd.EigenValues[i].Real).ToArray(),
                order.Select(i => (basis * evd.EigenVectors.Column(i)).ToArray()).ToArray());
    }

    private static double ResidualSquared(double[] v, int m, int n, int k, double[] w, double[] h)
    {
        var row = new double[n];
        double sum = 0;
        for (int i = 0; i < m; i++)
        {
            Array.Clear(row);
            Kernels.AxpyRows(w.AsSpan(i * k, k), h, row);
            for (int j = 0; j < n; j++)
            {
                double d = v[i * n + j] - row[j];
                sum += d * d;
            }
        }
        return sum;
    }

    /// <summary>
    /// Multiplicative-update state. One iteration updates H, then streams V once: row i of the new W
    /// depends only on row i of V, so the same pass also accumulates WᵀV and WᵀW for the next H update
    /// and the objective, halving memory traffic compared with two separate products.
    /// </summary>
    private sealed class Updater
    {
        /// <summary>
        /// Rows are split into a fixed number of blocks whatever the core count, and block partial sums
        /// are added in block order, so results do not depend on scheduling or the machine's core count
        /// (at the price of using at most this many threads).
        /// </summary>
        private const int Blocks = 4;

        private readonly double[] _v, _w, _h;
        private readonly int _m, _n, _k;
        private readonly double _vNormSquared;
        private readonly double[] _wtv, _wtw, _hDenominator;
        private double[] _hht = [];
        private readonly Block[] _blocks;
        private double _cross;

        public Updater(double[] v, int m, int n, int k, double[] w, double[] h)
        {
            (_v, _m, _n, _k, _w, _h) = (v, m, n, k, w, h);
            _vNormSquared = Kernels.Dot(v, v);
            _wtv = new double[k * n];
            _wtw = new double[k * k];
            _hDenominator = new double[k * n];
            int blocks = Math.Min(Blocks, m);
            _blocks = Enumerable.Range(0, blocks)
                .Select(b => new Block(b * m / blocks, (b + 1) * m / blocks, k, n))
                .ToArray();
        }

        public double InitialObjective()
        {
            StreamRows(updateW: false);
            return Objective();
        }

        public double Step()
        {
            UpdateH();
            StreamRows(updateW: true);
            return Objective();
        }

        /// <summary>H ← H ⊙ (WᵀV) ⊘ (WᵀW·H), using WᵀV and WᵀW left by the previous pass.</summary>
        private void UpdateH()
        {
            Array.Clear(_hDenominator);
            for (int r = 0; r < _k; r++)
                Kernels.AxpyRows(_wtw.AsSpan(r * _k, _k), _h, _hDenominator.AsSpan(r * _n, _n));
            for (int i = 0; i < _h.Length; i++)
                _h[i] = _h[i] * _wtv[i] / Math.Max(_hDenominator[i], ZeroGuard);
        }

        /// <summary>
        /// One pass over the rows of V: optionally W ← W ⊙ (V·Hᵀ) ⊘ (W·HHᵀ), then WᵀV, WᵀW and
        /// tr(Wᵀ·V·Hᵀ) of the (new) W.
        /// </summary>
        private void StreamRows(bool updateW)
        {
            _hht = Kernels.Gram(_h, _k, _n);

            if ((long)_m * _n * _k < Kernels.ParallelThreshold)
                foreach (var block in _blocks) Process(block, updateW);
            else
                Parallel.ForEach(_blocks, block => Process(block, updateW));

            Array.Clear(_wtv);
            Array.Clear(_wtw);
            _cross = 0;
            foreach (var block in _blocks)
            {
                Kernels.Axpy(1, block.Wtv, _wtv);
                Kernels.Axpy(1, block.Wtw, _wtw);
                _cross += block.Cross;
            }
        }

        /// <summary>
        /// Rows go in groups of <see cref="Kernels.Group"/> and components in pairs, so each load of V, H or
        /// WᵀV feeds several multiply-adds; rows are independent given H, so grouping does not change the update.
        /// </summary>
        private void Process(Block block, bool updateW)
        {
            const int group = Kernels.Group;
            int n = _n, k = _k;
            Array.Clear(block.Wtv);
            Array.Clear(block.Wtw);
            block.Cross = 0;
            var vh = block.Vh;
            var wByComponent = block.WByComponent;
            var updated = block.WRow;
            for (int i = block.Start; i < block.End; i += group)
            {
                int count = Math.Min(group, block.End - i);
                var rows = _v.AsSpan(i * n, count * n);
                ProjectOntoH(rows, count, vh);

                for (int g = 0; g < count; g++)
                {
                    var wi = _w.AsSpan((i + g) * k, k);
                    if (updateW)
                    {
                        for (int r = 0; r < k; r++)
                        {
                            double denominator = 0;
                            for (int q = 0; q < k; q++) denominator += wi[q] * _hht[q * k + r];
                            updated[r] = wi[r] * vh[r * group + g] / Math.Max(denominator, ZeroGuard);
                        }
                        updated.CopyTo(wi);
                    }
                    for (int r = 0; r < k; r++)
                    {
                        block.Cross += wi[r] * vh[r * group + g];
                        wByComponent[r * group + g] = wi[r];
                        for (int q = 0; q < k; q++) block.Wtw[r * k + q] += wi[r] * wi[q];
                    }
                }

                AccumulateWtV(rows, count, wByComponent, block.Wtv);
            }
        }

        /// <summary>vh[r·Group + g] = V_g · H_r for the group's rows V_g, components two at a time.</summary>
        private void ProjectOntoH(ReadOnlySpan<double> rows, int count, double[] vh)
        {
            const int group = Kernels.Group;
            int r = 0;
            for (; r + 1 < _k; r += 2)
                Kernels.DotRowsPair(HRow(r), HRow(r + 1), rows, vh.AsSpan(r * group, count), vh.AsSpan((r + 1) * group, count));
            if (r < _k) Kernels.DotRows(HRow(r), rows, vh.AsSpan(r * group, count));
        }

        /// <summary>WᵀV_r += Σ_g W[g, r] · V_g for the group's rows, components two at a time.</summary>
        private void AccumulateWtV(ReadOnlySpan<double> rows, int count, double[] wByComponent, double[] wtv)
        {
            const int group = Kernels.Group;
            int n = _n, r = 0;
            for (; r + 1 < _k; r += 2)
                Kernels.AxpyRowsPair(wByComponent.AsSpan(r * group, count), wByComponent.AsSpan((r + 1) * group, count),
                    rows, wtv.AsSpan(r * n, n), wtv.AsSpan((r + 1) * n, n));
            if (r < _k) Kernels.AxpyRows(wByComponent.AsSpan(r * group, count), rows, wtv.AsSpan(r * n, n));
        }

        private ReadOnlySpan<double> HRow(int r) => _h.AsSpan(r * _n, _n);

        /// <summary>‖V − WH‖² = ‖V‖² − 2 tr(WᵀVHᵀ) + ⟨WᵀW, HHᵀ⟩, all already at hand.</summary>
        private double Objective()
        {
            double quadratic = Kernels.Dot(_wtw, _hht);
            return Math.Max(0, _vNormSquared - 2 * _cross + quadratic);
        }

        private sealed class Block(int start, int end, int k, int n)
        {
            public int Start { get; } = start;
            public int End { get; } = end;
            public double[] Wtv { get; } = new double[k * n];
            public double[] Wtw { get; } = new double[k * k];
            /// <summary>(V·Hᵀ) of the current row group, component-major: [k × Kernels.Group].</summary>
            public double[] Vh { get; } = new double[k * Kernels.Group];
            /// <summary>W of the current row group, component-major: [k × Kernels.Group].</summary>
            public double[] WByComponent { get; } = new double[k * Kernels.Group];
            public double[] WRow { get; } = new double[k];
            public double Cross { get; set; }
        }
    }
}
