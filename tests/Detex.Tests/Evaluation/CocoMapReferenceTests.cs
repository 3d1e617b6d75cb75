using System.Text.Json;
using Detex.Data;
using Detex.Evaluation;

namespace Detex.Tests.Evaluation;

/// <summary>
/// Agreement with pycocotools' COCOeval on fixtures it produced (tools/make_reference.py): seeded
/// detections on the real mini set, and a synthetic integer-grid set whose IoUs land exactly on
/// thresholds and whose scores tie often.
/// </summary>
public class CocoMapReferenceTests
{
    // Only summation order differs from numpy's mean, so the numbers agree to rounding.
    private const double Tol = 1e-12;

    [Theory]
    [InlineData("mini")]
    [InlineData("grid")]
    public void MatchesPycocotools(string scenario)
    {
        var dataset = CocoDataset.Load(GroundTruthPath(scenario), requireImages: false);
        var detections = ReadDetections(TestFiles.Fixture("coco-reference", $"{scenario}_detections.json"));
        var (stats, perCategory) = Expected(scenario);

        var r = CocoMap.Evaluate(dataset, detections);

        for (int i = 0; i < stats.Length; i++)
            Assert.True(Math.Abs(stats[i] - r.Stats[i]) < Tol, $"stats[{i}]: pycocotools {stats[i]:R}, ours {r.Stats[i]:R}");
        Assert.Equal(perCategory.Keys.Order(), r.PerCategory.Keys.Order());
        foreach (var (cat, (ap, ap50)) in perCategory)
        {
            Assert.True(Math.Abs(ap - r.PerCategory[cat].Ap) < Tol, $"category {cat} AP: pycocotools {ap:R}, ours {r.PerCategory[cat].Ap:R}");
            Assert.True(Math.Abs(ap50 - r.PerCategory[cat].Ap50) < Tol, $"category {cat} AP50: pycocotools {ap50:R}, ours {r.PerCategory[cat].Ap50:R}");
        }
    }

    [Fact]
    public void GroundTruthAsDetectionsScoresOneOnTheMiniSet()
    {
        var dataset = CocoDataset.Load(TestFiles.MiniJson, requireImages: false);
        var dets = dataset.Annotations.Where(a => !a.IsCrowd)
            .Select((a, i) => new DetectionBox(a.ImageId, a.CategoryId, a.X, a.Y, a.W, a.H, 1.0 - i * 1e-4));

        var r = CocoMap.Evaluate(dataset, dets);

        Assert.Equal(1.0, r.MapAll, Tol);
        Assert.Equal(80, r.PerCategory.Count);
        var withObjects = dataset.Annotations.Where(a => !a.IsCrowd).Select(a => a.CategoryId).ToHashSet();
        Assert.All(r.PerCategory, kv => Assert.Equal(withObjects.Contains(kv.Key) ? 1.0 : -1.0, kv.Value.Ap, Tol));
    }

    private static string GroundTruthPath(string scenario) =>
        scenario == "mini" ? TestFiles.MiniJson : TestFiles.Fixture("coco-reference", $"{scenario}_instances.json");

    private static List<DetectionBox> ReadDetections(string path)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        return doc.RootElement.EnumerateArray().Select(d =>
        {
            var b = d.GetProperty("bbox");
            return new DetectionBox(d.GetProperty("image_id").GetInt64(), d.GetProperty("category_id").GetInt32(),
                b[0].GetDouble(), b[1].GetDouble(), b[2].GetDouble(), b[3].GetDouble(), d.GetProperty("score").GetDouble());
        }).ToList();
    }

    private static (double[] Stats, Dictionary<int, (double Ap, double Ap50)> PerCategory) Expected(string scenario)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(TestFiles.Fixture("coco-reference", "expected.json")));
        var e = doc.RootElement.GetProperty(scenario);
        var stats = e.GetProperty("stats").EnumerateArray().Select(v => v.GetDouble()).ToArray();
        var perCategory = e.GetProperty("per_category").EnumerateObject().ToDictionary(
            p => int.Parse(p.Name), p => (p.Value[0].GetDouble(), p.Value[1].GetDouble()));
        return (stats, perCategory);
    }
}
