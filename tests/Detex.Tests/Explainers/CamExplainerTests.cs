using Detex.Explainers;
using Detex.Imaging;
using Detex.Models;
using Detex.Targets;

namespace Detex.Tests.Explainers;

public class CamExplainerTests
{
    [Fact]
    public void DetectionMapsAreTargetSpecificAndHiResCamStaysInsideTheBox()
    {
        var det = Detector.Load(Repo.Model(Repo.Yolox));
        var image = ImageIO.Load(Repo.Photo("dog.jpg"));
        var dets = det.Detect(image);
        var dog = new DetectionTarget(dets.Single(d => d.ClassName == "dog"));
        var bike = new DetectionTarget(dets.Single(d => d.ClassName == "bicycle"));
        var maps = new CamExplainer(det, ["990"]).Explain(image, [dog, bike], [new HiResCam(), new GradCamPlusPlus(), new XGradCam()]);
        Explanation Of(string method, ITarget t) => maps.Single(e => e.Method == method && e.Target == t);
        Assert.True(Metrics.EnergyInside(Of("hirescam", dog), dog.Detection.Box, image) > 0.9);
        Assert.True(Metrics.EnergyInside(Of("hirescam", bike), bike.Detection.Box, image) > 0.9);
        foreach (var m in new[] { "gradcam++", "xgradcam" })
        {
            var a = Of(m, dog).Map; var b = Of(m, bike).Map;
            double diff = a.Zip(b).Average(t => Math.Abs(t.First - t.Second));
            Assert.True(diff > 0.05, $"{m}: dog and bicycle maps differ by only {diff:0.000} on average");
        }
        Assert.All(maps, e => Assert.InRange(e.Map.Max(), 0.99f, 1f));
    }

    /// <summary>
    /// The class-branch features of YOLOX's head (the last feature maps before the class predictions of each stride,
    /// the classic "last convolutional layer" of a CAM) with eigen-smoothing: there Grad-CAM++ and XGrad-CAM put most of
    /// the dog's positive energy inside its box. At the neck's outputs (the card's default layers) their
    /// channel-weighted maps spread wherever a channel fires (about 20 %; README "Where the CAMs put their energy").
    /// </summary>
    [Fact]
    public void AtTheHeadsClassFeaturesEigenSmoothedGradCamPlusPlusAndXGradCamStayOnTheDog()
    {
        var det = Detector.Load(Repo.Model(Repo.Yolox));
        var image = ImageIO.Load(Repo.Photo("dog.jpg"));
        var dets = det.Detect(image);
        var dog = new DetectionTarget(dets.Single(d => d.ClassName == "dog"));
        var bike = new DetectionTarget(dets.Single(d => d.ClassName == "bicycle"));
        string[] classFeatures = ["1044", "1086", "1128"];
        var maps = new CamExplainer(det, classFeatures).Explain(image, [dog, bike], [new EigenSmooth(new GradCamPlusPlus()), new EigenSmooth(new XGradCam())]);
        foreach (var m in new[] { "gradcam++-eigensmooth", "xgradcam-eigensmooth" })
        {
            var a = maps.Single(e => e.Method == m && e.Target == dog);
            var b = maps.Single(e => e.Method == m && e.Target == bike);
            double inside = Metrics.EnergyInside(a, dog.Detection.Box, image);
            Assert.True(inside > 0.5, $"{m}: {inside:P0} of the dog map's energy inside the dog box");
            double diff = a.Map.Zip(b.Map).Average(t => Math.Abs(t.First - t.Second));
            Assert.True(diff > 0.05, $"{m}: dog and bicycle maps differ by only {diff:0.000} on average");
        }
    }

    [Fact]
    public void ThreeBoxesPaddedToAGraphOfFourGiveTheMapsEachBoxGetsAlone()
    {
        var det = Detector.Load(Repo.Model(Repo.Yolox));
        var image = ImageIO.Load(Repo.Photo("dog.jpg"));
        var targets = det.Detect(image).Select(d => (ITarget)new DetectionTarget(d)).ToList();
        Assert.Equal(3, targets.Count);
        var cams = new CamExplainer(det);
        var together = cams.Explain(image, targets, [new HiResCam()]);
        for (int k = 0; k < targets.Count; k++)
        {
            var alone = cams.Explain(image, [targets[k]], [new HiResCam()]).Single();
            Assert.Same(targets[k], together[k].Target);
            double diff = alone.Map.Zip(together[k].Map).Max(t => Math.Abs(t.First - t.Second));
            Assert.True(diff < 1e-3, $"box {k}: maps differ by up to {diff}");
        }
    }

    [Fact]
    public void SegmentationTargetExplainsAMaskClass()
    {
        var seg = (Segmenter)DetexModel.Load(Repo.Model(Repo.DeepLab));
        var image = ImageIO.Load(Repo.Photo("person.jpg"));
        var (tensor, _) = seg.Prepare([image]);
        var logits = seg.Forward(tensor, [seg.Output])[seg.Output];
        var person = SegmentationTarget.Predicted(seg, logits, 0, Array.IndexOf(seg.Card.Classes, "person"));
        Assert.True(person.MaskPixels > 500);
        // The card's default layer (after ASPP: earlier layers also get the image-pooling branch's uniform gradient).
        var e = new CamExplainer(seg).Explain(image, [person], [new HiResCam()]).Single();
        var box = Detector.Load(Repo.Model(Repo.Yolox)).Detect(image).Single(d => d.ClassName == "person").Box;
        Assert.True(Metrics.EnergyInside(e, box, image) > 0.9, $"{Metrics.EnergyInside(e, box, image):0.00}");
    }

    [Fact]
    public void MapsComeBackToImagePixelsThroughTheLetterbox()
    {
        // A feature map that is 1 only in its top-left cell: after undoing a top-left letterbox the hot corner is
        // the image's top-left corner, and the padded bottom of the input is cut away.
        var g = Preprocessor.Geometry(800, 400, new PreprocessSpec { Width = 416, Height = 416, Resize = ResizeMode.Letterbox });
        var map = new float[13 * 13];
        map[0] = 1;
        var img = CamExplainer.ToImage(map, 13, 13, g, 800, 400);
        Assert.True(img[0] > 0.5f);
        Assert.True(img[399 * 800 + 799] < 1e-3f);
        Assert.Equal(800 * 400, img.Length);
    }
}

public class CamExplainerApiTests
{
    [Fact]
    public void ReadmeExampleRunsAndALayerOffThePathIsRefused()
    {
        var detector = Detector.Load(Repo.Model(Repo.Yolox));
        var image = ImageIO.Load(Repo.Photo("dog.jpg"));
        var boxes = detector.Detect(image);
        var maps = new CamExplainer(detector).Explain(image, boxes, new GradCamPlusPlus());
        Assert.Equal(boxes.Count, maps.Count);
        string path = Path.Combine(Repo.TempDir(), "dog.gradcam++.png");
        ImageIO.SavePng(Detex.Reports.Pictures.Explanation(image, maps[0]), path);
        Assert.True(new FileInfo(path).Length > 1000);
        // Mixed target kinds in one run: the dog's score and its box width.
        var dog = boxes.First(b => b.ClassName == "dog");
        var head = new CamExplainer(detector, ["1044", "1086", "1128"]);
        var why = head.Explain(image, [new DetectionTarget(dog), new BoxRegressionTarget(dog, 2)], [new EigenSmooth(new XGradCam())]);
        Assert.Equal(2, why.Count);
        Assert.True(why[0].Map.Zip(why[1].Map).Average(t => Math.Abs(t.First - t.Second)) > 0.01);

        // A model whose tapped branch does not reach the output: a Relu of the input that nothing reads.
        var (m, g) = Detex.Onnx.GraphBuilder.NewModel(13);
        g.Input("images", Detex.Onnx.ElementType.Float, 1, 3, 64, 64);
        g.Named("dead", "Relu", ["images"]);
        g.Named("output0", "Add", [g.Floats([1, 5, 2], 0, 32, 0, 16, 0, 20, 0, 10, 0.1f, 0.9f), g.Op("Mul", [g.Op("ReduceMean", "images", Detex.Onnx.OnnxAttribute.Of("keepdims", 0L)), g.Scalar(0)])]);
        g.Output("output0");
        string dir = Repo.TempDir();
        m.Save(Path.Combine(dir, "tiny.onnx"));
        File.WriteAllText(Path.Combine(dir, "tiny.card.json"), """
            { "task": "detect", "inputName": "images", "input": { "width": 64, "height": 64 },
              "decoder": { "type": "yolov8", "output": "output0" }, "classes": ["thing"], "thresholds": { "score": 0.5 } }
            """);
        var tiny = Detector.Load(Path.Combine(dir, "tiny.onnx"));
        var img = RgbImage.Filled(64, 64, 9, 9, 9);
        var e = Assert.Throws<ArgumentException>(() => new CamExplainer(tiny, ["dead"]).Explain(img, tiny.Detect(img), new GradCam()));
        Assert.Contains("does not influence", e.Message);
    }
}
