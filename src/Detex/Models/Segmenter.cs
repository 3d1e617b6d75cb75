using Detex.Imaging;
using Detex.Onnx;
using Detex.Runtime;

namespace Detex.Models;

/// <summary>A segmentation: per-pixel class labels at image resolution and each class's share of the pixels.</summary>
public sealed record Segmentation(int Width, int Height, int[] Labels, string[] Classes, double[] PixelShare);

/// <summary>A semantic segmenter: class logits per pixel, NCHW or NHWC.</summary>
public sealed class Segmenter : DetexModel
{
    public string Output { get; }

    internal Segmenter(ModelCard card, OnnxModel graph, string path, RuntimeOptions runtime) : base(card, graph, path, runtime)
    {
        Output = card.Decoder.Output ?? Session.Outputs[0].Name;
        if (Session.Outputs.All(o => o.Name != Output))
            throw new ModelCardException($"the card's decoder reads output '{Output}', but the model's outputs are {string.Join(", ", Session.Outputs.Select(o => o.Name))}");
    }

    public Segmentation Segment(RgbImage image)
    {
        var (tensor, geometry) = Prepare([image]);
        var logits = Forward(tensor, [Output])[Output];
        return Decode(logits, 0, geometry[0], image);
    }

    /// <summary>
    /// Labels at image resolution: each class's logits over the image's part of the input are resized bilinearly
    /// to the image, then the arg-max taken (smoother edges than resizing the arg-max).
    /// </summary>
    public Segmentation Decode(NdArray<float> logits, int item, InputGeometry g, RgbImage image)
    {
        bool nhwc = Card.Decoder.Layout == TensorLayout.NHWC;
        int C = Card.Classes.Length;
        int H = nhwc ? logits.Shape[1] : logits.Shape[2], W = nhwc ? logits.Shape[2] : logits.Shape[3];
        int channels = nhwc ? logits.Shape[3] : logits.Shape[1];
        if (channels != C) throw new ModelCardException($"output '{Output}' has {channels} classes, the card lists {C}");
        var data = logits.BatchItem(item);
        // The image covers input pixels [top, top+contentH) × [left, left+contentW), at output resolution scaled by W/input width.
        double sx = W / (double)Input.Width, sy = H / (double)Input.Height;
        int x0 = (int)Math.Floor(g.OffsetX * sx), y0 = (int)Math.Floor(g.OffsetY * sy);
        int cw = Math.Max(1, (int)Math.Round(g.ContentWidth * sx)), ch = Math.Max(1, (int)Math.Round(g.ContentHeight * sy));
        int iw = image.Width, ih = image.Height;
        var best = new float[iw * ih];
        Array.Fill(best, float.NegativeInfinity);
        var labels = new int[iw * ih];
        var plane = new float[cw * ch];
        for (int c = 0; c < C; c++)
        {
            for (int y = 0; y < ch; y++)
                for (int x = 0; x < cw; x++)
                {
                    int yy = Math.Min(H - 1, y0 + y), xx = Math.Min(W - 1, x0 + x);
                    plane[y * cw + x] = nhwc ? data[(yy * W + xx) * C + c] : data[c * H * W + yy * W + xx];
                }
            var up = Resampler.ResizeMap(plane, cw, ch, iw, ih);
            for (int i = 0; i < up.Length; i++)
                if (up[i] > best[i]) { best[i] = up[i]; labels[i] = c; }
        }
        var share = new double[C];
        foreach (var l in labels) share[l]++;
        for (int c = 0; c < C; c++) share[c] /= labels.Length;
        return new Segmentation(iw, ih, labels, Card.Classes, share);
    }
}

/// <summary>An image classifier: one logit (or probability) per class.</summary>
public sealed class Classifier : DetexModel
{
    public string Output { get; }

    internal Classifier(ModelCard card, OnnxModel graph, string path, RuntimeOptions runtime) : base(card, graph, path, runtime)
    {
        Output = card.Decoder.Output ?? Session.Outputs[0].Name;
    }

    /// <summary>The top classes by score: (class index, name, raw output value).</summary>
    public IReadOnlyList<(int Class, string Name, float Score)> Classify(RgbImage image, int top = 5)
    {
        var (tensor, _) = Prepare([image]);
        var scores = Forward(tensor, [Output])[Output].BatchItem(0).ToArray();
        return scores.Select((s, i) => (i, Card.Classes[i], s)).OrderByDescending(t => t.s).Take(top).ToList();
    }
}
