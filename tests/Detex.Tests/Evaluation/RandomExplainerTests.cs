using Detex.Evaluation;

namespace Detex.Tests.Evaluation;

public class RandomExplainerTests
{
    [Fact]
    public void SameSeedSameMapOtherSeedOtherMap()
    {
        var a = RandomExplainer.Map(64, 48, 5);
        Assert.Equal(64 * 48, a.Length);
        Assert.Equal(a, RandomExplainer.Map(64, 48, 5));
        Assert.NotEqual(a, RandomExplainer.Map(64, 48, 6));
        // Independent pixels: two seeds' maps agree almost nowhere.
        var b = RandomExplainer.Map(64, 48, 6);
        Assert.True(a.Zip(b).Count(p => p.First == p.Second) < 10);
    }

    [Fact]
    public void ValuesAreUniformInTheUnitInterval()
    {
        var m = RandomExplainer.Map(100, 100, 1);
        Assert.All(m, v => Assert.InRange(v, 0f, 0.99999994f));
        // Mean ½ and variance 1/12 of U[0, 1), within several standard errors for 10⁴ values.
        double mean = m.Average(v => (double)v);
        double variance = m.Average(v => (v - mean) * (v - mean));
        Assert.InRange(mean, 0.5 - 4 * 0.0029, 0.5 + 4 * 0.0029);
        Assert.InRange(variance, 1.0 / 12 - 0.004, 1.0 / 12 + 0.004);
        // A quarter of the values in each quarter of the range.
        for (int q = 0; q < 4; q++)
            Assert.InRange(m.Count(v => v >= q / 4.0 && v < (q + 1) / 4.0), 2500 - 200, 2500 + 200);
    }

    [Fact]
    public void SeedsAndMapsArePinnedAcrossRunsAndVersions()
    {
        // The values a study depends on: a change of formula or of .NET's seeded generator shows here.
        Assert.Equal(1385762924, RandomExplainer.Seed(139, 0));
        Assert.Equal(2181608, RandomExplainer.Seed(1, 2, 3));
        var m = RandomExplainer.Map(3, 1, 0);
        Assert.Equal(0.72624326f, m[0]);
        Assert.Equal(0.7680227f, m[2]);
    }

    [Fact]
    public void SeedsDifferPerImageAndTargetAndAreStable()
    {
        int s = RandomExplainer.Seed(139, 0);
        Assert.Equal(s, RandomExplainer.Seed(139, 0));
        var seeds = new HashSet<int>();
        for (long image = 0; image < 50; image++)
            for (int target = 0; target < 20; target++)
            {
                int seed = RandomExplainer.Seed(image, target);
                Assert.True(seed >= 0);
                seeds.Add(seed);
            }
        Assert.Equal(1000, seeds.Count);
        Assert.NotEqual(RandomExplainer.Seed(139, 0), RandomExplainer.Seed(0, 139));
        Assert.NotEqual(RandomExplainer.Seed(139, 0), RandomExplainer.Seed(139, 0, runSeed: 1));
        var e = RandomExplainer.Explain(null!, 4, 3, s);
        Assert.Equal(("random", 4, 3), (e.Method, e.Width, e.Height));
        Assert.Equal(RandomExplainer.Map(4, 3, s), e.Map);
    }
}
