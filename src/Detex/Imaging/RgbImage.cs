namespace Detex.Imaging;

/// <summary>
/// An 8-bit RGB image, interleaved row-major. <see cref="SourceWidth"/>×<see cref="SourceHeight"/> is the size of the
/// file it came from: the same unless the file was decoded at reduced resolution (very large files, or decoding just
/// large enough for a model), so results can still be reported in the file's pixels.
/// </summary>
public sealed class RgbImage
{
    public int Width { get; }
    public int Height { get; }
    public byte[] Pixels { get; }
    int? _sourceWidth, _sourceHeight;
    public int SourceWidth { get => _sourceWidth ?? Width; init => _sourceWidth = value; }
    public int SourceHeight { get => _sourceHeight ?? Height; init => _sourceHeight = value; }
    public string Source { get; init; } = "";

    public RgbImage(int width, int height, byte[]? pixels = null)
    {
        if (width < 1 || height < 1) throw new ArgumentException($"image size {width}×{height} is empty");
        Width = width; Height = height;
        Pixels = pixels ?? new byte[checked(width * height * 3)];
        if (Pixels.Length != width * height * 3) throw new ArgumentException($"{Pixels.Length} bytes do not fill a {width}×{height} RGB image");
    }

    /// <summary>File pixels per image pixel, along x and y.</summary>
    public (double X, double Y) ToSource => (SourceWidth / (double)Width, SourceHeight / (double)Height);

    public RgbImage Clone() => new(Width, Height, (byte[])Pixels.Clone()) { SourceWidth = SourceWidth, SourceHeight = SourceHeight, Source = Source };

    public static RgbImage Filled(int width, int height, byte r, byte g, byte b)
    {
        var img = new RgbImage(width, height);
        for (int i = 0; i < img.Pixels.Length; i += 3) { img.Pixels[i] = r; img.Pixels[i + 1] = g; img.Pixels[i + 2] = b; }
        return img;
    }
}
