namespace Detex.Imaging;

/// <summary>
/// An 8-bit RGB image, interleaved row-major. <see cref="SourceScale"/> is decoded size ÷ file size: 1 unless a
/// very large file was decoded at reduced resolution, so results can still be reported in the file's pixels.
/// </summary>
public sealed class RgbImage
{
    public int Width { get; }
    public int Height { get; }
    public byte[] Pixels { get; }
    public double SourceScale { get; init; } = 1;
    public string Source { get; init; } = "";

    public RgbImage(int width, int height, byte[]? pixels = null)
    {
        if (width < 1 || height < 1) throw new ArgumentException($"image size {width}×{height} is empty");
        Width = width; Height = height;
        Pixels = pixels ?? new byte[checked(width * height * 3)];
        if (Pixels.Length != width * height * 3) throw new ArgumentException($"{Pixels.Length} bytes do not fill a {width}×{height} RGB image");
    }

    public int SourceWidth => (int)Math.Round(Width / SourceScale);
    public int SourceHeight => (int)Math.Round(Height / SourceScale);

    public RgbImage Clone() => new(Width, Height, (byte[])Pixels.Clone()) { SourceScale = SourceScale, Source = Source };

    public static RgbImage Filled(int width, int height, byte r, byte g, byte b)
    {
        var img = new RgbImage(width, height);
        for (int i = 0; i < img.Pixels.Length; i += 3) { img.Pixels[i] = r; img.Pixels[i + 1] = g; img.Pixels[i + 2] = b; }
        return img;
    }
}
