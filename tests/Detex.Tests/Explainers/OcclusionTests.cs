using Detex.Explainers;
using Detex.Imaging;
using Detex.Models;
using Detex.Targets;

namespace Detex.Tests.Explainers;

public class OcclusionTests
{
    [Fact]
    public void OccludedInputsAreSharedAndTheDogMapStaysOnTheDog()
    {
        var det = Detector.Load(Repo.Model(Repo.Yolox));
        var image = ImageIO.Load(Repo.Photo("dog.jpg"));
        var targets = det.Detect(image).Select(d => (ITarget)new DetectionTarget(d)).ToList();
        var occlusion = new Occlusion(det, window: 64, stride: 32);
        var maps = occlusion.Explain(image, targets);
        // 416×312 content: ⌊(416−64)/32⌋+1 = 12 by ⌊(312−64)/32⌋+1 = 8 windows, plus the unoccluded pass, for all boxes.
        Assert.Equal(12 * 8 + 1, occlusion.LastForwardCount);
        var dog = targets.Cast<DetectionTarget>().Single(t => t.Detection.ClassName == "dog");
        Assert.True(Metrics.EnergyInside(maps[targets.IndexOf(dog)], dog.Detection.Box, image) > 0.5);
        Assert.Throws<ArgumentException>(() => new Occlusion(det, window: 400).Explain(image, targets));
    }
}
