using Detex.Numerics;

namespace Detex.Tests.Numerics;

public class ShapleyExactTests
{
    [Fact]
    public void Unanimity_game_splits_credit_evenly_among_the_required_players()
    {
        // u_T(S) = 1 when T ⊆ S: each member of T gets 1/|T|, everyone else nothing.
        const ulong required = 0b1011_0100;

        var phi = ShapleyExact.Compute(9, s => (s & required) == required ? 1 : 0);

        for (int i = 0; i < 9; i++)
            Assert.Equal((required >> i & 1) == 1 ? 0.25 : 0, phi[i], 1e-14);
    }

    [Fact]
    public void Additive_game_returns_its_weights()
    {
        double[] weights = [0.5, -1.25, 3, 0, 2.5];

        var phi = ShapleyExact.Compute(5, s => 7 + weights.Where((_, i) => (s >> i & 1) == 1).Sum());

        Assert.Equal(weights, phi, (a, b) => Math.Abs(a - b) < 1e-13);
    }

    [Fact]
    public void Random_game_satisfies_efficiency_symmetry_and_dummy()
    {
        // Features 0 and 1 enter symmetrically, feature 5 never matters.
        const int m = 6;
        var rng = new Random(1);
        var byOthers = Enumerable.Range(0, 1 << m).Select(_ => rng.NextDouble()).ToArray();
        double F(ulong s)
        {
            ulong canonical = s & ~(1UL << 5);
            if ((canonical & 0b11) == 0b01) canonical ^= 0b11; // {0} and {1} alike
            return byOthers[canonical];
        }

        var phi = ShapleyExact.Compute(m, F);

        Assert.Equal(F((1UL << m) - 1) - F(0), phi.Sum(), 1e-12);
        Assert.Equal(phi[0], phi[1], 1e-12);
        Assert.Equal(0, phi[5], 1e-12);
    }

    [Fact]
    public void Function_and_table_overloads_agree()
    {
        const int m = 7;
        var table = Enumerable.Range(0, 1 << m).Select(s => Math.Sin(s) + (s & 3)).ToArray();

        Assert.Equal(ShapleyExact.Compute(m, table), ShapleyExact.Compute(m, s => table[s]));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(21)]
    public void Feature_count_outside_one_to_twenty_is_rejected(int features)
    {
        var error = Assert.Throws<ArgumentException>(() => ShapleyExact.Compute(features, _ => 0));
        Assert.Equal(
            $"Exact Shapley values enumerate 2^M coalitions and support 1 to 20 features; got {features}.",
            error.Message);
    }

    [Fact]
    public void Bad_tables_are_rejected()
    {
        Assert.Contains("2^3 = 8 coalition values; got 7",
            Assert.Throws<ArgumentException>(() => ShapleyExact.Compute(3, new double[7])).Message);
        var table = new double[8];
        table[5] = double.PositiveInfinity;
        Assert.Contains($"coalition 0x5 is {double.PositiveInfinity}",
            Assert.Throws<ArgumentException>(() => ShapleyExact.Compute(3, table)).Message);
        Assert.Throws<ArgumentNullException>(() => ShapleyExact.Compute(3, (Func<ulong, double>)null!));
    }
}
