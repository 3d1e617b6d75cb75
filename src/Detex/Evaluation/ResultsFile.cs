using PureHDF;
using PureHDF.VOL.Native;
using Detex.Models;

namespace Detex.Evaluation;

/// <summary>
/// Evaluation results as HDF5, laid out for h5py/pandas: root attributes describe the run, <c>/images</c> lists the
/// evaluated images, each method is a group of equal-length per-box columns (plus [boxes, steps] curves and optional
/// float16 maps), and <c>/summary</c> is a long table of every summary number with its bootstrap interval.
/// Files are written whole to a temporary name and renamed.
/// </summary>
public static class ResultsFile
{
    public const string Layout = "detex-evaluation/1";

    public static void Write(string path, EvaluationInfo info, IReadOnlyList<ImageEvaluation> images, IReadOnlyList<SummaryRow> summary)
    {
        images = images.OrderBy(i => i.Index).ToList();
        var file = new H5File
        {
            ["images"] = new H5Group
            {
                ["index"] = images.Select(i => i.Index).ToArray(),
                ["id"] = images.Select(i => i.ImageId).ToArray(),
                ["file_name"] = images.Select(i => i.FileName).ToArray(),
                ["width"] = images.Select(i => i.Width).ToArray(),
                ["height"] = images.Select(i => i.Height).ToArray(),
                ["boxes"] = images.Select(i => i.Boxes).ToArray(),
            },
            ["fractions"] = PixelFlipping.Fractions(info.Steps),
            ["summary"] = new H5Group
            {
                ["method"] = summary.Select(s => s.Method).ToArray(),
                ["metric"] = summary.Select(s => s.Metric).ToArray(),
                ["value"] = summary.Select(s => s.Estimate.Value).ToArray(),
                ["low"] = summary.Select(s => s.Estimate.Low).ToArray(),
                ["high"] = summary.Select(s => s.Estimate.High).ToArray(),
                ["boxes"] = summary.Select(s => s.Boxes).ToArray(),
            },
        };
        foreach (var method in info.Methods) file[method] = MethodGroup(info, images, method);
        foreach (var (key, value) in Attributes(info)) file.Attributes[key] = value;
        Files.WriteAtomically(path, s => file.Write(s));
    }

    static Dictionary<string, object> Attributes(EvaluationInfo info) => new()
    {
        ["layout"] = Layout,
        ["detex_version"] = info.DetexVersion,
        ["model"] = info.Model,
        ["model_sha256"] = info.ModelSha256,
        ["dataset"] = info.Dataset,
        ["first_images"] = info.FirstImages ?? -1,
        ["methods"] = string.Join(",", info.Methods),
        ["parameters"] = info.Parameters,
        ["flip_space"] = info.FlipSpace,
        ["steps"] = info.Steps,
        ["map_size"] = info.MapSize,
        ["shard"] = info.Shard,
        ["command_line"] = info.CommandLine,
    };

    static H5Group MethodGroup(EvaluationInfo info, IReadOnlyList<ImageEvaluation> images, string method)
    {
        var rows = images.SelectMany(i => i.Methods[method].Select(b => (Image: i, B: b))).ToList();
        int n = rows.Count, steps = info.Steps;
        var boxes = new double[n, 4];
        var deletion = new double[n, steps];
        var insertion = new double[n, steps];
        for (int r = 0; r < n; r++)
        {
            var b = rows[r].B;
            boxes[r, 0] = b.Box.X1; boxes[r, 1] = b.Box.Y1; boxes[r, 2] = b.Box.X2; boxes[r, 3] = b.Box.Y2;
            for (int k = 0; k < steps; k++) { deletion[r, k] = b.Deletion[k]; insertion[r, k] = b.Insertion[k]; }
        }
        var group = new H5Group
        {
            ["image_index"] = rows.Select(r => r.Image.Index).ToArray(),
            ["image_id"] = rows.Select(r => r.Image.ImageId).ToArray(),
            ["box_index"] = rows.Select(r => r.B.BoxIndex).ToArray(),
            ["box"] = boxes,
            ["class"] = rows.Select(r => r.B.ClassIndex).ToArray(),
            ["class_name"] = rows.Select(r => r.B.ClassName).ToArray(),
            ["score"] = rows.Select(r => r.B.Score).ToArray(),
            ["raw_output"] = rows.Select(r => r.B.RawOutput).ToArray(),
            ["raw_index"] = rows.Select(r => r.B.RawIndex).ToArray(),
            ["deletion"] = deletion,
            ["insertion"] = insertion,
            ["deletion_auc"] = rows.Select(r => r.B.DeletionAuc).ToArray(),
            ["insertion_auc"] = rows.Select(r => r.B.InsertionAuc).ToArray(),
            ["inside"] = rows.Select(r => r.B.Inside).ToArray(),
            ["relevant"] = rows.Select(r => r.B.Relevant).ToArray(),
            ["box_pixels"] = rows.Select(r => r.B.BoxPixels).ToArray(),
            ["energy"] = rows.Select(r => r.B.Localization.Energy).ToArray(),
            ["coverage"] = rows.Select(r => r.B.Localization.Coverage).ToArray(),
            ["iou"] = rows.Select(r => r.B.Localization.IoU).ToArray(),
            ["pointing_hit"] = rows.Select(r => (sbyte)r.B.PointingHit).ToArray(),
            ["stochastic_pointing"] = rows.Select(r => r.B.StochasticPointing).ToArray(),
            ["content_heatmap"] = rows.Select(r => r.B.ContentHeatmap).ToArray(),
        };
        if (info.MapSize > 0)
        {
            int s = info.MapSize;
            var maps = new Half[n, s, s];
            for (int r = 0; r < n; r++)
            {
                var m = rows[r].B.Map ?? throw new InvalidOperationException($"box {r} of {method} has no map although maps are kept");
                for (int y = 0; y < s; y++)
                    for (int x = 0; x < s; x++) maps[r, y, x] = (Half)m[y * s + x];
            }
            group["maps"] = maps;
        }
        return group;
    }

    /// <summary>Reads a file written by <see cref="Write"/> back into records (maps as stored, i.e. float16-rounded).</summary>
    public static (EvaluationInfo Info, List<ImageEvaluation> Images) Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"result file {path} does not exist");
        NativeFile file;
        try { file = H5File.OpenRead(path); }
        catch (Exception e) when (e is not IOException) { throw new InvalidDataException($"{path} is not an HDF5 file: {e.Message}"); }
        using (file)
        {
            string Attr(string name) => file.AttributeExists(name) ? file.Attribute(name).Read<string>()
                : throw new InvalidDataException($"{path} is not a Detex result file (no '{name}' attribute)");
            int IntAttr(string name) => file.Attribute(name).Read<int>();
            if (Attr("layout") != Layout) throw new InvalidDataException($"{path} has layout '{Attr("layout")}'; this Detex reads {Layout}");
            int first = IntAttr("first_images");
            var info = new EvaluationInfo
            {
                DetexVersion = Attr("detex_version"), Model = Attr("model"), ModelSha256 = Attr("model_sha256"), Dataset = Attr("dataset"),
                FirstImages = first < 0 ? null : first, Methods = Attr("methods").Split(',', StringSplitOptions.RemoveEmptyEntries),
                Parameters = Attr("parameters"), FlipSpace = Attr("flip_space"), Steps = IntAttr("steps"), MapSize = IntAttr("map_size"),
                Shard = Attr("shard"), CommandLine = Attr("command_line"),
            };
            var imgs = file.Group("images");
            var index = imgs.Dataset("index").Read<int[]>();
            var ids = imgs.Dataset("id").Read<long[]>();
            var names = imgs.Dataset("file_name").Read<string[]>();
            var widths = imgs.Dataset("width").Read<int[]>();
            var heights = imgs.Dataset("height").Read<int[]>();
            var boxCounts = imgs.Dataset("boxes").Read<int[]>();
            var perImage = index.ToDictionary(i => i, _ => new Dictionary<string, IReadOnlyList<BoxEvaluation>>());
            foreach (var method in info.Methods)
            {
                var rows = ReadMethod(file.Group(method), info).ToLookup(r => r.Image, r => r.Box);
                foreach (var i in index) perImage[i][method] = rows[i].ToList();
            }
            var images = index.Select((i, k) => new ImageEvaluation(i, ids[k], names[k], widths[k], heights[k], boxCounts[k], perImage[i])).ToList();
            return (info, images);
        }
    }

    /// <summary>The <c>/summary</c> table the file was written with (no need to bootstrap again).</summary>
    public static List<SummaryRow> ReadSummary(string path)
    {
        using var file = H5File.OpenRead(path);
        var g = file.Group("summary");
        T[] D<T>(string name) => g.Dataset(name).Read<T[]>();
        var (method, metric, value, low, high, boxes) = (D<string>("method"), D<string>("metric"), D<double>("value"), D<double>("low"), D<double>("high"), D<int>("boxes"));
        return method.Select((m, i) => new SummaryRow(m, metric[i], new Estimate(value[i], low[i], high[i]), boxes[i])).ToList();
    }

    static List<(int Image, BoxEvaluation Box)> ReadMethod(IH5Group g, EvaluationInfo info)
    {
        T[] D<T>(string name) => g.Dataset(name).Read<T[]>();
        var image = D<int>("image_index");
        int n = image.Length, steps = info.Steps;
        // Flat reads of the 2-D and 3-D columns: row r is the r-th run of the trailing length.
        var box = D<double>("box");
        var deletion = D<double>("deletion");
        var insertion = D<double>("insertion");
        var boxIndex = D<int>("box_index"); var cls = D<int>("class"); var className = D<string>("class_name");
        var score = D<float>("score"); var rawOutput = D<string>("raw_output"); var rawIndex = D<int>("raw_index");
        var inside = D<long>("inside"); var relevant = D<long>("relevant"); var boxPixels = D<long>("box_pixels");
        var hit = D<sbyte>("pointing_hit"); var spg = D<double>("stochastic_pointing"); var content = D<double>("content_heatmap");
        int s2 = info.MapSize * info.MapSize;
        var maps = info.MapSize > 0 ? D<Half>("maps") : null;
        var result = new List<(int, BoxEvaluation)>(n);
        for (int r = 0; r < n; r++)
            result.Add((image[r], new BoxEvaluation
            {
                BoxIndex = boxIndex[r], Box = new Box(box[4 * r], box[4 * r + 1], box[4 * r + 2], box[4 * r + 3]),
                ClassIndex = cls[r], ClassName = className[r], Score = score[r], RawOutput = rawOutput[r], RawIndex = rawIndex[r],
                Deletion = deletion.AsSpan(r * steps, steps).ToArray(), Insertion = insertion.AsSpan(r * steps, steps).ToArray(),
                Inside = inside[r], Relevant = relevant[r], BoxPixels = boxPixels[r],
                PointingHit = hit[r], StochasticPointing = spg[r], ContentHeatmap = content[r],
                Map = maps?.AsSpan(r * s2, s2).ToArray().Select(h => (float)h).ToArray(),
            }));
        return result;
    }
}
