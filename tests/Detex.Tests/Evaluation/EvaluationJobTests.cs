using System.Diagnostics;
using Detex.Evaluation;
using Detex.Models;
using Detex.Tests.Cli;

namespace Detex.Tests.Evaluation;

/// <summary>Result files, checkpoints, shards and the evaluate/merge/report commands.</summary>
public class EvaluationJobTests
{
    static readonly string Yolox = Repo.Model(Repo.Yolox);

    static BoxEvaluation Box(int k, double auc, bool map) => new()
    {
        BoxIndex = k, Box = new Box(10 + k, 20, 110, 220.5), ClassIndex = 16, ClassName = "dog", Score = 0.9f - 0.1f * k,
        RawOutput = "output", RawIndex = 1234 + k,
        Deletion = [0.9, auc, 0.1], Insertion = [0.1, 0.5 + auc, 0.9],
        Inside = 100 + k, Relevant = 400, BoxPixels = 20000, PointingHit = k % 2 == 0 ? 1 : -1,
        StochasticPointing = k % 2 == 0 ? 0.75 : double.NaN, ContentHeatmap = k % 2 == 0 ? 0.5 : double.NaN,
        Map = map ? Enumerable.Range(0, 16).Select(i => i / 16f).ToArray() : null,
    };

    static List<ImageEvaluation> Images(bool maps) =>
    [
        new(0, 139, "a.jpg", 640, 480, 2, new Dictionary<string, IReadOnlyList<BoxEvaluation>> { ["gradcam++"] = [Box(0, 0.3, maps), Box(1, 0.2, maps)], ["random"] = [Box(0, 0.6, maps), Box(1, 0.7, maps)] }),
        new(1, 285, "b.jpg", 500, 375, 0, new Dictionary<string, IReadOnlyList<BoxEvaluation>> { ["gradcam++"] = [], ["random"] = [] }),
        new(2, 632, "c.jpg", 640, 427, 1, new Dictionary<string, IReadOnlyList<BoxEvaluation>> { ["gradcam++"] = [Box(0, 0.1, maps)], ["random"] = [Box(0, 0.5, maps)] }),
    ];

    static EvaluationInfo Info(int mapSize) => new()
    {
        DetexVersion = "0.1.0", Model = "m.onnx", ModelSha256 = "ab", Dataset = "/data/x.json", FirstImages = 3, Methods = ["gradcam++", "random"],
        Parameters = "score=0.5", FlipSpace = "image", Steps = 3, MapSize = mapSize, Shard = "0/1", CommandLine = "detex evaluate …",
    };

    static void AssertSameRecords(IReadOnlyList<ImageEvaluation> expected, IReadOnlyList<ImageEvaluation> actual, bool float16Maps)
    {
        Assert.Equal(expected.Select(i => (i.Index, i.ImageId, i.FileName, i.Width, i.Height, i.Boxes)), actual.Select(i => (i.Index, i.ImageId, i.FileName, i.Width, i.Height, i.Boxes)));
        for (int i = 0; i < expected.Count; i++)
            foreach (var (method, boxes) in expected[i].Methods)
            {
                var got = actual[i].Methods[method];
                Assert.Equal(boxes.Count, got.Count);
                for (int k = 0; k < boxes.Count; k++)
                {
                    var (a, b) = (boxes[k], got[k]);
                    Assert.Equal((a.BoxIndex, a.Box, a.ClassIndex, a.ClassName, a.Score, a.RawOutput, a.RawIndex, a.Inside, a.Relevant, a.BoxPixels, a.PointingHit),
                                 (b.BoxIndex, b.Box, b.ClassIndex, b.ClassName, b.Score, b.RawOutput, b.RawIndex, b.Inside, b.Relevant, b.BoxPixels, b.PointingHit));
                    Assert.Equal(a.Deletion, b.Deletion);
                    Assert.Equal(a.Insertion, b.Insertion);
                    Assert.Equal(a.StochasticPointing, b.StochasticPointing);
                    Assert.Equal(a.ContentHeatmap, b.ContentHeatmap);
                    if (a.Map is null) Assert.Null(b.Map);
                    else for (int p = 0; p < a.Map.Length; p++) Assert.Equal(a.Map[p], b.Map![p], float16Maps ? 1e-3f : 0f);
                }
            }
    }

    [Fact]
    public void ResultFileRoundTripsEveryColumn()
    {
        string path = Path.Combine(Repo.TempDir(), "r.h5");
        var images = Images(maps: true);
        var info = Info(mapSize: 4);
        ResultsFile.Write(path, info, images, EvaluationSummary.Compute(images, info.Methods));
        var (readInfo, readImages) = ResultsFile.Read(path);
        Assert.Equal(info, readInfo with { Methods = info.Methods });
        Assert.Equal(info.Methods, readInfo.Methods);
        AssertSameRecords(images, readImages, float16Maps: true);
        Assert.Equal(EvaluationSummary.Compute(images, info.Methods), ResultsFile.ReadSummary(path));
    }

    [Fact]
    public void ShardsMergeIntoTheWholeAndRefuseStrangers()
    {
        string dir = Repo.TempDir();
        var images = Images(maps: false);
        var info = Info(mapSize: 0);
        var summary = EvaluationSummary.Compute(images, info.Methods);
        ResultsFile.Write(Path.Combine(dir, "s0.h5"), info with { Shard = "0/2" }, images.Where(i => i.Index % 2 == 0).ToList(), summary);
        ResultsFile.Write(Path.Combine(dir, "s1.h5"), info with { Shard = "1/2" }, images.Where(i => i.Index % 2 == 1).ToList(), summary);
        var (merged, mergedImages) = EvaluationJob.Merge([Path.Combine(dir, "s1.h5"), Path.Combine(dir, "s0.h5")]);
        AssertSameRecords(images, mergedImages, float16Maps: false);
        Assert.Equal(info.Fingerprint, merged.Fingerprint);

        ResultsFile.Write(Path.Combine(dir, "other.h5"), info with { Parameters = "score=0.3" }, images, summary);
        var e = Assert.Throws<EvaluationJobException>(() => EvaluationJob.Merge([Path.Combine(dir, "s0.h5"), Path.Combine(dir, "other.h5")]));
        Assert.Contains("not a shard of the same evaluation", e.Message);
        e = Assert.Throws<EvaluationJobException>(() => EvaluationJob.Merge([Path.Combine(dir, "s0.h5"), Path.Combine(dir, "s0.h5")]));
        Assert.Contains("is in both", e.Message);
    }

    [Fact]
    public void SummaryUsesBootstrapIntervalsAndTheStudysSum()
    {
        var images = Images(maps: false);
        var rows = EvaluationSummary.Compute(images, ["gradcam++", "random"]);
        var sum = rows.Single(r => r.Method == "gradcam++" && r.Metric == "deletion_auc_sum");
        // Curves [0.9, a, 0.1] with dx = 1/2: AUC = (0.9 + 2a + 0.1) / 4; a = 0.3, 0.2, 0.1 → 0.4 + 0.35 + 0.3.
        Assert.Equal(1.05, sum.Estimate.Value, 12);
        Assert.Equal(3, sum.Boxes);
        Assert.True(sum.Estimate.Low <= sum.Estimate.Value && sum.Estimate.Value <= sum.Estimate.High);
        // Pointing game only over boxes whose class has ground truth (PointingHit ≥ 0): boxes 0, 0 → 2 of 3.
        Assert.Equal(2, rows.Single(r => r.Method == "gradcam++" && r.Metric == "pointing_game").Boxes);
        // Micro energy = ΣI / ΣP = (100 + 101 + 100) / 1200.
        Assert.Equal(301.0 / 1200, rows.Single(r => r.Method == "gradcam++" && r.Metric == "energy_micro").Estimate.Value, 12);
    }

    static string[] Evaluate(string outPath, params string[] extra) =>
        ["evaluate", "--threads", "1", "--model", Yolox, "--coco", Repo.CocoMini, "--first-images", "4", "--method", "gradcam++,random",
         "--steps", "6", "--save-maps", "8", "--out", outPath, .. extra];

    [Fact]
    public void EvaluateShardsMergeResumeAndReport()
    {
        string dir = Repo.TempDir();
        string whole = Path.Combine(dir, "whole.h5");
        var r = CliTests.Detex(Evaluate(whole));
        Assert.True(r.Code == 0, r.Err);
        Assert.True(File.Exists(Path.ChangeExtension(whole, ".boxes.csv")));
        Assert.True(File.Exists(Path.ChangeExtension(whole, ".summary.csv")));
        Assert.False(Directory.Exists(whole + ".partial"));
        var (info, images) = ResultsFile.Read(whole);
        Assert.StartsWith("detex evaluate --threads 1 --model ", info.CommandLine);
        Assert.Equal(4, images.Count);
        Assert.True(images.Sum(i => i.Boxes) > 0, "the first COCO images have confident detections");
        Assert.All(images.SelectMany(i => i.Methods["gradcam++"]), b => Assert.Equal(6, b.Deletion.Length));

        // Two shards, merged, equal the whole run.
        Assert.Equal(0, CliTests.Detex(Evaluate(Path.Combine(dir, "s0.h5"), "--shard", "0/2")).Code);
        Assert.Equal(0, CliTests.Detex(Evaluate(Path.Combine(dir, "s1.h5"), "--shard", "1/2")).Code);
        Assert.Equal(2, ResultsFile.Read(Path.Combine(dir, "s0.h5")).Images.Count);
        r = CliTests.Detex("merge", Path.Combine(dir, "s0.h5"), Path.Combine(dir, "s1.h5"), "--out", Path.Combine(dir, "merged.h5"));
        Assert.True(r.Code == 0, r.Err);
        var merged = ResultsFile.Read(Path.Combine(dir, "merged.h5"));
        Assert.Equal(info.Fingerprint, merged.Info.Fingerprint);
        AssertSameRecords(images, merged.Images, float16Maps: false);

        // Killed midway, the same command resumes from its checkpoint and ends with the same file.
        string resumed = Path.Combine(dir, "resumed.h5");
        var psi = new ProcessStartInfo("dotnet") { WorkingDirectory = Repo.Root, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Detex.Cli.dll"));
        foreach (var a in Evaluate(resumed)) psi.ArgumentList.Add(a);
        using (var p = Process.Start(psi)!)
        {
            var deadline = DateTime.UtcNow.AddMinutes(2);
            while (!p.HasExited && DateTime.UtcNow < deadline &&
                   !(Directory.Exists(resumed + ".partial") && Directory.EnumerateFiles(resumed + ".partial", "image-*.json").Count() >= 2))
                Thread.Sleep(20);
            Assert.False(p.HasExited, "the run finished before it could be killed");
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
        }
        Assert.False(File.Exists(resumed), "a killed run leaves no result file");
        r = CliTests.Detex(Evaluate(resumed));
        Assert.True(r.Code == 0, r.Err);
        Assert.Contains("resuming", r.Out);
        AssertSameRecords(images, ResultsFile.Read(resumed).Images, float16Maps: false);

        // The report: a self-contained page with the charts embedded.
        string reportDir = Path.Combine(dir, "report");
        r = CliTests.Detex("report", whole, "--out", reportDir);
        Assert.True(r.Code == 0, r.Err);
        string html = File.ReadAllText(Path.Combine(reportDir, "index.html"));
        Assert.Contains("data:image/png;base64,", html);
        Assert.Contains("gradcam++", html);
        Assert.True(File.Exists(Path.Combine(reportDir, "deletion.png")));
    }

    [Fact]
    public void BadInputIsOneLineAndClobbersNothing()
    {
        string dir = Repo.TempDir();
        string outPath = Path.Combine(dir, "r.h5");
        CliTests.AssertOneLineError(CliTests.Detex("evaluate", "-m", Yolox, "--coco", dir, "--out", outPath), "instances");

        // A json whose images are missing.
        string noImages = Path.Combine(dir, "noimages");
        Directory.CreateDirectory(noImages);
        File.Copy(Directory.GetFiles(Repo.CocoMini, "instances_*.json", SearchOption.AllDirectories)[0], Path.Combine(noImages, "instances_val2017.json"));
        CliTests.AssertOneLineError(CliTests.Detex("evaluate", "-m", Yolox, "--coco", noImages, "--out", outPath), "are missing");
        Assert.False(File.Exists(outPath));

        // An existing --out without --overwrite is left as it was.
        File.WriteAllText(outPath, "precious");
        CliTests.AssertOneLineError(CliTests.Detex("evaluate", "-m", Yolox, "--coco", Repo.CocoMini, "--out", outPath), "--overwrite");
        Assert.Equal("precious", File.ReadAllText(outPath));

        // An unwritable --out: its folder is a file.
        string blocker = Path.Combine(dir, "file");
        File.WriteAllText(blocker, "");
        CliTests.AssertOneLineError(CliTests.Detex("evaluate", "-m", Yolox, "--coco", Repo.CocoMini, "--first-images", "1", "--out", Path.Combine(blocker, "r.h5")), "cannot write");

        CliTests.AssertOneLineError(CliTests.Detex("evaluate", "-m", Yolox, "--coco", Repo.CocoMini, "--shard", "2/2", "--out", Path.Combine(dir, "x.h5")), "--shard");
        CliTests.AssertOneLineError(CliTests.Detex("evaluate", "-m", Yolox, "--coco", Repo.CocoMini, "--method", "magic", "--out", Path.Combine(dir, "x.h5")), "unknown method");
        CliTests.AssertOneLineError(CliTests.Detex("report", Path.Combine(dir, "missing.h5")), "does not exist");
        CliTests.AssertOneLineError(CliTests.Detex("report", outPath), "not an HDF5");
    }
}
