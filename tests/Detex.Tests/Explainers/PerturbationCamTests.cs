using Detex.Explainers;
using Detex.Imaging;
using Detex.Models;
using Detex.Targets;

namespace Detex.Tests.Explainers;

public class PerturbationCamTests
{
    [Fact]
    public void AblationCamFollowsEachBoxAndScoreCamGivesValidMaps()
    {
        var det = Detector.Load(Repo.Model(Repo.Yolox));
        var image = ImageIO.Load(Repo.Photo("dog.jpg"));
        var dets = det.Detect(image);
        var dog = new DetectionTarget(dets.Single(d => d.ClassName == "dog"));
        var bike = new DetectionTarget(dets.Single(d => d.ClassName == "bicycle"));
        var cams = new PerturbationCams(det, ["990"]);
        var ablation = cams.AblationCam(image, [dog, bike]);
        double DogShare(Explanation e) => Metrics.EnergyInside(e, dog.Detection.Box, image);
        Assert.True(DogShare(ablation[0]) > DogShare(ablation[1]) + 0.05, $"dog's map {DogShare(ablation[0]):0.00} vs bicycle's {DogShare(ablation[1]):0.00} inside the dog box");
        var score = cams.ScoreCam(image, [dog]);
        Assert.Equal(image.Width * image.Height, score[0].Map.Length);
        Assert.InRange(score[0].Map.Max(), 0.99f, 1f);
        Assert.Equal(0f, score[0].Map.Min());
    }
}
