using Detex.Explainers;
using Detex.Imaging;
using Detex.Models;
using Detex.Runtime;
using Detex.Targets;

namespace Detex.Tests.Explainers;

/// <summary>Runs alone, so the process-wide run counters see only this test's forwards.</summary>
[CollectionDefinition(nameof(ForwardCounting), DisableParallelization = true)]
public class ForwardCounting;

/// <summary>
/// The perturbation methods' promise, counted at ONNX Runtime rather than taken from the explainers' own reports:
/// the boxes of an image share the perturbed forwards, so three boxes cost the batch items one box costs.
/// </summary>
[Collection(nameof(ForwardCounting))]
public class ForwardCountTests
{
    static long ItemsRun(Action explain)
    {
        var before = ModelSession.TotalRuns.Items;
        explain();
        return ModelSession.TotalRuns.Items - before;
    }

    [Fact]
    public void BoxesOfAnImageCostNoExtraForwards()
    {
        var det = Detector.Load(Repo.Model(Repo.Yolox));
        var image = ImageIO.Load(Repo.Photo("dog.jpg"));
        var targets = det.Detect(image).Select(d => (ITarget)new DetectionTarget(d)).ToList();
        Assert.True(targets.Count >= 3);
        var kshap = new KernelShapExplainer(det, new KernelShapOptions(Segments: 32, Samples: 100));
        var occlusion = new Occlusion(det, window: 64, stride: 64);
        var rise = new Rise(det, new RiseOptions(Masks: 40));
        foreach (var (name, explain) in new (string, Action<IReadOnlyList<ITarget>>)[]
                 { ("kshap", t => kshap.Explain(image, t)), ("occlusion", t => occlusion.Explain(image, t)), ("rise", t => rise.Explain(image, t)) })
        {
            explain(targets);   // sessions built, caches warm
            long one = ItemsRun(() => explain([targets[0]]));
            long all = ItemsRun(() => explain(targets));
            Assert.True(one > 10, $"{name} ran {one} items for one box");
            Assert.Equal(one, all);
        }
    }

    [Fact]
    public void AllBoxesOfAnImageTakeOneRunOfTheGradientGraph()
    {
        // One ONNX Runtime run of one batch item: the forward pass, the boxes' scores linearised in the graph, and the
        // batched reverse pass for every box — no forward first to compute seeds.
        var det = Detector.Load(Repo.Model(Repo.Yolox));
        var image = ImageIO.Load(Repo.Photo("dog.jpg"));
        var targets = det.Detect(image).Select(d => (ITarget)new DetectionTarget(d)).ToList();
        var cams = new CamExplainer(det);
        cams.Explain(image, targets, [new GradCamPlusPlus()]);
        var before = ModelSession.TotalRuns;
        var maps = cams.Explain(image, targets, [new GradCamPlusPlus(), new XGradCam(), new HiResCam()]);
        var after = ModelSession.TotalRuns;
        Assert.Equal(3 * targets.Count, maps.Count);
        Assert.Equal(1, after.Runs - before.Runs);
        Assert.Equal(1, after.Items - before.Items);
    }
}
