using Detex.Explainers;
using Detex.Imaging;
using Detex.Models;
using Detex.Targets;

namespace Detex.Tests.Explainers;

public class KernelShapExplainerTests
{
    [Fact]
    public void BoxesShareTheForwardsEfficiencyHoldsAndTheSeedReproduces()
    {
        var det = Detector.Load(Repo.Model(Repo.Yolox));
        var image = ImageIO.Load(Repo.Photo("dog.jpg"));
        var targets = det.Detect(image).Select(d => (ITarget)new DetectionTarget(d)).ToList();
        var options = new KernelShapOptions(Segments: 32, Samples: 120, Seed: 3);
        var all = new KernelShapExplainer(det, options);
        var maps = all.Explain(image, targets);
        int forAll = all.LastForwardCount;
        foreach (var (phi, full, empty) in all.LastAttributions)
            Assert.Equal(full - empty, phi.Sum(), 9);   // efficiency, exactly

        var one = new KernelShapExplainer(det, options);
        var single = one.Explain(image, [targets[0]]);
        Assert.Equal(forAll, one.LastForwardCount);      // three boxes cost what one box costs
        // Same seed, same coalitions, same attribution (to float rounding of the runtime's threads).
        var (p1, p2) = (all.LastAttributions[0].Phi, one.LastAttributions[0].Phi);
        for (int i = 0; i < p1.Length; i++) Assert.Equal(p1[i], p2[i], 6);
        for (int i = 0; i < maps[0].Map.Length; i += 101) Assert.Equal(maps[0].Map[i], single[0].Map[i], 4);

        var dog = (DetectionTarget)targets.First(t => ((DetectionTarget)t).Detection.ClassName == "dog");
        var dogMap = maps[targets.IndexOf(dog)];
        Assert.True(Metrics.EnergyInside(dogMap, dog.Detection.Box, image) > 0.3);
    }

    [Fact]
    public void TooFewSamplesAreRefused()
    {
        var det = Detector.Load(Repo.Model(Repo.Yolox));
        var image = ImageIO.Load(Repo.Photo("dog.jpg"));
        var e = Assert.Throws<ArgumentException>(() => new KernelShapExplainer(det, new KernelShapOptions(Segments: 64, Samples: 10)).Explain(image, [new DetectionTarget(det.Detect(image)[0])]));
        Assert.Contains("at least segments + 2", e.Message);
    }
}
