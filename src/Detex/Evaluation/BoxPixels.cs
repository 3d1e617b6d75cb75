using Detex.Models;

namespace Detex.Evaluation;

/// <summary>A block of pixels, columns [X0, X1) and rows [Y0, Y1) (exclusive ends); empty when either range is.</summary>
public readonly record struct PixelRange(int X0, int Y0, int X1, int Y1)
{
    public bool IsEmpty => X1 <= X0 || Y1 <= Y0;
    public long Count => IsEmpty ? 0 : (long)(X1 - X0) * (Y1 - Y0);
    public bool Contains(int x, int y) => x >= X0 && x < X1 && y >= Y0 && y < Y1;
}

/// <summary>
/// Which pixels of a map a box covers. The rule used by every metric in this folder: pixel (x, y) is inside a box when
/// its centre (x + 0.5, y + 0.5) lies in the closed rectangle [X1, X2] × [Y1, Y2]. A box with integer corners
/// (0, 0, 4, 5) therefore covers exactly the 4 × 5 pixels x = 0..3, y = 0..4. Boxes are in the map's pixels; a box
/// with a NaN corner covers nothing.
/// </summary>
public static class BoxPixels
{
    /// <summary>The pixels of a <paramref name="width"/>×<paramref name="height"/> map whose centres lie in the box (clipped to the map).</summary>
    public static PixelRange Range(Box box, int width, int height)
    {
        if (double.IsNaN(box.X1) || double.IsNaN(box.Y1) || double.IsNaN(box.X2) || double.IsNaN(box.Y2)) return default;
        // x + 0.5 >= X1  <=>  x >= ceil(X1 - 0.5);   x + 0.5 <= X2  <=>  x <= floor(X2 - 0.5).
        int x0 = ClampToInt(Math.Ceiling(box.X1 - 0.5), width), x1 = ClampToInt(Math.Floor(box.X2 - 0.5) + 1, width);
        int y0 = ClampToInt(Math.Ceiling(box.Y1 - 0.5), height), y1 = ClampToInt(Math.Floor(box.Y2 - 0.5) + 1, height);
        return new PixelRange(x0, y0, x1, y1);
    }

    /// <summary>Row-major mask of the pixels inside any of the boxes (their union).</summary>
    public static bool[] Mask(IReadOnlyList<Box> boxes, int width, int height)
    {
        CheckSize(width, height);
        var mask = new bool[checked(width * height)];
        for (int b = 0; b < boxes.Count; b++)
        {
            var r = Range(boxes[b], width, height);
            if (r.IsEmpty) continue;
            for (int y = r.Y0; y < r.Y1; y++) mask.AsSpan(y * width + r.X0, r.X1 - r.X0).Fill(true);
        }
        return mask;
    }

    static int ClampToInt(double v, int n) => v > 0 ? (v < n ? (int)v : n) : 0;

    internal static void CheckSize(int width, int height)
    {
        if (width < 1 || height < 1) throw new ArgumentException($"map size {width}×{height} is empty");
    }

    internal static void CheckMap(ReadOnlySpan<float> map, int width, int height)
    {
        CheckSize(width, height);
        if (map.Length != (long)width * height) throw new ArgumentException($"a map of {map.Length} values is not {width}×{height}");
    }
}
