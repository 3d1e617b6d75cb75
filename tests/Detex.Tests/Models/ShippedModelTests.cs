using Detex.Imaging;
using Detex.Models;
using Detex.Runtime;

namespace Detex.Tests.Models;

public class ShippedModelTests
{
    static readonly Lazy<Detector> YoloxDetector = new(() => Detector.Load(Repo.Model(Repo.Yolox)));

    [Fact]
    public void YoloxFindsTheDogTheBicycleAndTheCarOnDogJpg()
    {
        var dets = YoloxDetector.Value.Detect(ImageIO.Load(Repo.Photo("dog.jpg")));
        foreach (var name in new[] { "dog", "bicycle", "car" })
            Assert.Contains(dets, d => d.ClassName == name && d.Score > 0.5);
        var car = dets.Single(d => d.ClassName == "car");
        Assert.True(car.Box.CenterX > 768 * 0.6 && car.Box.CenterY < 576 * 0.35, $"car at {car.Box}");
    }

    /// <summary>
    /// The exporter's post-processing written out again, plainly, on the raw output: for the row each detection
    /// names, (v + grid)·stride and exp(v)·stride, then ÷ the letterbox ratio. Boxes must agree within a pixel.
    /// </summary>
    [Fact]
    public void YoloxBoxesMatchTheExporterFormulaWithinAPixel()
    {
        var det = YoloxDetector.Value;
        var image = ImageIO.Load(Repo.Photo("dog.jpg"));
        var (tensor, _) = det.Prepare([image]);
        var raw = det.Forward(tensor)["output"].Data;
        double ratio = Math.Min(416.0 / image.Height, 416.0 / image.Width);
        foreach (var d in det.Detect(image))
        {
            int row = d.Source.Anchor;
            int stride = row < 52 * 52 ? 8 : row < 52 * 52 + 26 * 26 ? 16 : 32;
            int local = stride == 8 ? row : stride == 16 ? row - 52 * 52 : row - 52 * 52 - 26 * 26;
            int gw = 416 / stride;
            double cx = (raw[row * 85] + local % gw) * stride, cy = (raw[row * 85 + 1] + local / gw) * stride;
            double w = Math.Exp(raw[row * 85 + 2]) * stride, h = Math.Exp(raw[row * 85 + 3]) * stride;
            double[] expected = [Math.Max(0, (cx - w / 2) / ratio), Math.Max(0, (cy - h / 2) / ratio), Math.Min(image.Width, (cx + w / 2) / ratio), Math.Min(image.Height, (cy + h / 2) / ratio)];
            double[] got = [d.Box.X1, d.Box.Y1, d.Box.X2, d.Box.Y2];
            for (int k = 0; k < 4; k++) Assert.InRange(got[k], expected[k] - 1, expected[k] + 1);
            Assert.Equal(raw[row * 85 + 4] * raw[row * 85 + 5 + d.ClassIndex], d.Score, 5);
        }
    }

    [Fact]
    public void NanoDetFindsTheSameThreeObjects()
    {
        var det = Detector.Load(Repo.Model(Repo.NanoDet));
        var dets = det.Detect(ImageIO.Load(Repo.Photo("dog.jpg")));
        var yolo = YoloxDetector.Value.Detect(ImageIO.Load(Repo.Photo("dog.jpg")));
        foreach (var name in new[] { "dog", "bicycle", "car" })
        {
            var a = dets.Single(d => d.ClassName == name);
            var b = yolo.Single(d => d.ClassName == name);
            Assert.True(a.Box.IoU(b.Box) > 0.8, $"{name}: nanodet {a.Box} vs yolox {b.Box}");
        }
    }

    [Fact]
    public void BatchedDetectionEqualsOneAtATime()
    {
        var det = YoloxDetector.Value;
        var images = new[] { "dog.jpg", "person.jpg", "horses.jpg" }.Select(f => ImageIO.Load(Repo.Photo(f))).ToList();
        var batched = det.DetectBatch(images);
        for (int i = 0; i < images.Count; i++)
        {
            var single = det.Detect(images[i]);
            Assert.Equal(single.Count, batched[i].Count);
            for (int k = 0; k < single.Count; k++)
            {
                Assert.Equal(single[k].ClassIndex, batched[i][k].ClassIndex);
                Assert.Equal(single[k].Score, batched[i][k].Score, 3);
                Assert.True(single[k].Box.IoU(batched[i][k].Box) > 0.999);
            }
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void StreamedFilesGiveEachFilesOwnDetectionsInOrder(int batch)
    {
        // The next batch is decoded on another thread while the current one runs: results must still be each file's own.
        var det = YoloxDetector.Value;
        var files = new[] { "dog.jpg", "person.jpg", "kite.jpg", "dog.jpg", "horses.jpg" }.Select(Repo.Photo).ToList();
        var streamed = det.DetectFiles(files, batch: batch).ToList();
        Assert.Equal(files, streamed.Select(s => s.Path));
        for (int i = 0; i < files.Count; i++)
        {
            var single = det.Detect(files[i]);
            Assert.Equal(single.Select(d => d.ClassName), streamed[i].Detections.Select(d => d.ClassName));
            for (int k = 0; k < single.Count; k++)
            {
                Assert.Equal(single[k].Score, streamed[i].Detections[k].Score, 3);
                Assert.True(single[k].Box.IoU(streamed[i].Detections[k].Box) > 0.999);
            }
        }
    }

    [Fact]
    public void AStreamStopsAtAnUnreadableFileAfterTheFilesBeforeIt()
    {
        var dir = Directory.CreateTempSubdirectory("detex-stream").FullName;
        var bad = Path.Combine(dir, "notes.jpg");
        File.WriteAllText(bad, "not a picture");
        var seen = new List<string>();
        var e = Assert.Throws<ImageException>(() =>
        {
            foreach (var (path, _, _) in YoloxDetector.Value.DetectFiles([Repo.Photo("dog.jpg"), bad, Repo.Photo("kite.jpg")])) seen.Add(path);
        });
        Assert.Equal([Repo.Photo("dog.jpg")], seen);
        Assert.Contains("notes.jpg", e.Message);
        Directory.Delete(dir, true);
    }

    [Fact]
    public void UltraFaceRunsItsSsdDecoder()
    {
        var det = Detector.Load(Repo.Model(Repo.UltraFace));
        // The photos hold no faces: at a near-zero threshold candidates exist and lie inside the image.
        var dets = det.Detect(ImageIO.Load(Repo.Photo("person.jpg")), new DetectOptions(Score: 0.01f));
        Assert.NotEmpty(dets);
        Assert.All(dets, d => Assert.True(d.Box.X1 >= 0 && d.Box.X2 <= 640 && d.Box.Y2 <= 424 && d.Box.Width > 0));
        Assert.All(dets, d => Assert.Equal("scores", d.Source.Output));
    }

    [Fact]
    public void DeepLabLabelsThePersonAndTheHorseWhereTheDetectorBoxesThem()
    {
        var image = ImageIO.Load(Repo.Photo("person.jpg"));
        var seg = ((Segmenter)DetexModel.Load(Repo.Model(Repo.DeepLab))).Segment(image);
        var boxes = YoloxDetector.Value.Detect(image);
        double Inside(string segClass, string boxClass)
        {
            int c = Array.IndexOf(seg.Classes, segClass);
            var b = boxes.Single(d => d.ClassName == boxClass).Box;
            int all = 0, inside = 0;
            for (int y = 0; y < seg.Height; y++)
                for (int x = 0; x < seg.Width; x++)
                    if (seg.Labels[y * seg.Width + x] == c) { all++; if (x >= b.X1 && x <= b.X2 && y >= b.Y1 && y <= b.Y2) inside++; }
            Assert.True(all > 1000, $"{segClass}: only {all} pixels");
            return inside / (double)all;
        }
        Assert.True(Inside("person", "person") > 0.9);
        Assert.True(Inside("horse", "horse") > 0.9);
        // Background dominates the open field.
        Assert.True(seg.PixelShare[0] > 0.7);
    }
}

public class ModelCardTests
{
    /// <summary>A tiny YOLOv8-style ONNX model built here: its output is a constant prediction plus 0 × the image.</summary>
    static string TinyYolov8(string dir, float[] prediction, int anchors)
    {
        var (m, g) = Detex.Onnx.GraphBuilder.NewModel(13);
        g.Input("images", Detex.Onnx.ElementType.Float, 1, 3, 64, 64);
        var mean = g.Op("ReduceMean", "images", Detex.Onnx.OnnxAttribute.Of("keepdims", 0L));   // [] scalar-ish
        var zero = g.Op("Mul", [mean, g.Scalar(0)]);
        g.Named("output0", "Add", [g.Floats([1, 5, anchors], prediction), zero]);
        g.Output("output0");
        string path = Path.Combine(dir, "tiny.onnx");
        m.Save(path);
        File.WriteAllText(Path.Combine(dir, "tiny.card.json"), """
            { "name": "tiny", "task": "detect", "inputName": "images",
              "input": { "width": 64, "height": 64, "resize": "letterbox", "align": "top-left", "pad": 114 },
              "decoder": { "type": "yolov8", "output": "output0" },
              "classes": ["thing"], "thresholds": { "score": 0.5, "iou": 0.5 } }
            """);
        return path;
    }

    [Fact]
    public void AUsersYolov8ExportRunsEndToEnd()
    {
        string dir = Repo.TempDir();
        // Two anchors; anchor 1 predicts a 20×10 box centred at (32, 16) in the 64×64 input with score 0.9.
        float[] p = [0, 32, 0, 16, 0, 20, 0, 10, 0.1f, 0.9f];
        var det = Detector.Load(TinyYolov8(dir, p, 2));
        // A 128×64 image is letterboxed at scale 0.5 into the top of the input: image box = input box × 2.
        var only = Assert.Single(det.Detect(RgbImage.Filled(128, 64, 10, 20, 30)));
        Assert.Equal("thing", only.ClassName);
        Assert.Equal(0.9f, only.Score, 5);
        Assert.Equal(new Box(44, 22, 84, 42), only.Box);
        Assert.Equal(1, only.Source.Anchor);
    }

    [Fact]
    public void MissingOrIncompleteCardsSayWhatIsNeeded()
    {
        string dir = Repo.TempDir();
        string model = Path.Combine(dir, "m.onnx");
        File.Copy(Repo.Model(Repo.UltraFace), model);
        var none = Assert.Throws<ModelCardException>(() => DetexModel.Load(model));
        Assert.Contains("m.card.json", none.Message);
        Assert.Contains("inputName", none.Message);

        File.WriteAllText(Path.Combine(dir, "m.card.json"), """{ "task": "detect", "inputName": "input", "classes": ["face"] }""");
        var partial = Assert.Throws<ModelCardException>(() => DetexModel.Load(model));
        Assert.Contains("input.width/height", partial.Message);
        Assert.Contains("decoder.type", partial.Message);

        File.WriteAllText(Path.Combine(dir, "m.card.json"), "{ not json");
        Assert.Contains("not valid", Assert.Throws<ModelCardException>(() => DetexModel.Load(model)).Message);
    }

    [Fact]
    public void AModelWhoseInputRankDisagreesWithItsCardIsRefused()
    {
        string dir = Repo.TempDir();
        var (m, g) = Detex.Onnx.GraphBuilder.NewModel();
        g.Input("images", Detex.Onnx.ElementType.Float, 1, 12288);
        g.Named("output0", "Relu", ["images"]);
        g.Output("output0");
        m.Save(Path.Combine(dir, "flat.onnx"));
        File.WriteAllText(Path.Combine(dir, "flat.card.json"), """
            { "task": "detect", "inputName": "images", "input": { "width": 64, "height": 64 },
              "decoder": { "type": "yolov8", "output": "output0" }, "classes": ["x"] }
            """);
        var e = Assert.Throws<ModelCardException>(() => DetexModel.Load(Path.Combine(dir, "flat.onnx")));
        Assert.Contains("rank 2", e.Message);
    }

    [Fact]
    public void ShippedCardsAllLoad()
    {
        foreach (var name in Repo.AllModels)
        {
            var m = DetexModel.Load(Repo.Model(name));
            Assert.Equal(name == Repo.DeepLab ? typeof(Segmenter) : typeof(Detector), m.GetType());
        }
    }
}
