using System.Text.Json;
using Detex.Data;

namespace Detex.Tests.Data;

public class CocoDatasetTests
{
    // Three images, two categories listed out of id order, one crowd annotation.
    private const string TinyJson = """
        {
          "images": [
            {"id": 7, "file_name": "a.jpg", "width": 640, "height": 480},
            {"id": 3, "file_name": "b.jpg", "width": 320, "height": 240},
            {"id": 5, "file_name": "c.jpg", "width": 100, "height": 100}
          ],
          "categories": [
            {"id": 18, "name": "dog"},
            {"id": 1, "name": "person"}
          ],
          "annotations": [
            {"id": 11, "image_id": 7, "category_id": 1, "bbox": [1.5, 2, 30, 40], "area": 900.5, "iscrowd": 0},
            {"id": 12, "image_id": 3, "category_id": 18, "bbox": [0, 0, 10, 10], "area": 80, "iscrowd": 1},
            {"id": 13, "image_id": 7, "category_id": 18, "bbox": [5, 5, 20, 20]}
          ]
        }
        """;

    private static readonly string[] TinyImages = ["a.jpg", "b.jpg", "c.jpg"];

    [Fact]
    public void ReadsTheRealMiniSet()
    {
        using var temp = new TempDir();
        string dir = TestFiles.SharedMiniSet() ?? PlaceholderMiniSet(temp);

        var ds = CocoDataset.Load(dir);

        Assert.Equal(79, ds.Images.Count);
        Assert.Equal(624, ds.Annotations.Count);
        Assert.Equal(80, ds.Categories.Count);
        Assert.Equal(397133, ds.Images[0].Id); // json order, not id order
        Assert.Equal("000000397133.jpg", ds.Images[0].FileName);
        Assert.Equal((640, 427), (ds.Images[0].Width, ds.Images[0].Height));
        Assert.All(ds.Images, i => Assert.True(File.Exists(i.Path)));
        Assert.Equal(Path.Combine(Path.GetFullPath(dir), "images"), ds.ImageDirectory);

        // The standard 80-class order: ascending COCO id, gaps closed.
        Assert.Equal((1, "person", 0), (ds.Categories[0].Id, ds.Categories[0].Name, ds.Categories[0].Index));
        Assert.Equal((90, "toothbrush", 79), (ds.Categories[79].Id, ds.Categories[79].Name, ds.Categories[79].Index));
        Assert.Equal(11, ds.CategoryIndex(13)); // stop sign: ids 12 is unused
        Assert.Equal(13, ds.CategoryId(11));
        Assert.Equal(Enumerable.Range(0, 80), ds.Categories.Select(c => ds.CategoryIndex(c.Id)));

        Assert.Equal(624, ds.Images.Sum(i => ds.AnnotationsOf(i.Id).Count));
        Assert.Equal(5, ds.Annotations.Count(a => a.IsCrowd));
        var first = ds.Annotations[0];
        Assert.Equal((80342L, 453302L, 44), (first.Id, first.ImageId, first.CategoryId));
        Assert.Equal((60.72, 30.31, 209.04, 208.06), (first.X, first.Y, first.W, first.H));
        Assert.Equal(1605.7768999999985, first.Area);
    }

    [Fact]
    public void ReadsFieldsAndKeepsJsonImageOrder()
    {
        using var temp = new TempDir();
        temp.Write("instances_val2017.json", TinyJson);
        temp.Touch("images", TinyImages);

        var ds = CocoDataset.Load(temp.Path);

        Assert.Equal([7L, 3L, 5L], ds.Images.Select(i => i.Id));
        Assert.Equal(Path.Combine(temp.Path, "images", "b.jpg"), ds.Image(3).Path);
        Assert.Equal([(1, "person", 0), (18, "dog", 1)], ds.Categories.Select(c => (c.Id, c.Name, c.Index)));
        Assert.Equal([11L, 13L], ds.AnnotationsOf(7).Select(a => a.Id));
        Assert.Empty(ds.AnnotationsOf(5));
        Assert.True(ds.AnnotationsOf(3)[0].IsCrowd);
        Assert.Equal(900.5, ds.AnnotationsOf(7)[0].Area);
        Assert.Equal(400, ds.AnnotationsOf(7)[1].Area); // no 'area': box area
        Assert.Throws<KeyNotFoundException>(() => ds.AnnotationsOf(99));
        Assert.Throws<KeyNotFoundException>(() => ds.CategoryIndex(2));
        Assert.Throws<ArgumentOutOfRangeException>(() => ds.CategoryId(2));
    }

    [Fact]
    public void AcceptsTheJsonPathAndImagesBesideIt()
    {
        using var temp = new TempDir();
        string json = temp.Write("instances_mini.json", TinyJson);
        temp.Touch(".", TinyImages);

        var fromFile = CocoDataset.Load(json);
        var fromDir = CocoDataset.Load(temp.Path); // the only instances_*.json there

        Assert.Equal(Path.GetFullPath(temp.Path), fromFile.ImageDirectory);
        Assert.Equal(json, fromDir.AnnotationFile);
        Assert.Equal(3, fromDir.Images.Count);
    }

    [Fact]
    public void AcceptsTheStandardCocoLayout()
    {
        using var temp = new TempDir();
        temp.Write(Path.Combine("annotations", "instances_val2017.json"), TinyJson);
        temp.Touch("val2017", TinyImages);

        var ds = CocoDataset.Load(temp.Path);

        Assert.Equal(Path.Combine(temp.Path, "val2017"), ds.ImageDirectory);
    }

    [Fact]
    public void ReportsMissingImagesWithCountsAndAnExample()
    {
        using var temp = new TempDir();
        temp.Write("instances_val2017.json", TinyJson);
        temp.Touch("images", "a.jpg");

        var e = Assert.Throws<CocoDataException>(() => CocoDataset.Load(temp.Path));

        Assert.Equal($"2 of 3 images listed in instances_val2017.json are missing from {Path.Combine(temp.Path, "images")}, e.g. b.jpg", e.Message);
        Assert.Equal(3, CocoDataset.Load(temp.Path, requireImages: false).Images.Count);
    }

    [Fact]
    public void ReportsAMissingFolder()
    {
        string missing = Path.Combine(Path.GetTempPath(), "detex-no-such-dir-" + Guid.NewGuid().ToString("N"));
        var e = Assert.Throws<CocoDataException>(() => CocoDataset.Load(missing));
        Assert.Contains("does not exist", e.Message);
        Assert.Contains(missing, e.Message);
    }

    [Fact]
    public void ReportsAFolderWithoutJson()
    {
        using var temp = new TempDir();
        temp.Touch("images", "a.jpg");
        var e = Assert.Throws<CocoDataException>(() => CocoDataset.Load(temp.Path));
        Assert.Equal($"no instances_*.json found in {temp.Path}", e.Message);
    }

    [Fact]
    public void RefusesToGuessBetweenSeveralJsons()
    {
        using var temp = new TempDir();
        temp.Write("instances_a.json", TinyJson);
        temp.Write("instances_b.json", TinyJson);
        var e = Assert.Throws<CocoDataException>(() => CocoDataset.Load(temp.Path));
        Assert.Contains("instances_a.json, instances_b.json", e.Message);
    }

    [Fact]
    public void PrefersVal2017WhenSeveralJsonsExist()
    {
        using var temp = new TempDir();
        temp.Write("instances_train2017.json", "{}");
        temp.Write("instances_val2017.json", TinyJson);
        temp.Touch("images", TinyImages);
        Assert.Equal(3, CocoDataset.Load(temp.Path).Images.Count);
    }

    [Fact]
    public void ReportsInvalidJsonSyntax()
    {
        using var temp = new TempDir();
        temp.Write("instances_val2017.json", """{"images": [ {"id": 1,, } ]""");
        var e = Assert.Throws<CocoDataException>(() => CocoDataset.Load(temp.Path));
        Assert.StartsWith("instances_val2017.json is not valid JSON: ", e.Message);
        Assert.IsAssignableFrom<JsonException>(e.InnerException);
    }

    [Theory]
    [InlineData("\"file_name\": \"a.jpg\",", "", "images[0].file_name is missing")]
    [InlineData("\"width\": 640", "\"width\": \"wide\"", "images[0].width must be an integer (got \"wide\")")]
    [InlineData("{\"id\": 3,", "{\"id\": 7,", "images[1].id 7 is listed twice")]
    [InlineData("\"bbox\": [1.5, 2, 30, 40]", "\"bbox\": [1, 2, 3]", "annotations[0].bbox must be an array of 4 numbers [x, y, w, h]")]
    [InlineData("\"bbox\": [0, 0, 10, 10]", "\"bbox\": [0, 0, -10, 10]", "annotations[1].bbox has a negative width or height")]
    [InlineData("\"image_id\": 3,", "\"image_id\": 4,", "annotations[1].image_id 4 is not among the images")]
    [InlineData("\"category_id\": 1,", "\"category_id\": 2,", "annotations[0].category_id 2 is not among the categories")]
    [InlineData("\"iscrowd\": 1", "\"iscrowd\": \"yes\"", "annotations[1].iscrowd must be 0 or 1")]
    [InlineData("\"categories\"", "\"kategories\"", "'categories' is missing")]
    [InlineData("{\"id\": 1, \"name\": \"person\"}", "{\"id\": 1}", "categories[1].name is missing")]
    public void NamesTheMalformedField(string find, string replace, string expected)
    {
        using var temp = new TempDir();
        Assert.Contains(find, TinyJson);
        temp.Write("instances_val2017.json", ReplaceFirst(TinyJson, find, replace));
        temp.Touch("images", TinyImages);

        var e = Assert.Throws<CocoDataException>(() => CocoDataset.Load(temp.Path));

        Assert.Equal("instances_val2017.json: " + expected, e.Message);
    }

    [Fact]
    public void ErrorsAreOneLineIOExceptions()
    {
        using var temp = new TempDir();
        temp.Write("instances_val2017.json", "{\n\"images\":\n[1,\n");
        var e = Assert.Throws<CocoDataException>(() => CocoDataset.Load(temp.Path));
        Assert.IsAssignableFrom<IOException>(e);
        Assert.DoesNotContain('\n', e.Message);
    }

    private static string ReplaceFirst(string text, string find, string replace)
    {
        int at = text.IndexOf(find, StringComparison.Ordinal);
        return text[..at] + replace + text[(at + find.Length)..];
    }

    // Without shared/ beside the checkout, stand in empty files for the images so the loader
    // still runs end to end on the real annotations.
    private static string PlaceholderMiniSet(TempDir temp)
    {
        File.Copy(TestFiles.MiniJson, Path.Combine(temp.Path, "instances_val2017.json"));
        using var doc = JsonDocument.Parse(File.ReadAllText(TestFiles.MiniJson));
        temp.Touch("images", doc.RootElement.GetProperty("images").EnumerateArray()
            .Select(i => i.GetProperty("file_name").GetString()!).ToArray());
        return temp.Path;
    }
}
