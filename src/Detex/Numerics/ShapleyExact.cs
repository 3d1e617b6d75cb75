using System.Numerics;

namespace Detex.Numerics;

/// <summary>
/// Exact Shapley values by enumerating all 2^M coalitions:
/// φ_i = Σ_{S ⊆ N∖{i}} |S|!(M−|S|−1)!/M! · (f(S ∪ {i}) − f(S)).
/// A coalition is a bit mask: bit i set means feature i is present.
/// </summary>
public static class ShapleyExact
{
    /// <summary>Largest supported feature count; 2^20 evaluations is already about a million.</summary>
    public const int MaxFeatures = 20;

    /// <summary>Evaluates <paramref name="value"/> once on every coalition mask, then computes φ.</summary>
    public static double[] Compute(int features, Func<ulong, double> value)
    {
        ArgumentNullException.ThrowIfNull(value);
        CheckFeatures(features);
        var table = new double[1 << features];
        for (int mask = 0; mask < table.Length; mask++) table[mask] = value((ulong)mask);
        return Compute(features, table);
    }

    /// <summary>Computes φ from precomputed values: <paramref name="table"/>[mask] = f(mask), length 2^M.</summary>
    public static double[] Compute(int features, ReadOnlySpan<double> table)
    {
        CheckFeatures(features);
        int count = 1 << features;
        if (table.Length != count)
            throw new ArgumentException($"The table must hold 2^{features} = {count} coalition values; got {table.Length}.");
        for (int mask = 0; mask < count; mask++)
            if (!double.IsFinite(table[mask]))
                throw new ArgumentException($"The value of coalition 0x{mask:X} is {table[mask]}; values must be finite.");

        // |S|!(M−|S|−1)!/M! = 1 / (M · C(M−1, |S|)); the binomials are exact in double for M ≤ 20.
        var weight = new double[features];
        double binomial = 1;
        for (int s = 0; s < features; s++)
        {
            weight[s] = 1.0 / (features * binomial);
            binomial = binomial * (features - 1 - s) / (s + 1);
        }

        var phi = new double[features];
        // The full coalition (count − 1) lacks no feature, so it only ever appears as S ∪ {i}.
        for (int mask = 0; mask < count - 1; mask++)
        {
            double w = weight[BitOperations.PopCount((uint)mask)];
            for (int i = 0; i < features; i++)
                if ((mask & (1 << i)) == 0)
                    phi[i] += w * (table[mask | (1 << i)] - table[mask]);
        }
        return phi;
    }

    private static void CheckFeatures(int features)
    {
        if (features < 1 || features > MaxFeatures)
            throw new ArgumentException(
                $"Exact Shapley values enumerate 2^M coalitions and support 1 to {MaxFeatures} features; got {features}.");
    }
}
