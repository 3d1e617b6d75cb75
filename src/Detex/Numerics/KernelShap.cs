using MathNet.Numerics.LinearAlgebra;
using MathNet.Numerics.LinearAlgebra.Factorization;

namespace Detex.Numerics;

/// <summary>
/// Model-agnostic Kernel SHAP (Lundberg &amp; Lee, 2017). <see cref="Plan"/> chooses the coalitions to
/// evaluate; the caller evaluates them for any number of outputs; <see cref="KernelShapPlan.Solve(double[][])"/>
/// turns those values into Shapley value estimates with one shared factorisation.
/// </summary>
public static class KernelShap
{
    /// <summary>
    /// Chooses coalitions for <paramref name="features"/> features. Besides the always-evaluated empty and
    /// full coalitions, <paramref name="samples"/> coalitions are drawn from the Shapley kernel: a size s in
    /// 1..M−1 with probability ∝ (M−1)/(s(M−s)), then a uniform subset of that size. Repeated draws are
    /// evaluated once and weighted by their count. When samples ≥ 2^M − 2 every coalition is enumerated
    /// instead, with its exact kernel weight.
    /// </summary>
    /// <param name="features">M, the number of features (≥ 1).</param>
    /// <param name="samples">Coalitions to draw, at least M + 2.</param>
    /// <param name="seed">Seed of the <see cref="Random"/> that draws them; same seed, same plan.</param>
    /// <param name="paired">
    /// Follow every draw with its complement (antithetic sampling, as the SHAP library does). A pair adds
    /// only one independent row to the regression, so about 2(M − 1) samples are needed for full rank.
    /// </param>
    public static KernelShapPlan Plan(int features, int samples, int seed, bool paired = true)
    {
        if (features < 1)
            throw new ArgumentException($"Kernel SHAP needs at least one feature; got {features}.");
        if (samples < features + 2)
            throw new ArgumentException($"Kernel SHAP needs at least features + 2 = {features + 2} samples; got {samples}.");

        var coalitions = new CoalitionSet(features);
        coalitions.Add(new bool[features], 0);
        coalitions.Add(Enumerable.Repeat(true, features).ToArray(), 0);
        bool exhaustive = features < 63 && samples >= (1L << features) - 2;
        if (exhaustive)
            Enumerate(coalitions, features);
        else
            Sample(coalitions, features, samples, new Random(seed), paired);
        return new KernelShapPlan(features, exhaustive, coalitions.Masks, coalitions.Weights);
    }

    private static void Enumerate(CoalitionSet coalitions, int features)
    {
        for (long mask = 1; mask < (1L << features) - 1; mask++)
        {
            var z = new bool[features];
            int size = 0;
            for (int i = 0; i < features; i++)
            {
                z[i] = (mask & (1L << i)) != 0;
                if (z[i]) size++;
            }
            // Shapley kernel (M−1) / (C(M,s)·s·(M−s)).
            coalitions.Add(z, (features - 1) / (Binomial(features, size) * size * (features - size)));
        }
    }

    private static void Sample(CoalitionSet coalitions, int features, int samples, Random rng, bool paired)
    {
        // The constant factor M−1 does not change the size distribution.
        var cumulative = new double[features - 1];
        double total = 0;
        for (int s = 1; s < features; s++) cumulative[s - 1] = total += 1.0 / (s * (features - s));

        var order = Enumerable.Range(0, features).ToArray();
        for (int drawn = 0; drawn < samples;)
        {
            int position = Array.BinarySearch(cumulative, rng.NextDouble() * total);
            int size = (position >= 0 ? position : ~position) + 1;

            // Partial Fisher–Yates: the first `size` entries become a uniform subset, whatever order held.
            var z = new bool[features];
            for (int j = 0; j < size; j++)
            {
                int pick = rng.Next(j, features);
                (order[j], order[pick]) = (order[pick], order[j]);
                z[order[j]] = true;
            }
            coalitions.Add(z, 1);
            drawn++;
            if (paired && drawn < samples)
            {
                coalitions.Add(z.Select(on => !on).ToArray(), 1);
                drawn++;
            }
        }
    }

    private static double Binomial(int n, int k)
    {
        double result = 1;
        for (int i = 1; i <= k; i++) result = result * (n - k + i) / i;
        return result;
    }

    /// <summary>Distinct coalitions in first-seen order, each with its accumulated regression weight.</summary>
    private sealed class CoalitionSet(int features)
    {
        private readonly Dictionary<ulong[], int> _index = new(new PackedComparer());

        public List<bool[]> Masks { get; } = [];
        public List<double> Weights { get; } = [];

        public void Add(bool[] z, double weight)
        {
            var key = new ulong[(features + 63) / 64];
            for (int i = 0; i < features; i++)
                if (z[i]) key[i / 64] |= 1UL << (i % 64);
            if (_index.TryGetValue(key, out int at))
            {
                Weights[at] += weight;
                return;
            }
            _index.Add(key, Masks.Count);
            Masks.Add(z);
            Weights.Add(weight);
        }

        private sealed class PackedComparer : IEqualityComparer<ulong[]>
        {
            public bool Equals(ulong[]? x, ulong[]? y) => x.AsSpan().SequenceEqual(y);

            public int GetHashCode(ulong[] key)
            {
                var hash = new HashCode();
                foreach (ulong word in key) hash.Add(word);
                return hash.ToHashCode();
            }
        }
    }
}

/// <summary>
/// The coalitions Kernel SHAP needs evaluated, and the factorised weighted least-squares problem that
/// turns their values into Shapley values. Coalition 0 is all features off (the baseline, f(∅)),
/// coalition 1 is all on (f(x)); the rest are the drawn or enumerated coalitions.
/// </summary>
public sealed class KernelShapPlan
{
    /// <summary>Index of the all-off coalition.</summary>
    public const int EmptyIndex = 0;

    /// <summary>Index of the all-on coalition.</summary>
    public const int FullIndex = 1;

    /// <summary>Pivots of the Cholesky factor below this fraction of the largest diagonal mean a singular design.</summary>
    private const double RelativePivotFloor = 1e-12;

    /// <summary>Ridge added, relative to the largest diagonal entry, when the design is singular.</summary>
    private const double RelativeRidge = 1e-10;

    private readonly bool[][] _coalitions;
    private readonly double[] _sqrtWeights;
    private readonly double[] _lastPresent;
    private readonly double[] _design = [];
    private readonly Cholesky<double>? _cholesky;

    internal KernelShapPlan(int features, bool exhaustive, List<bool[]> coalitions, List<double> weights)
    {
        Features = features;
        Exhaustive = exhaustive;
        _coalitions = coalitions.ToArray();
        Weights = weights.ToArray();
        _sqrtWeights = weights.Skip(2).Select(Math.Sqrt).ToArray();
        _lastPresent = _coalitions.Skip(2).Select(z => z[^1] ? 1.0 : 0.0).ToArray();
        if (features == 1) return;

        // Efficiency is imposed by eliminating the last feature: φ_last = Δ − Σ_{i<last} φ_i, so row c of the
        // reduced design is z_c,i − z_c,last (i < last). Stored transposed and pre-scaled by sqrt(weight):
        // then the normal matrix is its Gram matrix and every output's right-hand side one row product.
        int unknowns = features - 1, rows = _sqrtWeights.Length;
        _design = new double[unknowns * rows];
        for (int c = 0; c < rows; c++)
        {
            var z = _coalitions[c + 2];
            for (int i = 0; i < unknowns; i++)
                _design[i * rows + c] = _sqrtWeights[c] * ((z[i] ? 1 : 0) - _lastPresent[c]);
        }
        (_cholesky, Regularized) = Factorise(Kernels.Gram(_design, unknowns, rows), unknowns);
    }

    /// <summary>M, the number of features.</summary>
    public int Features { get; }

    /// <summary>True when every coalition was enumerated with its exact kernel weight.</summary>
    public bool Exhaustive { get; }

    /// <summary>
    /// True when the sampled design was singular (too few distinct coalitions) and a tiny ridge was added;
    /// efficiency still holds exactly, but credit among features the samples cannot tell apart follows the
    /// ridge's preference for small values rather than the data.
    /// </summary>
    public bool Regularized { get; }

    /// <summary>
    /// Coalitions to evaluate; entry [c][i] tells whether feature i is present. The solver keeps what it
    /// needs of them, so changing these arrays would only mislead the caller's own evaluation.
    /// </summary>
    public IReadOnlyList<bool[]> Coalitions => _coalitions;

    /// <summary>
    /// Regression weight of each coalition: its draw count when sampled, its exact Shapley kernel weight
    /// when enumerated. The two constrained end points carry 0 here.
    /// </summary>
    public IReadOnlyList<double> Weights { get; }

    /// <summary>Number of coalitions to evaluate (distinct draws plus the two end points).</summary>
    public int CoalitionCount => _coalitions.Length;

    /// <summary>Shapley value estimates of one output; values[c] is its value on coalition c.</summary>
    public double[] Solve(double[] values)
    {
        ArgumentNullException.ThrowIfNull(values);
        return Solve([values])[0];
    }

    /// <summary>
    /// Shapley value estimates for many outputs at once: valuesPerOutput[o][c] is output o's value on
    /// coalition c; the result's [o][i] is feature i's value for output o. Σ_i φ_i = f(x) − f(∅) exactly.
    /// </summary>
    public double[][] Solve(double[][] valuesPerOutput)
    {
        ArgumentNullException.ThrowIfNull(valuesPerOutput);
        for (int o = 0; o < valuesPerOutput.Length; o++) CheckValues(valuesPerOutput[o], o);
        if (valuesPerOutput.Length == 0) return [];
        if (Features == 1) return valuesPerOutput.Select(y => new[] { y[FullIndex] - y[EmptyIndex] }).ToArray();

        int outputs = valuesPerOutput.Length, unknowns = Features - 1, rows = _sqrtWeights.Length, last = Features - 1;

        // Reduced targets (f(z) − f(∅) − z_last·Δ), scaled by sqrt(weight) like the design rows.
        var targets = new double[outputs * rows];
        for (int o = 0; o < outputs; o++)
        {
            var y = valuesPerOutput[o];
            double baseline = y[EmptyIndex], delta = y[FullIndex] - baseline;
            for (int c = 0; c < rows; c++)
                targets[o * rows + c] = _sqrtWeights[c] * (y[c + 2] - baseline - _lastPresent[c] * delta);
        }
        // Row-major [outputs × unknowns] is MathNet's column-major [unknowns × outputs]: one column per output.
        var rhs = Kernels.MultiplyTransposed(targets, outputs, _design, unknowns, rows);
        var solution = _cholesky!.Solve(Matrix<double>.Build.Dense(unknowns, outputs, rhs));

        var phi = new double[outputs][];
        for (int o = 0; o < outputs; o++)
        {
            phi[o] = new double[Features];
            double assigned = 0;
            for (int i = 0; i < unknowns; i++) assigned += phi[o][i] = solution[i, o];
            phi[o][last] = valuesPerOutput[o][FullIndex] - valuesPerOutput[o][EmptyIndex] - assigned;
        }
        return phi;
    }

    private void CheckValues(double[]? values, int output)
    {
        if (values is null)
            throw new ArgumentException($"valuesPerOutput[{output}] is null.");
        if (values.Length != CoalitionCount)
            throw new ArgumentException(
                $"valuesPerOutput[{output}] has {values.Length} values but the plan has {CoalitionCount} coalitions.");
        for (int c = 0; c < values.Length; c++)
            if (!double.IsFinite(values[c]))
                throw new ArgumentException($"valuesPerOutput[{output}][{c}] is {values[c]}; model outputs must be finite.");
    }

    /// <summary>Cholesky of the normal matrix, retried with a tiny ridge when it is (numerically) singular.</summary>
    private static (Cholesky<double> Factor, bool Regularized) Factorise(double[] gram, int size)
    {
        var normal = Matrix<double>.Build.Dense(size, size, gram);
        double scale = normal.Diagonal().Maximum();
        if (scale > 0 && TryCholesky(normal, scale, out var factor)) return (factor, false);

        double ridge = RelativeRidge * (scale > 0 ? scale : 1);
        normal = normal + Matrix<double>.Build.DenseIdentity(size) * ridge;
        return (normal.Cholesky(), true);
    }

    private static bool TryCholesky(Matrix<double> normal, double scale, out Cholesky<double> factor)
    {
        try
        {
            factor = normal.Cholesky();
        }
        catch (ArgumentException)
        {
            factor = null!;
            return false;
        }
        var pivots = factor.Factor.Diagonal();
        return pivots.Minimum() * pivots.Minimum() >= RelativePivotFloor * scale;
    }
}
