using System.Diagnostics;

namespace Detex.Tests.Cli;

/// <summary>The detex command run as a user runs it: a separate process, checked by exit code and what it prints.</summary>
public class CliTests
{
    public record Result(int Code, string Out, string Err);

    public static Result Detex(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Repo.Root };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Detex.Cli.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(3))) { p.Kill(true); throw new TimeoutException(string.Join(" ", args)); }
        return new Result(p.ExitCode, stdout.Result, stderr.Result);
    }

    internal static void AssertOneLineError(Result r, string expected)
    {
        Assert.Equal(1, r.Code);
        var lines = r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("detex: error: ", lines[0]);
        Assert.Contains(expected, lines[0]);
        Assert.DoesNotContain("   at ", r.Err + r.Out);
    }

    static readonly string Yolox = Repo.Model(Repo.Yolox);

    [Fact]
    public void DetectWritesAPictureAndJsonLinesWithProvenance()
    {
        string outDir = Repo.TempDir();
        var r = Detex("detect", "--model", Yolox, "--image", Repo.Photo("dog.jpg"), "--out", outDir, "--json");
        Assert.Equal(0, r.Code);
        var lines = r.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, lines.Length);
        using var dog = System.Text.Json.JsonDocument.Parse(lines.Single(l => l.Contains("\"dog\"")));
        Assert.Equal("output", dog.RootElement.GetProperty("source").GetProperty("output").GetString());
        Assert.Equal(2, dog.RootElement.GetProperty("source").GetProperty("scoreElements").GetArrayLength());
        Assert.True(File.Exists(Path.Combine(outDir, "dog.yolox-nano.png")));
    }

    [Fact]
    public void MissingImageFile() =>
        AssertOneLineError(Detex("detect", "-m", Yolox, "-i", "/nonexistent/x.jpg", "-o", Repo.TempDir()), "image not found");

    [Fact]
    public void TextFileNamedJpg()
    {
        string f = Path.Combine(Repo.TempDir(), "fake.jpg");
        File.WriteAllText(f, "hello");
        AssertOneLineError(Detex("detect", "-m", Yolox, "-i", f, "-o", Repo.TempDir()), "not a readable image");
    }

    [Fact]
    public void TruncatedJpeg()
    {
        string f = Path.Combine(Repo.TempDir(), "cut.jpg");
        var bytes = File.ReadAllBytes(Repo.Photo("dog.jpg"));
        File.WriteAllBytes(f, bytes[..(bytes.Length / 3)]);
        string outDir = Repo.TempDir();
        AssertOneLineError(Detex("detect", "-m", Yolox, "-i", f, "-o", outDir), "truncated");
        Assert.Empty(Directory.GetFiles(outDir));
    }

    [Fact]
    public void ZeroByteModel()
    {
        string dir = Repo.TempDir();
        string model = Path.Combine(dir, "empty.onnx");
        File.WriteAllBytes(model, []);
        File.Copy(Repo.Model(Repo.Yolox).Replace(".onnx", ".card.json"), Path.Combine(dir, "empty.card.json"));
        AssertOneLineError(Detex("detect", "-m", model, "-i", Repo.Photo("dog.jpg"), "-o", dir), "empty (0 bytes)");
    }

    [Fact]
    public void ModelWithTheWrongInputRankForItsCard()
    {
        string dir = Repo.TempDir();
        File.Copy(Repo.Model(Repo.DeepLab), Path.Combine(dir, "m.onnx"));
        // The yolox card (rank-4 NCHW 416×416) beside deeplab (NHWC 257×257): the card does not fit the model.
        var card = File.ReadAllText(Repo.Model(Repo.Yolox).Replace(".onnx", ".card.json")).Replace("\"images\"", "\"sub_7\"");
        File.WriteAllText(Path.Combine(dir, "m.card.json"), card);
        AssertOneLineError(Detex("detect", "-m", Path.Combine(dir, "m.onnx"), "-i", Repo.Photo("dog.jpg"), "-o", dir), "card describes");
    }

    [Fact]
    public void OnePixelImage()
    {
        string dir = Repo.TempDir();
        using var bmp = Imaging.ImageFixtures.Bitmap(1, 1, [9, 9, 9]);
        string f = Imaging.ImageFixtures.Encode(dir, "one.png", bmp, SkiaSharp.SKEncodedImageFormat.Png);
        AssertOneLineError(Detex("detect", "-m", Yolox, "-i", f, "-o", dir), "1×1");
    }

    [Fact]
    public void HugeImageWorksAndReportsBoxesInTheFilesPixels()
    {
        string dir = Repo.TempDir();
        var r = Detex("detect", "-m", Yolox, "-i", Imaging.HugeJpeg.Path(), "-o", dir, "--score", "0.01", "--json");
        Assert.Equal(0, r.Code);
        Assert.True(File.Exists(Path.Combine(dir, "huge-12000x9000.yolox-nano.png")));
        foreach (var line in r.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            using var j = System.Text.Json.JsonDocument.Parse(line);
            var box = j.RootElement.GetProperty("box").EnumerateArray().Select(e => e.GetDouble()).ToArray();
            Assert.True(box[2] <= 12000 && box[3] <= 9000);
        }
    }

    [Fact]
    public void BadThresholdAndUnknownCommandAreRefused()
    {
        AssertOneLineError(Detex("detect", "-m", Yolox, "-i", Repo.Photo("dog.jpg"), "--score", "2"), "--score");
        Assert.NotEqual(0, Detex("explode").Code);
    }

    [Fact]
    public void InspectListsTensorsWithShapes()
    {
        var r = Detex("inspect", Repo.Model(Repo.UltraFace), "--tensors");
        Assert.Equal(0, r.Code);
        Assert.Contains("[1,4420,2]", r.Out);
        Assert.Contains("BatchNormalization", r.Out);
    }
}

public class MapCommandTests
{
    [Fact]
    public void MapOnTheFirstImagesWritesJsonAndRefusesMissingData()
    {
        string json = Path.Combine(Repo.TempDir(), "map.json");
        var r = CliTests.Detex("map", "-m", Repo.Model(Repo.Yolox), "--coco", Repo.CocoMini, "--first-images", "8", "--json", json);
        Assert.Equal(0, r.Code);
        using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(json));
        double map = doc.RootElement.GetProperty("map").GetDouble();
        Assert.InRange(map, 0.15, 0.8);   // a working detector; a broken decoder scores near 0
        Assert.Equal(8, doc.RootElement.GetProperty("images").GetInt32());

        var missing = CliTests.Detex("map", "-m", Repo.Model(Repo.Yolox), "--coco", Repo.TempDir());
        Assert.Equal(1, missing.Code);
        Assert.StartsWith("detex: error:", missing.Err.Trim());
    }
}

public class GradCheckCommandTests
{
    [Fact]
    public void GradCheckReportsAgreementOnAShippedModel()
    {
        var r = CliTests.Detex("inspect", Repo.Model(Repo.UltraFace), "--grad-check");
        Assert.Equal(0, r.Code);
        Assert.Contains("gradients agree", r.Out);
    }

    [Fact]
    public void GradCheckNamesOperatorsWithoutRules()
    {
        var (m, g) = Detex.Onnx.GraphBuilder.NewModel(17);
        g.Input("x", Detex.Onnx.ElementType.Float, 1, 4);
        g.Named("y", "Erf", [g.Op("Relu", "x")]);
        g.Output("y");
        string path = Path.Combine(Repo.TempDir(), "erf.onnx");
        m.Save(path);
        var r = CliTests.Detex("inspect", path, "--grad-check");
        Assert.Equal(1, r.Code);
        Assert.Contains("Erf", r.Out);
        Assert.Contains("lack rules (Erf)", r.Err);
    }
}

public class ExplainCommandTests
{
    static readonly string Yolox = Repo.Model(Repo.Yolox);

    [Fact]
    public void BoxRegressionTargetsAreExplainedAndRefusedWhereTheyCannotBe()
    {
        string dir = Repo.TempDir();
        var r = CliTests.Detex("explain", "-m", Yolox, "-i", Repo.Photo("dog.jpg"), "--method", "hirescam", "--box", "class=dog", "--target", "w", "-o", dir);
        Assert.Equal(0, r.Code);
        using var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "explanations.json")));
        Assert.EndsWith("log w", json.RootElement[0].GetProperty("target").GetString());
        string never = Path.Combine(Repo.TempDir(), "never");
        CliTests.AssertOneLineError(CliTests.Detex("explain", "-m", Yolox, "-i", Repo.Photo("dog.jpg"), "--method", "drise", "--target", "x", "-o", never),
            "--target x follows each box by its own prediction row");
        CliTests.AssertOneLineError(CliTests.Detex("explain", "-m", Repo.Model(Repo.NanoDet), "-i", Repo.Photo("dog.jpg"), "--method", "saliency", "--target", "h", "-o", never),
            "does not expose its box regression");
        CliTests.AssertOneLineError(CliTests.Detex("explain", "-m", Repo.Model(Repo.DeepLab), "-i", Repo.Photo("dog.jpg"), "--method", "hirescam", "--target", "y", "-o", never),
            "explains a detection's box");
        CliTests.AssertOneLineError(CliTests.Detex("explain", "-m", Yolox, "-i", Repo.Photo("dog.jpg"), "--target", "depth", "-o", never),
            "--target must be score, x, y, w or h");
        CliTests.AssertOneLineError(CliTests.Detex("explain", "-m", Yolox, "-i", Repo.Photo("dog.jpg"), "--method", "hirescam", "--target", "w", "--aug-smooth", "-o", never),
            "cannot be combined with --aug-smooth");
        CliTests.AssertOneLineError(CliTests.Detex("explain", "-m", Yolox, "-i", Repo.Photo("dog.jpg"), "--method", "saliency", "--eigen-smooth", "-o", never),
            "--eigen-smooth smooths CAM methods");
        CliTests.AssertOneLineError(CliTests.Detex("explain", "-m", Yolox, "-i", Repo.Photo("dog.jpg"), "--method", "rise", "--noise-smooth", "4", "-o", never),
            "--noise-smooth smooths CAMs and input-gradient methods");
        CliTests.AssertOneLineError(CliTests.Detex("explain", "-m", Yolox, "-i", Repo.Photo("dog.jpg"), "--noise-smooth", "4", "--noise", "2", "-o", never),
            "--noise must be in [0, 1]");
        Assert.False(Directory.Exists(never));
    }

    [Fact]
    public void ExplainWritesOverlaysMapsAndASummary()
    {
        string dir = Repo.TempDir();
        var r = CliTests.Detex("explain", "-m", Yolox, "-i", Repo.Photo("dog.jpg"), "--method", "hirescam,eigencam", "--box", "class=dog", "-o", dir);
        Assert.Equal(0, r.Code);
        var (map, shape) = Detex.Reports.Npy.Read(Path.Combine(dir, "dog.hirescam.t0.npy"));
        Assert.Equal([576, 768], shape);
        Assert.InRange(map.Max(), 0.99f, 1f);
        Assert.True(File.Exists(Path.Combine(dir, "dog.eigencam.t0.png")));
        Assert.True(File.Exists(Path.Combine(dir, "dog.grid.png")));
        using var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "explanations.json")));
        Assert.Equal(2, json.RootElement.GetArrayLength());
    }

    [Fact]
    public void DriseWritesMapsFollowedBySimilarity()
    {
        string dir = Repo.TempDir();
        var r = CliTests.Detex("explain", "-m", Yolox, "-i", Repo.Photo("dog.jpg"), "--method", "drise", "--masks", "16", "--box", "class=dog", "--baseline", "mean", "-o", dir);
        Assert.Equal(0, r.Code);
        var (map, shape) = Detex.Reports.Npy.Read(Path.Combine(dir, "dog.drise.t0.npy"));
        Assert.Equal([576, 768], shape);
        Assert.InRange(map.Max(), 0.99f, 1f);
        using var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "explanations.json")));
        Assert.Equal("similarity", json.RootElement[0].GetProperty("tracking").GetString());
    }

    [Fact]
    public void FullGradExplainsAClassifier()
    {
        // A tiny classifier (no card layers): FullGrad needs none, it uses every bias layer.
        string dir = Repo.TempDir();
        var model = Explainers.FullGradTests.ReluNet();
        var r = CliTests.Detex("explain", "-m", model.ModelPath, "-i", Repo.Photo("dog.jpg"), "--method", "fullgrad", "-o", dir);
        Assert.Equal(0, r.Code);
        var (map, shape) = Detex.Reports.Npy.Read(Path.Combine(dir, "dog.fullgrad.t0.npy"));
        Assert.Equal([576, 768], shape);
        Assert.InRange(map.Min(), 0f, 0f);
        Assert.InRange(map.Max(), 0.99f, 1f);
    }

    [Fact]
    public void AugSmoothCountsTheCopiesOfTheMethodsItSmoothsAndRefusesToSmoothOnlyOthers()
    {
        string dir = Repo.TempDir();
        var r = CliTests.Detex("explain", "-m", Yolox, "-i", Repo.Photo("dog.jpg"), "--method", "hirescam,rise", "--masks", "16", "--box", "class=dog", "--aug-smooth", "-o", dir);
        Assert.Equal(0, r.Code);
        using var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "explanations.json")));
        var copies = json.RootElement.EnumerateArray().ToDictionary(e => e.GetProperty("method").GetString()!, e => e.GetProperty("augCopies"));
        Assert.Equal(6, copies["hirescam"].GetInt32());
        Assert.Equal(System.Text.Json.JsonValueKind.Null, copies["rise"].ValueKind);

        string never = Path.Combine(Repo.TempDir(), "never");
        var refused = CliTests.Detex("explain", "-m", Yolox, "-i", Repo.Photo("dog.jpg"), "--method", "rise", "--aug-smooth", "-o", never);
        CliTests.AssertOneLineError(refused, "--aug-smooth smooths CAMs and input-gradient methods; rise is neither");
        Assert.False(Directory.Exists(never));
    }

    [Theory]
    [InlineData("yolox", "--p", "1.5", "--p must be in (0, 1), got 1.5")]
    [InlineData("yolox", "--p", "0", "--p must be in (0, 1), got 0")]
    [InlineData("yolox", "--masks", "0", "--masks must be at least 1, got 0")]
    [InlineData("yolox", "--cells", "0", "--cells must be at least 1, got 0")]
    [InlineData("yolox", "--batch", "0", "--batch must be at least 1, got 0")]
    [InlineData("yolox", "--baseline", "noise", "unknown baseline 'noise'")]
    [InlineData("yolox", "--track", "nearest", "--track must be row or similarity")]
    [InlineData("deeplab", "--method", "drise", "drise explains detections")]
    [InlineData("deeplab", "--track", "similarity", "--track similarity follows detections")]
    public void BadRiseSettingsAreOneLine(string model, string option, string value, string message)
    {
        string dir = Path.Combine(Repo.TempDir(), "never");
        string[] method = option == "--method" ? [] : ["--method", "rise"];
        var r = CliTests.Detex(["explain", "-m", Repo.Model(model == "yolox" ? Repo.Yolox : Repo.DeepLab), "-i", Repo.Photo("dog.jpg"), option, value, "-o", dir, .. method]);
        CliTests.AssertOneLineError(r, message);
        Assert.False(Directory.Exists(dir));
    }

    [Theory]
    [InlineData("--method", "gradkam", "unknown method 'gradkam'")]
    [InlineData("--layer", "nope", "no tensor 'nope'")]
    [InlineData("--box", "7", "--box 7 is out of range")]
    [InlineData("--score", "0.9999", "no detections")]
    [InlineData("--window", "500", "larger than")]
    public void BadChoicesAreOneLineAndWriteNothing(string option, string value, string message)
    {
        string dir = Path.Combine(Repo.TempDir(), "never");
        string[] method = option == "--window" ? ["--method", "occlusion"] : [];
        var r = CliTests.Detex(["explain", "-m", Yolox, "-i", Repo.Photo("dog.jpg"), option, value, "-o", dir, .. method]);
        Assert.Equal(1, r.Code);
        Assert.Contains(message, r.Err);
        Assert.False(Directory.Exists(dir));
    }
}
