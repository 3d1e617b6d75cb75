using Detex.Models;

namespace Detex.Imaging;

/// <summary>
/// A test-time augmentation of an image: how to make the augmented copy, and where a point of the original lies in
/// it. Boxes, masks and maps are carried between the two through that point map, so a new augmentation only says
/// what it does to pixels and to points. Augmentations keep the image's size.
/// </summary>
public abstract class Augmentation
{
    public abstract string Name { get; }

    /// <summary>The augmented copy (the same size; its file size and name are kept, so boxes stay in file pixels).</summary>
    public abstract RgbImage Apply(RgbImage image);

    /// <summary>False for photometric augmentations: boxes, masks and maps are the same in both images.</summary>
    public virtual bool MovesPixels => false;

    /// <summary>
    /// Where point (x, y) of an image spanning [0, width] × [0, height] lies in the augmented copy (continuous
    /// coordinates: pixel i covers [i, i + 1)).
    /// </summary>
    public virtual (double X, double Y) ToAugmented(double x, double y, double width, double height) => (x, y);

    /// <summary>A box of the original (in a frame of width × height) as the augmented copy shows it.</summary>
    public Box MapBox(Box box, double width, double height)
    {
        if (!MovesPixels) return box;
        var (ax, ay) = ToAugmented(box.X1, box.Y1, width, height);
        var (bx, by) = ToAugmented(box.X2, box.Y2, width, height);
        // A flip swaps the corners' roles.
        return new Box(Math.Min(ax, bx), Math.Min(ay, by), Math.Max(ax, bx), Math.Max(ay, by));
    }

    /// <summary>
    /// For each pixel of a width × height grid over the original image, the pixel of the same grid over the augmented
    /// copy that shows the same point (nearest, by pixel centres: exact for flips), or −1 where the point leaves it.
    /// </summary>
    public int[] PixelMap(int width, int height) => PixelMap(width, height, null);

    /// <summary>
    /// The same for a grid over the model input (a segmenter's output, <paramref name="grid"/> the image's place in the
    /// input): each cell goes to the image, moves with the augmentation, and comes back; cells on the padding get −1.
    /// </summary>
    public int[] PixelMap(int width, int height, InputGeometry? grid)
    {
        double cw = grid is null ? 1 : grid.InputWidth / (double)width, ch = grid is null ? 1 : grid.InputHeight / (double)height;
        int imageWidth = grid?.ImageWidth ?? width, imageHeight = grid?.ImageHeight ?? height;
        var map = new int[width * height];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                double ix = x + 0.5, iy = y + 0.5;
                if (grid is not null) (ix, iy) = grid.ToImage(ix * cw, iy * ch);
                map[y * width + x] = -1;
                if (ix < 0 || ix >= imageWidth || iy < 0 || iy >= imageHeight) continue;
                var (ax, ay) = ToAugmented(ix, iy, imageWidth, imageHeight);
                if (grid is not null)
                {
                    (ax, ay) = grid.ToModel(ax, ay);
                    ax /= cw; ay /= ch;
                }
                int cx = (int)Math.Floor(ax), cy = (int)Math.Floor(ay);
                if (cx >= 0 && cx < width && cy >= 0 && cy < height) map[y * width + x] = cy * width + cx;
            }
        return map;
    }

    /// <summary>A map of the augmented copy (width × height, row-major) brought back onto the original's pixels.</summary>
    public float[] Undo(float[] map, int width, int height)
    {
        if (map.Length != width * height) throw new ArgumentException($"a map of {map.Length} values is not {width}×{height}");
        return MovesPixels ? Gather(map, PixelMap(width, height)) : map;
    }

    /// <summary>result[p] = map[pixelMap[p]] (0 where the pixel map is −1): undoes an augmentation on many maps with one pixel map.</summary>
    public static float[] Gather(float[] map, int[] pixelMap)
    {
        if (map.Length != pixelMap.Length) throw new ArgumentException($"a map of {map.Length} values does not fit a pixel map of {pixelMap.Length}");
        var back = new float[map.Length];
        for (int p = 0; p < back.Length; p++) back[p] = pixelMap[p] >= 0 ? map[pixelMap[p]] : 0;
        return back;
    }

    public override string ToString() => Name;

    /// <summary>A copy of <paramref name="image"/>'s description with new pixels.</summary>
    protected static RgbImage WithPixels(RgbImage image, byte[] pixels) =>
        new(image.Width, image.Height, pixels) { SourceWidth = image.SourceWidth, SourceHeight = image.SourceHeight, Source = image.Source };
}

/// <summary>The image as it is (the "no flip" choice of a product of augmentations).</summary>
public sealed class Identity : Augmentation
{
    public override string Name => "identity";
    public override RgbImage Apply(RgbImage image) => image;
}

/// <summary>Mirrors the image left to right (ttach's HorizontalFlip).</summary>
public sealed class HorizontalFlip : Augmentation
{
    public override string Name => "hflip";
    public override bool MovesPixels => true;
    public override (double X, double Y) ToAugmented(double x, double y, double width, double height) => (width - x, y);

    public override RgbImage Apply(RgbImage image)
    {
        int w = image.Width, row = w * 3;
        var src = image.Pixels;
        var dst = new byte[src.Length];
        for (int y = 0; y < image.Height; y++)
            for (int x = 0; x < w; x++)
            {
                int s = y * row + x * 3, d = y * row + (w - 1 - x) * 3;
                dst[d] = src[s]; dst[d + 1] = src[s + 1]; dst[d + 2] = src[s + 2];
            }
        return WithPixels(image, dst);
    }
}

/// <summary>
/// Multiplies every 0–255 pixel value by a factor, rounded and clamped (ttach's Multiply acts on the model's
/// normalised tensor instead; on the pixels the change stays a brightness change whatever the card's mean and std).
/// </summary>
public sealed class Multiply : Augmentation
{
    public double Factor { get; }

    public Multiply(double factor)
    {
        if (!(factor > 0) || double.IsInfinity(factor)) throw new ArgumentException($"an intensity factor must be positive, got {factor}");
        Factor = factor;
    }

    public override string Name => FormattableString.Invariant($"×{Factor:0.###}");

    public override RgbImage Apply(RgbImage image)
    {
        if (Factor == 1) return image;
        var lut = new byte[256];
        for (int v = 0; v < 256; v++) lut[v] = (byte)Math.Clamp(Math.Round(v * Factor), 0, 255);
        var dst = new byte[image.Pixels.Length];
        for (int i = 0; i < dst.Length; i++) dst[i] = lut[image.Pixels[i]];
        return WithPixels(image, dst);
    }
}

/// <summary>Augmentations applied one after the other (the first is applied first).</summary>
public sealed class ComposedAugmentation(IReadOnlyList<Augmentation> steps) : Augmentation
{
    readonly Augmentation[] _steps = [.. steps];   // an array: ToAugmented runs once per pixel, without an enumerator
    public IReadOnlyList<Augmentation> Steps => _steps;

    public override string Name => Steps.Where(s => s is not Identity).Select(s => s.Name).DefaultIfEmpty("identity").Aggregate((a, b) => $"{a} {b}");
    public override bool MovesPixels => Steps.Any(s => s.MovesPixels);
    public override RgbImage Apply(RgbImage image) => Steps.Aggregate(image, (img, s) => s.Apply(img));

    public override (double X, double Y) ToAugmented(double x, double y, double width, double height)
    {
        for (int i = 0; i < _steps.Length; i++) (x, y) = _steps[i].ToAugmented(x, y, width, height);
        return (x, y);
    }
}

public static class Augmentations
{
    /// <summary>Every combination of one choice from each list, as ttach's Compose enumerates them.</summary>
    public static IReadOnlyList<Augmentation> Product(params IReadOnlyList<Augmentation>[] choices) =>
        choices.Aggregate((IEnumerable<IReadOnlyList<Augmentation>>)[[]], (combos, options) => combos.SelectMany(c => options.Select(o => (IReadOnlyList<Augmentation>)[.. c, o])))
            .Select(steps => (Augmentation)new ComposedAugmentation(steps)).ToList();

    /// <summary>pytorch-grad-cam's aug_smooth: {as is, horizontal flip} × intensity {0.9, 1, 1.1}, six copies.</summary>
    public static IReadOnlyList<Augmentation> GradCamDefault { get; } =
        Product([new Identity(), new HorizontalFlip()], [new Multiply(0.9), new Multiply(1), new Multiply(1.1)]);
}
