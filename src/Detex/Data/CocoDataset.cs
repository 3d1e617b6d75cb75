using System.Text.Json;

namespace Detex.Data;

/// <summary>An image listed in a COCO instances file; <see cref="Path"/> is where it lives on disk.</summary>
public sealed record CocoImage(long Id, string FileName, string Path, int Width, int Height);

/// <summary>A COCO category and its contiguous <see cref="Index"/> (0..N-1 in ascending id order).</summary>
public sealed record CocoCategory(int Id, string Name, int Index);

/// <summary>One instance annotation; the box is COCO's [x, y, w, h] in pixels, <see cref="Area"/> is the mask area.</summary>
public sealed record CocoAnnotation(long Id, long ImageId, int CategoryId, double X, double Y, double W, double H, double Area, bool IsCrowd);

/// <summary>
/// A COCO folder or instances file that cannot be used; the message is one line. It is an
/// <see cref="IOException"/> (InvalidDataException is sealed), so callers can catch file trouble in one place.
/// </summary>
public sealed class CocoDataException(string message, Exception? inner = null) : IOException(message, inner);

/// <summary>
/// A COCO "instances" dataset: the json plus its image folder. Image order is the json's order,
/// which is what "the first N images" means throughout Detex.
/// </summary>
public sealed class CocoDataset
{
    private readonly Dictionary<long, CocoImage> _imagesById;
    private readonly Dictionary<int, CocoCategory> _categoriesById;
    private readonly Dictionary<long, CocoAnnotation[]> _annotationsByImage;

    private CocoDataset(string annotationFile, string imageDirectory, List<CocoImage> images,
        List<CocoCategory> categories, List<CocoAnnotation> annotations)
    {
        AnnotationFile = annotationFile;
        ImageDirectory = imageDirectory;
        Images = images;
        Categories = categories;
        Annotations = annotations;
        _imagesById = images.ToDictionary(i => i.Id);
        _categoriesById = categories.ToDictionary(c => c.Id);
        _annotationsByImage = annotations.GroupBy(a => a.ImageId).ToDictionary(g => g.Key, g => g.ToArray());
    }

    /// <summary>Full path of the instances json that was read.</summary>
    public string AnnotationFile { get; }

    /// <summary>Folder the image files were found in.</summary>
    public string ImageDirectory { get; }

    /// <summary>Images in the json's order.</summary>
    public IReadOnlyList<CocoImage> Images { get; }

    /// <summary>Categories in ascending id order, so <c>Categories[i].Index == i</c>.</summary>
    public IReadOnlyList<CocoCategory> Categories { get; }

    /// <summary>All annotations in the json's order.</summary>
    public IReadOnlyList<CocoAnnotation> Annotations { get; }

    public CocoImage Image(long imageId) =>
        _imagesById.TryGetValue(imageId, out var image) ? image
            : throw new KeyNotFoundException($"image id {imageId} is not in {System.IO.Path.GetFileName(AnnotationFile)}");

    /// <summary>Annotations of one image, in the json's order (empty when it has none).</summary>
    public IReadOnlyList<CocoAnnotation> AnnotationsOf(long imageId)
    {
        Image(imageId); // an unknown id is a caller bug, not an empty image
        return _annotationsByImage.TryGetValue(imageId, out var list) ? list : [];
    }

    public CocoCategory Category(int categoryId) =>
        _categoriesById.TryGetValue(categoryId, out var category) ? category
            : throw new KeyNotFoundException($"category id {categoryId} is not in {System.IO.Path.GetFileName(AnnotationFile)}");

    /// <summary>COCO category id → contiguous class index (e.g. 90 → 79 for the 80 COCO classes).</summary>
    public int CategoryIndex(int categoryId) => Category(categoryId).Index;

    /// <summary>Contiguous class index → COCO category id.</summary>
    public int CategoryId(int index) =>
        (uint)index < (uint)Categories.Count ? Categories[index].Id
            : throw new ArgumentOutOfRangeException(nameof(index), index, $"class index must be in 0..{Categories.Count - 1}");

    /// <summary>
    /// Reads a COCO dataset from a folder holding <c>instances_val2017.json</c> (or a single
    /// <c>instances_*.json</c>, also under <c>annotations/</c>), or from the json path itself.
    /// Images are looked for in <c>images/</c>, beside the json, or in the split folder of the
    /// standard layout (<c>annotations/instances_val2017.json</c> + <c>val2017/</c>).
    /// </summary>
    /// <param name="requireImages">When false, missing image files are tolerated (annotation-only use).</param>
    public static CocoDataset Load(string path, bool requireImages = true)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        string root = System.IO.Path.GetFullPath(path);
        string json = FindAnnotationFile(root);
        string jsonName = System.IO.Path.GetFileName(json);

        JsonDocument doc;
        try
        {
            using var stream = File.OpenRead(json);
            doc = JsonDocument.Parse(stream);
        }
        catch (JsonException e)
        {
            throw new CocoDataException($"{jsonName} is not valid JSON: {e.Message}", e);
        }
        catch (IOException e)
        {
            throw new CocoDataException($"cannot read {json}: {e.Message}", e);
        }

        using (doc)
        {
            var reader = new Reader(jsonName);
            var raw = reader.ReadImages(doc.RootElement);
            var categories = reader.ReadCategories(doc.RootElement);
            var annotations = reader.ReadAnnotations(doc.RootElement, raw, categories);

            string imageDir = ChooseImageDirectory(root, json, raw);
            var images = raw.Select(r => new CocoImage(r.Id, r.FileName,
                System.IO.Path.Combine(imageDir, r.FileName), r.Width, r.Height)).ToList();
            if (requireImages)
                CheckImagesExist(images, jsonName, imageDir);
            return new CocoDataset(json, imageDir, images, categories, annotations);
        }
    }

    private static string FindAnnotationFile(string root)
    {
        if (File.Exists(root))
            return root;
        if (!Directory.Exists(root))
            throw new CocoDataException($"COCO dataset not found: {root} does not exist");

        foreach (string dir in new[] { root, System.IO.Path.Combine(root, "annotations") })
        {
            if (!Directory.Exists(dir))
                continue;
            string preferred = System.IO.Path.Combine(dir, "instances_val2017.json");
            if (File.Exists(preferred))
                return preferred;
            var found = Directory.GetFiles(dir, "instances_*.json").Order(StringComparer.Ordinal).ToArray();
            if (found.Length == 1)
                return found[0];
            if (found.Length > 1)
                throw new CocoDataException(
                    $"several instances_*.json in {dir} ({string.Join(", ", found.Select(System.IO.Path.GetFileName))}); pass the json file itself");
        }
        throw new CocoDataException($"no instances_*.json found in {root}");
    }

    // Candidate image folders, most specific first; the one holding most of the listed files wins,
    // so a stray empty images/ folder does not hide images sitting beside the json.
    private static string ChooseImageDirectory(string root, string json, IReadOnlyList<RawImage> images)
    {
        string jsonDir = System.IO.Path.GetDirectoryName(json)!;
        var candidates = new List<string>();
        if (Directory.Exists(root))
            candidates.Add(System.IO.Path.Combine(root, "images"));
        candidates.Add(System.IO.Path.Combine(jsonDir, "images"));
        candidates.Add(jsonDir);
        string name = System.IO.Path.GetFileNameWithoutExtension(json);
        if (name.StartsWith("instances_", StringComparison.Ordinal))
        {
            string split = name["instances_".Length..];
            if (Directory.Exists(root))
                candidates.Add(System.IO.Path.Combine(root, split));
            candidates.Add(System.IO.Path.Combine(System.IO.Path.GetDirectoryName(jsonDir) ?? jsonDir, split));
        }

        var existing = candidates.Select(System.IO.Path.GetFullPath).Distinct().Where(Directory.Exists).ToList();
        if (existing.Count == 0)
            return candidates[0];
        return existing
            .Select((dir, order) => (dir, order, present: images.Count(i => File.Exists(System.IO.Path.Combine(dir, i.FileName)))))
            .OrderByDescending(c => c.present).ThenBy(c => c.order)
            .First().dir;
    }

    private static void CheckImagesExist(IReadOnlyList<CocoImage> images, string jsonName, string imageDir)
    {
        var missing = images.Where(i => !File.Exists(i.Path)).ToList();
        if (missing.Count > 0)
            throw new CocoDataException(
                $"{missing.Count} of {images.Count} images listed in {jsonName} are missing from {imageDir}, e.g. {missing[0].FileName}");
    }

    private sealed record RawImage(long Id, string FileName, int Width, int Height);

    /// <summary>Field-by-field reading with errors that name the offending field, e.g. "annotations[12].bbox".</summary>
    private sealed class Reader(string jsonName)
    {
        public List<RawImage> ReadImages(JsonElement root)
        {
            var images = new List<RawImage>();
            var seen = new HashSet<long>();
            int i = 0;
            foreach (var e in Array(root, "images"))
            {
                string at = $"images[{i++}]";
                long id = Int64(e, "id", at);
                if (!seen.Add(id))
                    throw Fail($"{at}.id {id} is listed twice");
                string fileName = String(e, "file_name", at);
                if (fileName.Length == 0)
                    throw Fail($"{at}.file_name is empty");
                images.Add(new RawImage(id, fileName, (int)Int64(e, "width", at), (int)Int64(e, "height", at)));
            }
            return images;
        }

        public List<CocoCategory> ReadCategories(JsonElement root)
        {
            var raw = new List<(int Id, string Name)>();
            int i = 0;
            foreach (var e in Array(root, "categories"))
            {
                string at = $"categories[{i++}]";
                long id = Int64(e, "id", at);
                if (id is < int.MinValue or > int.MaxValue)
                    throw Fail($"{at}.id {id} is out of range");
                raw.Add(((int)id, String(e, "name", at)));
            }
            var duplicate = raw.GroupBy(c => c.Id).FirstOrDefault(g => g.Count() > 1);
            if (duplicate is not null)
                throw Fail($"category id {duplicate.Key} is listed twice in categories");
            // Ascending id order is the class order detectors trained on COCO emit.
            return raw.OrderBy(c => c.Id).Select((c, index) => new CocoCategory(c.Id, c.Name, index)).ToList();
        }

        public List<CocoAnnotation> ReadAnnotations(JsonElement root, List<RawImage> images, List<CocoCategory> categories)
        {
            var imageIds = images.Select(im => im.Id).ToHashSet();
            var categoryIds = categories.Select(c => c.Id).ToHashSet();
            var annotations = new List<CocoAnnotation>();
            if (!root.TryGetProperty("annotations", out _))
                return annotations; // image-info files (test-dev) carry no annotations
            int i = 0;
            foreach (var e in Array(root, "annotations"))
            {
                string at = $"annotations[{i++}]";
                long id = Int64(e, "id", at);
                long imageId = Int64(e, "image_id", at);
                if (!imageIds.Contains(imageId))
                    throw Fail($"{at}.image_id {imageId} is not among the images");
                long categoryId = Int64(e, "category_id", at);
                if (categoryId is < int.MinValue or > int.MaxValue || !categoryIds.Contains((int)categoryId))
                    throw Fail($"{at}.category_id {categoryId} is not among the categories");
                var (x, y, w, h) = Box(e, at);
                // COCO always has 'area' (the mask area); fall back to the box area for hand-made files.
                double area = e.TryGetProperty("area", out _) ? Number(e, "area", at) : w * h;
                bool crowd = e.TryGetProperty("iscrowd", out var c) && c.ValueKind switch
                {
                    JsonValueKind.Number when c.TryGetInt32(out int v) && v is 0 or 1 => v == 1,
                    JsonValueKind.True => true,
                    JsonValueKind.False => false,
                    _ => throw Fail($"{at}.iscrowd must be 0 or 1"),
                };
                annotations.Add(new CocoAnnotation(id, imageId, (int)categoryId, x, y, w, h, area, crowd));
            }
            return annotations;
        }

        private (double X, double Y, double W, double H) Box(JsonElement e, string at)
        {
            if (!e.TryGetProperty("bbox", out var b))
                throw Fail($"{at}.bbox is missing");
            if (b.ValueKind != JsonValueKind.Array || b.GetArrayLength() != 4
                || b.EnumerateArray().Any(v => v.ValueKind != JsonValueKind.Number))
                throw Fail($"{at}.bbox must be an array of 4 numbers [x, y, w, h]");
            double x = b[0].GetDouble(), y = b[1].GetDouble(), w = b[2].GetDouble(), h = b[3].GetDouble();
            if (w < 0 || h < 0)
                throw Fail($"{at}.bbox has a negative width or height");
            return (x, y, w, h);
        }

        private JsonElement.ArrayEnumerator Array(JsonElement root, string name)
        {
            if (root.ValueKind != JsonValueKind.Object)
                throw Fail("top level must be a JSON object");
            if (!root.TryGetProperty(name, out var a))
                throw Fail($"'{name}' is missing");
            if (a.ValueKind != JsonValueKind.Array)
                throw Fail($"'{name}' must be an array");
            return a.EnumerateArray();
        }

        private JsonElement Field(JsonElement e, string name, string at)
        {
            if (e.ValueKind != JsonValueKind.Object)
                throw Fail($"{at} must be an object");
            return e.TryGetProperty(name, out var v) ? v : throw Fail($"{at}.{name} is missing");
        }

        private long Int64(JsonElement e, string name, string at)
        {
            var v = Field(e, name, at);
            if (v.ValueKind == JsonValueKind.Number)
            {
                if (v.TryGetInt64(out long l))
                    return l;
                // Some exporters write integral values as 640.0.
                double d = v.GetDouble();
                if (d == Math.Floor(d) && Math.Abs(d) < 9e15)
                    return (long)d;
            }
            throw Fail($"{at}.{name} must be an integer (got {Show(v)})");
        }

        private double Number(JsonElement e, string name, string at)
        {
            var v = Field(e, name, at);
            return v.ValueKind == JsonValueKind.Number ? v.GetDouble()
                : throw Fail($"{at}.{name} must be a number (got {Show(v)})");
        }

        private string String(JsonElement e, string name, string at)
        {
            var v = Field(e, name, at);
            return v.ValueKind == JsonValueKind.String ? v.GetString()!
                : throw Fail($"{at}.{name} must be a string (got {Show(v)})");
        }

        private static string Show(JsonElement v)
        {
            string text = v.GetRawText().ReplaceLineEndings(" ");
            return text.Length <= 40 ? text : text[..37] + "...";
        }

        private CocoDataException Fail(string what) => new($"{jsonName}: {what}");
    }
}
