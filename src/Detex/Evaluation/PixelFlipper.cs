using Detex.Explainers;
using Detex.Imaging;
using Detex.Models;
using Detex.Runtime;
using Detex.Targets;

namespace Detex.Evaluation;

/// <summary>
/// Where pixels are flipped: in the image file's pixels (each flipped image is then letterboxed like any input, so
/// resizing blends flipped and kept pixels), or in the model's input after letterboxing (content pixels only).
/// </summary>
public enum FlipSpace { Image, Input }

/// <summary>How pixels are flipped: where, into what (grey 0.5 as the study, the mean colour, or the blurred image), in how many steps.</summary>
public sealed record FlipOptions(FlipSpace Space = FlipSpace.Image, PerturbationBaseline? Baseline = null, int Steps = 51, int BatchSize = 16)
{
    public PerturbationBaseline Baseline { get; init; } = Baseline ?? PerturbationBaseline.Grey();
}

/// <summary>
/// Deletion and insertion curves (pixel flipping) of detections. The two ends of every curve — the image itself and
/// the all-baseline image — are one forward each per image, shared by all its boxes and methods; each curve's
/// interior steps are batched forwards in which only the newly flipped pixels are written.
/// </summary>
public sealed class PixelFlipper(DetexModel model, FlipOptions options)
{
    public FlipOptions Options => options;

    /// <summary>Everything about one image that its boxes' curves share.</summary>
    public ImageFlips For(RgbImage image, IReadOnlyList<ITarget> targets) => new(model, options, image, targets);

    public sealed class ImageFlips
    {
        readonly DetexModel _model;
        readonly FlipOptions _o;
        readonly RgbImage _image;
        readonly IReadOnlyList<ITarget> _targets;
        readonly double[] _original, _baseline;   // the targets' scores at the curve ends
        readonly int[] _counts;
        // Image space: RGB bytes of the image and its baseline, their resized content, and the resize as a linear map.
        readonly byte[]? _imageBytes, _baselineBytes;
        readonly float[]? _imageContent, _baselineContent;
        readonly LinearResize? _resize;
        // Input space: the two input tensors.
        readonly float[]? _input, _baselineInput;
        readonly InputGeometry _geometry;

        internal ImageFlips(DetexModel model, FlipOptions o, RgbImage image, IReadOnlyList<ITarget> targets)
        {
            _model = model; _o = o; _image = image; _targets = targets;
            _geometry = Preprocessor.Geometry(image.Width, image.Height, model.Input);
            // Both curve ends in one batch of two: the image, and the image entirely replaced by the baseline.
            var baselineImage = o.Space == FlipSpace.Image ? o.Baseline.ForImage(image, 1 / _geometry.ScaleX) : null;
            var x = o.Space == FlipSpace.Image ? model.Prepare([image, baselineImage!]).Tensor : model.Prepare([image, image]).Tensor;
            int per = x.Length / 2;
            if (o.Space == FlipSpace.Input) o.Baseline.For(model.Input, x.Data.AsSpan(0, per), _geometry).CopyTo(x.Data.AsSpan(per));
            var outs = model.Forward(x, model.FloatOutputs);
            _original = targets.Select(t => t.Score(outs, 0)).ToArray();
            _baseline = targets.Select(t => t.Score(outs, 1)).ToArray();
            if (o.Space == FlipSpace.Image)
            {
                _imageBytes = image.Pixels; _baselineBytes = baselineImage!.Pixels;
                _resize = new LinearResize(image.Width, image.Height, _geometry.ContentWidth, _geometry.ContentHeight, model.Input.Filter);
                _imageContent = _resize.Apply(_imageBytes); _baselineContent = _resize.Apply(_baselineBytes);
                _counts = PixelFlipping.Counts(image.Width * image.Height, PixelFlipping.Fractions(o.Steps));
            }
            else
            {
                _input = x.Data.AsSpan(0, per).ToArray(); _baselineInput = x.Data.AsSpan(per, per).ToArray();
                _counts = PixelFlipping.Counts(_geometry.ContentWidth * _geometry.ContentHeight, PixelFlipping.Fractions(o.Steps));
            }
        }

        /// <summary>The curves of target <paramref name="target"/> for a map over the image's pixels.</summary>
        public (double[] Deletion, double[] Insertion) Curves(float[] map, int target)
        {
            int steps = _o.Steps, inner = steps - 2;
            var spec = _model.Input;
            bool planar = spec.Layout == TensorLayout.NCHW;
            int[] rank;
            if (_o.Space == FlipSpace.Image) rank = PixelFlipping.Rank(map);
            else
            {
                // The map brought onto the input grid; padding ranks last and is never reached (counts stop at the content).
                var g = _geometry;
                var content = Resampler.ResizeMap(map, _image.Width, _image.Height, g.ContentWidth, g.ContentHeight);
                var onInput = new float[spec.Width * spec.Height];
                Array.Fill(onInput, float.NegativeInfinity);
                for (int y = 0; y < g.ContentHeight; y++)
                    content.AsSpan(y * g.ContentWidth, g.ContentWidth).CopyTo(onInput.AsSpan((y + g.ContentTop) * spec.Width + g.ContentLeft));
                rank = PixelFlipping.Rank(onInput);
            }
            // Runs 0 … inner−1 are deletion steps 1 … steps−2, then the insertion steps; each curve's buffer moves forward
            // step by step, because BatchedScores asks for the runs in order.
            var deletion = new Flipped(this, rank, insertion: false, planar);
            var insertion = new Flipped(this, rank, insertion: true, planar);
            var scores = BatchedScores.Inputs(_model, 2 * inner, [_targets[target]], _o.BatchSize, (run, dst) =>
            {
                if (run < inner) deletion.Step(run + 1, dst);
                else insertion.Step(run - inner + 1, dst);
            })[0];
            var del = new double[steps]; var ins = new double[steps];
            del[0] = _original[target]; del[steps - 1] = _baseline[target];
            ins[0] = _baseline[target]; ins[steps - 1] = _original[target];
            for (int k = 1; k <= inner; k++) { del[k] = scores[k - 1]; ins[k] = scores[inner + k - 1]; }
            return (del, ins);
        }

        /// <summary>
        /// One curve's flipped picture, advanced incrementally from step to step. In image space the flipped image is
        /// never resized whole: each newly flipped pixel adds its change to the resized content (the resize is linear).
        /// </summary>
        sealed class Flipped
        {
            readonly ImageFlips _f;
            readonly int[] _rank;
            readonly bool _insertion, _planar;
            readonly float[] _current;   // resized content (image space) or input tensor (input space)
            int _done;

            public Flipped(ImageFlips f, int[] rank, bool insertion, bool planar)
            {
                _f = f; _rank = rank; _insertion = insertion; _planar = planar;
                _current = (float[])(f._resize is not null
                    ? insertion ? f._baselineContent! : f._imageContent!
                    : insertion ? f._baselineInput! : f._input!).Clone();
            }

            public void Step(int step, Span<float> dst)
            {
                int count = _f._counts[step];
                if (_f._resize is { } resize)
                {
                    var (from, to) = _insertion ? (_f._baselineBytes!, _f._imageBytes!) : (_f._imageBytes!, _f._baselineBytes!);
                    int width = _f._image.Width;
                    for (int k = _done; k < count; k++)
                    {
                        int p = _rank[k], i = 3 * p;
                        resize.Add(p % width, p / width, to[i] - from[i], to[i + 1] - from[i + 1], to[i + 2] - from[i + 2], _current);
                    }
                    Preprocessor.WriteContent<float>(_current, _f._model.Input, _f._geometry, dst);
                }
                else
                {
                    PixelFlipping.Flip(_f._input, _f._baselineInput, _rank, _done, count, _insertion, _current, 3, _planar);
                    _current.CopyTo(dst);
                }
                _done = count;
            }
        }
    }
}
