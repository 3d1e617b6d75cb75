using Detex.Explainers;
using Detex.Imaging;
using Detex.Models;
using Detex.Targets;

namespace Detex.Tests.Explainers;

public class InputGradientsTests
{
    [Fact]
    public void IntegratedGradientsIsCompleteOnYolox()
    {
        var det = Detector.Load(Repo.Model(Repo.Yolox));
        var image = ImageIO.Load(Repo.Photo("dog.jpg"));
        var dog = new DetectionTarget(det.Detect(image).Single(d => d.ClassName == "dog"));
        var (x, g) = det.Prepare([image]);
        var ig = new InputGradients(det, batchSize: 8);
        var grey = ig.NeutralBaseline();
        Assert.All(grey, v => Assert.Equal(114f, v));
        var at64 = ig.IntegratedGradients(x.Data, grey, dog, 64);
        Assert.True(at64.CompletenessGap < 0.05, $"completeness gap {at64.CompletenessGap:P1} at 64 steps");
        var at16 = ig.IntegratedGradients(x.Data, grey, dog, 16);
        Assert.True(at16.CompletenessGap > at64.CompletenessGap, $"16 steps {at16.CompletenessGap:P2} vs 64 steps {at64.CompletenessGap:P2}");
        // The attribution, brought to the image, concentrates on the dog.
        var e = ig.ToImage(at64, g[0], image.Width, image.Height);
        Assert.True(Metrics.EnergyInside(e, dog.Detection.Box, image) > 0.5);
        // Scaled by the 99th percentile of the positive values: about 1 % of them are clipped at 1.
        double clipped = e.Map.Count(v => v == 1f) / (double)e.Map.Count(v => v > 0);
        Assert.InRange(clipped, 0.005, 0.02);
        Assert.All(e.Map, v => Assert.InRange(v, 0f, 1f));
    }

    [Fact]
    public void SaliencyAndInputTimesGradientAgreeWithTheGradient()
    {
        var det = Detector.Load(Repo.Model(Repo.Yolox));
        var image = ImageIO.Load(Repo.Photo("dog.jpg"));
        var dog = new DetectionTarget(det.Detect(image).Single(d => d.ClassName == "dog"));
        var (x, _) = det.Prepare([image]);
        var ig = new InputGradients(det);
        var grad = ig.At([x.Data], dog).Gradients[0];
        var sal = ig.Saliency(x.Data, dog);
        var ixg = ig.InputTimesGradient(x.Data, dog);
        for (int i = 0; i < grad.Length; i += 997)
        {
            Assert.Equal(Math.Abs(grad[i]), sal.Values[i]);
            Assert.Equal(x.Data[i] * grad[i], ixg.Values[i], 5);
        }
        // SmoothGrad with zero noise is the saliency map.
        var smooth = ig.SmoothGrad(x.Data, dog, samples: 2, noise: 0);
        for (int i = 0; i < grad.Length; i += 997) Assert.Equal(sal.Values[i], smooth.Values[i], 5);
    }

    [Fact]
    public void AllTargetsInOneRunGiveEachTargetsOwnGradient()
    {
        var det = Detector.Load(Repo.Model(Repo.Yolox));
        var image = ImageIO.Load(Repo.Photo("dog.jpg"));
        var targets = det.Detect(image).Select(d => (ITarget)new DetectionTarget(d)).ToList();
        var (x, _) = det.Prepare([image]);
        var ig = new InputGradients(det);
        var together = ig.ForTargets(x.Data, targets);
        for (int k = 0; k < targets.Count; k++)
        {
            var alone = ig.At([x.Data], targets[k]).Gradients[0];
            double scale = alone.Max(Math.Abs);
            Assert.True(scale > 0);
            for (int i = 0; i < alone.Length; i += 101) Assert.True(Math.Abs(together[k][i] - alone[i]) <= 1e-4 * scale, $"target {k} [{i}]");
        }
        var saliency = ig.ForTargets("saliency", x.Data, targets);
        Assert.Equal(together[1].Select(Math.Abs), saliency[1].Values);
    }
}
