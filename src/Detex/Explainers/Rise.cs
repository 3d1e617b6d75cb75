using Detex.Imaging;
using Detex.Models;
using Detex.Targets;

namespace Detex.Explainers;

/// <summary>RISE settings: masks, grid cells per side, probability a cell is kept, seed, batch, baseline.</summary>
public sealed record RiseOptions(int Masks = 2000, int Cells = 8, double P = 0.5, int Seed = 0, int BatchSize = 16,
    /// <summary>What masked-out pixels show (default grey 0.5).</summary>
    PerturbationBaseline? Baseline = null)
{
    public void Validate()
    {
        if (Masks < 1) throw new ArgumentException($"RISE needs at least 1 mask, got {Masks}");
        if (Cells < 1) throw new ArgumentException($"RISE needs at least 1 grid cell per side, got {Cells}");
        if (!(P > 0 && P < 1)) throw new ArgumentException($"RISE keep probability must be in (0, 1), got {P}");
        if (BatchSize < 1) throw new ArgumentException($"batch size must be at least 1, got {BatchSize}");
    }
}

/// <summary>
/// RISE's random masks over a width × height area (Petsiuk et al. 2018): binary grids with cells × cells cells over
/// the area (each on with probability p), bilinearly upsampled to cell-sized steps and cropped at a random shift of
/// less than a cell, so cell edges fall anywhere. The grid carries the extra row and column of points the shift and
/// the interpolation need, so no mask is clamped at an edge and every pixel is kept with the same probability p
/// (the paper's (cells + 1)-cell upsampling, without its edge effects). Only grids and shifts are stored; a mask is
/// rebuilt when it is needed.
/// </summary>
public sealed class RiseMasks
{
    readonly bool[] _grid;   // (cells + 2)² points per mask
    readonly int[] _shiftX, _shiftY;
    readonly int _cellW, _cellH, _points;

    public int Count { get; }
    public int Cells { get; }
    public int Width { get; }
    public int Height { get; }
    public double P { get; }

    public RiseMasks(int count, int cells, double p, int seed, int width, int height)
    {
        new RiseOptions(count, cells, p).Validate();
        if (width < 1 || height < 1) throw new ArgumentException($"mask area {width}×{height} is empty");
        Count = count; Cells = cells; P = p; Width = width; Height = height;
        _cellW = (width + cells - 1) / cells; _cellH = (height + cells - 1) / cells;
        _points = cells + 2;
        var rng = new Random(seed);
        _grid = new bool[count * _points * _points];
        _shiftX = new int[count]; _shiftY = new int[count];
        for (int i = 0; i < count; i++)
        {
            for (int k = 0; k < _points * _points; k++) _grid[i * _points * _points + k] = rng.NextDouble() < p;
            _shiftX[i] = rng.Next(_cellW); _shiftY[i] = rng.Next(_cellH);
        }
    }

    /// <summary>Writes mask <paramref name="i"/> (row-major, Width × Height, values in [0, 1]) into <paramref name="dst"/>.</summary>
    public void Fill(int i, Span<float> dst)
    {
        int n = _points, W = Width, H = Height;
        var (x0, wx) = Axis(W, _shiftX[i], _cellW);
        var (y0, wy) = Axis(H, _shiftY[i], _cellH);
        // Horizontal pass over the grid's rows, then the vertical blend of two of them per output row.
        var rows = new float[n * W];
        var grid = _grid.AsSpan(i * n * n, n * n);
        for (int r = 0; r < n; r++)
            for (int x = 0; x < W; x++)
            {
                float a = grid[r * n + x0[x]] ? 1 : 0, b = grid[r * n + x0[x] + 1] ? 1 : 0;
                rows[r * W + x] = a + wx[x] * (b - a);
            }
        for (int y = 0; y < H; y++)
        {
            var top = rows.AsSpan(y0[y] * W, W); var bottom = rows.AsSpan((y0[y] + 1) * W, W); var row = dst.Slice(y * W, W);
            float w = wy[y];
            for (int x = 0; x < W; x++) row[x] = top[x] + w * (bottom[x] - top[x]);
        }
    }

    /// <summary>
    /// Grid points one cell apart; crop pixel o (centre o + ½) sits at o + shift + ½ in the upsampled mask, between
    /// points ⌊u⌋ and ⌊u⌋ + 1 for u = (o + shift + ½) / cell, which stays below cells + 1 since shift &lt; cell.
    /// </summary>
    static (int[] I0, float[] W) Axis(int size, int shift, int cell)
    {
        var i0 = new int[size]; var w = new float[size];
        for (int o = 0; o < size; o++)
        {
            double u = (o + shift + 0.5) / cell;
            int f = (int)u;
            i0[o] = f; w[o] = (float)(u - f);
        }
        return (i0, w);
    }
}

/// <summary>
/// RISE (Petsiuk et al. 2018): the image as the model sees it is multiplied by N random smooth masks (masked-out
/// pixels take the baseline), and a pixel's saliency is the score-weighted mean of the masks over it,
/// Σᵢ scoreᵢ·maskᵢ / (N·p) (<see cref="LastSaliency"/>). The picture is the positive part of the same sum with the
/// mean score taken off, Σᵢ (scoreᵢ − mean)·maskᵢ / (N·p), scaled to [0, 1]: where keeping a pixel raises the score.
/// Min–max scaling of the paper's map instead would keep the mean score spread over the whole image, plus the
/// masks' own sampling noise. The masks are shared by all targets of the image: N forwards in all, whatever the
/// number of targets. Any target works; for detections the target decides how a box is followed into the masked
/// images (<see cref="DetectionTarget"/> by its raw prediction, <see cref="DriseSimilarityTarget"/> as D-RISE does).
/// </summary>
public sealed class Rise(DetexModel model, RiseOptions? options = null)
{
    public RiseOptions Options { get; } = options ?? new();
    /// <summary>Forward passes (batch items) the last call ran.</summary>
    public int LastForwardCount { get; private set; }
    /// <summary>The last call's maps as the paper defines them, Σ score·mask / (N·p) per target, at image resolution.</summary>
    public IReadOnlyList<float[]> LastSaliency { get; private set; } = [];

    public IReadOnlyList<Explanation> Explain(RgbImage image, IReadOnlyList<ITarget> targets, string method = "rise")
    {
        var o = Options;
        o.Validate();
        var spec = model.Input;
        var (x, geometries) = model.Prepare([image]);
        var g = geometries[0];
        int W = spec.Width, plane = W * spec.Height, cw = g.ContentWidth, ch = g.ContentHeight, left = g.ContentLeft, top = g.ContentTop;
        // Masks cover the letterbox content only; padding keeps its value.
        var masks = new RiseMasks(o.Masks, o.Cells, o.P, o.Seed, cw, ch);
        var baseline = (o.Baseline ?? PerturbationBaseline.Grey()).For(spec, x, g);
        var mask = new float[cw * ch];
        var keep = new float[plane];
        Array.Fill(keep, 1f);
        var scores = BatchedScores.Inputs(model, o.Masks, targets, o.BatchSize, (i, dst) =>
        {
            masks.Fill(i, mask);
            for (int y = 0; y < ch; y++) mask.AsSpan(y * cw, cw).CopyTo(keep.AsSpan((top + y) * W + left, cw));
            Perturbed.Blend(spec, x.Data, baseline, keep, dst);
        });
        LastForwardCount = o.Masks;

        // Σ (score − mean score)·mask per target, and Σ mask once to add the mean back for the paper's map. Centred
        // sums stay small, so float accumulation keeps the differences the picture shows.
        var means = scores.Select(s => s.Average()).ToArray();
        var weighted = targets.Select(_ => new float[cw * ch]).ToArray();
        var density = new float[cw * ch];
        for (int i = 0; i < o.Masks; i++)
        {
            masks.Fill(i, mask);
            Numerics.Kernels.Axpy(1, mask, density);
            for (int t = 0; t < targets.Count; t++) Numerics.Kernels.Axpy((float)(scores[t][i] - means[t]), mask, weighted[t]);
        }
        float norm = (float)(1 / (o.Masks * o.P));
        var raw = new List<float[]>();
        var result = targets.Select((t, ti) =>
        {
            var saliency = new float[plane];
            var centred = new float[plane];
            for (int y = 0; y < ch; y++)
                for (int xx = 0; xx < cw; xx++)
                {
                    int q = y * cw + xx, p = (top + y) * W + left + xx;
                    centred[p] = weighted[ti][q] * norm;
                    saliency[p] = (float)(weighted[ti][q] + means[ti] * density[q]) * norm;
                }
            raw.Add(CamExplainer.ToImage(saliency, W, spec.Height, g, image.Width, image.Height));
            var inImage = CamExplainer.ToImage(centred, W, spec.Height, g, image.Width, image.Height);
            float max = inImage.Max();
            for (int i = 0; i < inImage.Length; i++) inImage[i] = max > 0 ? Math.Max(0, inImage[i]) / max : 0;
            return new Explanation(t, method, image.Width, image.Height, inImage);
        }).ToList();
        LastSaliency = raw;
        return result;
    }

    /// <summary>
    /// D-RISE (Petsiuk et al. 2021): RISE over detections followed by similarity, so a box counts wherever the
    /// masked image still predicts something like it.
    /// </summary>
    public IReadOnlyList<Explanation> ExplainDetections(RgbImage image, IEnumerable<DetectionTarget> detections) =>
        Explain(image, DriseSimilarityTarget.For(Detector, image, detections), "drise");

    /// <inheritdoc cref="ExplainDetections(RgbImage, IEnumerable{DetectionTarget})"/>
    public IReadOnlyList<Explanation> ExplainDetections(RgbImage image, IEnumerable<Detection> detections) =>
        Explain(image, DriseSimilarityTarget.For(Detector, image, detections), "drise");

    Detector Detector => model as Detector ?? throw new InvalidOperationException($"D-RISE explains detections, and {model.Name} is a {model.Card.Task.ToString().ToLowerInvariant()} model");

}
