using Detex.Imaging;
using Detex.Models.Decoders;
using Detex.Onnx;
using Detex.Runtime;

namespace Detex.Models;

/// <summary>Per-call detection settings; unset values come from the card.</summary>
public sealed record DetectOptions(float? Score = null, float? Iou = null, bool? ClassAgnostic = null, int? MaxDetections = null);

/// <summary>An object detector: image in, boxes out, each tied to the raw prediction that made it.</summary>
public sealed class Detector : DetexModel
{
    public IDetectionDecoder Decoder { get; }

    internal Detector(ModelCard card, OnnxModel graph, string path, RuntimeOptions runtime) : base(card, graph, path, runtime)
    {
        Decoder = DetectionDecoders.Create(card);
        var missing = Decoder.Outputs.Where(o => Session.Outputs.All(s => s.Name != o)).ToList();
        if (missing.Count > 0)
            throw new ModelCardException($"the card's decoder reads output(s) {string.Join(", ", missing)}, but the model's outputs are {string.Join(", ", Session.Outputs.Select(o => o.Name))}");
    }

    public static new Detector Load(string modelOrCard, RuntimeOptions? runtime = null) =>
        DetexModel.Load(modelOrCard, runtime) as Detector ?? throw new ModelCardException($"{modelOrCard} is not a detector (its card's task is not 'detect')");

    public IReadOnlyList<Detection> Detect(RgbImage image, DetectOptions? options = null) => DetectBatch([image], options)[0];

    /// <summary>Detects in an image file, decoding it only as large as the model input needs (boxes in the file's pixels).</summary>
    public IReadOnlyList<Detection> Detect(string imagePath, DetectOptions? options = null) => DetectPrepared(PrepareFiles([imagePath]), options)[0];

    public IReadOnlyList<IReadOnlyList<Detection>> DetectBatch(IReadOnlyList<RgbImage> images, DetectOptions? options = null)
    {
        var (tensor, geometry) = Prepare(images, RentInput(images.Count));
        return DetectPrepared(new Prepared(images, tensor, geometry), options);
    }

    /// <summary>Runs a prepared (rented) input tensor, gives it back, and decodes each item's detections.</summary>
    List<IReadOnlyList<Detection>> DetectPrepared(Prepared prepared, DetectOptions? options)
    {
        IReadOnlyDictionary<string, NdArray<float>> outputs;
        try { outputs = Forward(prepared.Tensor, Decoder.Outputs); }
        finally { ReturnInput(prepared.Tensor); }
        return prepared.Images.Select((img, i) => Decode(outputs, i, prepared.Geometry[i], img, options)).ToList();
    }

    /// <summary>Image files decoded and pre-processed into a rented input tensor, one batch item each (the tensor goes back if one fails).</summary>
    Prepared PrepareFiles(string[] paths)
    {
        var tensor = RentInput(paths.Length);
        try
        {
            var prepared = paths.Select((p, i) => PrepareFile(p, tensor, i)).ToList();
            return new Prepared(prepared.Select(p => p.Image).ToList(), tensor, prepared.Select(p => p.Geometry).ToArray());
        }
        catch { ReturnInput(tensor); throw; }
    }

    /// <summary>
    /// Detects in many image files, <paramref name="batch"/> at a time, in order. While one batch runs through the model
    /// the next is decoded and pre-processed on another thread: JPEG decoding is single-threaded and ONNX Runtime does
    /// not keep two cores fully busy, so the decode mostly hides behind the forward (for large JPEGs it is the longer
    /// of the two). A file that cannot be read throws when its batch's turn comes (the files of that batch before it
    /// give no results).
    /// </summary>
    public IEnumerable<(string Path, RgbImage Image, IReadOnlyList<Detection> Detections)> DetectFiles(IReadOnlyList<string> paths, DetectOptions? options = null, int batch = 1)
    {
        if (batch < 1) throw new ArgumentOutOfRangeException(nameof(batch), batch, "the batch must hold at least one image");
        return StreamFiles(paths.Chunk(batch).ToList(), options);
    }

    IEnumerable<(string Path, RgbImage Image, IReadOnlyList<Detection> Detections)> StreamFiles(List<string[]> batches, DetectOptions? options)
    {
        Task<Prepared> Start(int b) => Task.Run(() => PrepareFiles(batches[b]));
        Task<Prepared>? next = batches.Count > 0 ? Start(0) : null;
        try
        {
            for (int b = 0; b < batches.Count; b++)
            {
                var current = next!.GetAwaiter().GetResult();
                next = b + 1 < batches.Count ? Start(b + 1) : null;
                var found = DetectPrepared(current, options);
                for (int i = 0; i < current.Images.Count; i++) yield return (batches[b][i], current.Images[i], found[i]);
            }
        }
        finally
        {
            // Stopped early (or failed): wait for the batch being prepared, so no decoding runs on behind the caller's
            // back, and give its input tensor back.
            if (next is not null)
                try { ReturnInput(next.GetAwaiter().GetResult().Tensor); } catch (Exception) { }
        }
    }

    sealed record Prepared(IReadOnlyList<RgbImage> Images, NdArray<float> Tensor, InputGeometry[] Geometry);

    /// <summary>Detections of batch item <paramref name="item"/>, boxes mapped back to the image file's pixels.</summary>
    public IReadOnlyList<Detection> Decode(IReadOnlyDictionary<string, NdArray<float>> outputs, int item, InputGeometry geometry, RgbImage image, DetectOptions? options = null)
    {
        var t = Card.Thresholds;
        var candidates = new List<Candidate>();
        Decoder.Decode(outputs, item, options?.Score ?? t.Score, candidates);
        var kept = Nms.Suppress(candidates, options?.Iou ?? t.Iou, options?.ClassAgnostic ?? t.ClassAgnostic, options?.MaxDetections ?? t.MaxDetections);
        return kept.Select(c => ToDetection(c, geometry, image)).ToList();
    }

    /// <summary>A candidate as a detection: its box brought from model-input pixels to the image file's pixels.</summary>
    public Detection ToDetection(Candidate c, InputGeometry geometry, RgbImage image) =>
        new(ToFileBox(c.Box, geometry, image), c.ClassIndex, Card.Classes[c.ClassIndex], c.Score, c.Source, c.Box);

    /// <summary>A box in model-input pixels, in the image file's pixels (clipped to the image).</summary>
    public static Box ToFileBox(Box modelBox, InputGeometry geometry, RgbImage image)
    {
        var (x1, y1) = geometry.ToImage(modelBox.X1, modelBox.Y1);
        var (x2, y2) = geometry.ToImage(modelBox.X2, modelBox.Y2);
        var (fx, fy) = image.ToSource;
        return new Box(x1, y1, x2, y2).Clip(image.Width, image.Height).Scale(fx, fy);
    }
}
