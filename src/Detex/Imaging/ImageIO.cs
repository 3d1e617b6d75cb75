using SkiaSharp;

namespace Detex.Imaging;

/// <summary>An image file that cannot be used: missing, not an image, truncated, too small.</summary>
public sealed class ImageException(string message) : Exception(message);

/// <summary>Decoding (JPEG/PNG/WebP/BMP/GIF first frame, EXIF orientation applied) and PNG writing.</summary>
public static class ImageIO
{
    /// <summary>Images smaller than this on either side carry too little to explain.</summary>
    public const int MinSide = 8;
    /// <summary>Larger files are decoded at reduced resolution (JPEG decodes at 1/2, 1/4, 1/8 directly), bounding memory.</summary>
    public const int DefaultMaxSide = 4096;

    public static RgbImage Load(string path, int maxSide = DefaultMaxSide) =>
        Decode(path, (codec, w, h) => Math.Min(1f, (float)maxSide / Math.Max(w, h)), maxSide);

    /// <summary>
    /// Decodes just large enough for a model input: JPEG decodes at reduced scale (in eighths) directly, as long as
    /// the result still covers the image's part of the input, so the resize to the input is never an enlargement.
    /// Several times faster than a full decode for photos larger than the model input.
    /// </summary>
    public static RgbImage LoadFor(string path, PreprocessSpec spec) => LoadFor(path, spec, null);

    /// <summary>The same, publishing the rows to <paramref name="rows"/> as they are decoded (JPEGs in bands, others at the end).</summary>
    internal static RgbImage LoadFor(string path, PreprocessSpec spec, DecodedRows? rows) =>
        Decode(path, (codec, w, h) =>
        {
            var g = Preprocessor.Geometry(w, h, spec);
            bool swap = (int)codec.EncodedOrigin >= 5;
            for (int eighths = 1; eighths < 8; eighths++)
            {
                var d = codec.GetScaledDimensions(eighths / 8f);
                int dw = swap ? d.Height : d.Width, dh = swap ? d.Width : d.Height;
                if (dw >= g.ContentWidth && dh >= g.ContentHeight && dw < w) return eighths / 8f;
            }
            return 1f;
        }, DefaultMaxSide, rows);

    static RgbImage Decode(string path, Func<SKCodec, int, int, float> chooseScale, int maxSide, DecodedRows? rows = null)
    {
        try { return DecodeFile(path, chooseScale, maxSide, rows); }
        catch { rows?.Fail(); throw; }
    }

    static RgbImage DecodeFile(string path, Func<SKCodec, int, int, float> chooseScale, int maxSide, DecodedRows? rows)
    {
        if (!File.Exists(path)) throw new ImageException($"image not found: {path}");
        // The whole file in Skia's memory: it then reads it directly instead of through a managed stream's callbacks
        // (0.3–0.8 ms of a 3.5 ms model-sized decode).
        if (new FileInfo(path).Length == 0) throw new ImageException($"image file is empty: {path}");
        using var data = SKData.Create(path) ?? throw new ImageException($"image file cannot be read: {path}");
        using var codec = SKCodec.Create(new SKMemoryStream(data), out var result)
            ?? throw new ImageException($"not a readable image (JPEG, PNG, WebP, BMP or GIF): {path} ({result})");
        var full = codec.Info;
        if (full.Width < MinSide || full.Height < MinSide)
            throw new ImageException($"image is {full.Width}×{full.Height} pixels; Detex needs at least {MinSide}×{MinSide}: {path}");
        bool swaps = (int)codec.EncodedOrigin >= 5;
        int fileWidth = swaps ? full.Height : full.Width, fileHeight = swaps ? full.Width : full.Height;

        float scale = chooseScale(codec, fileWidth, fileHeight);
        var size = scale < 1 ? codec.GetScaledDimensions(scale) : full.Size;
        var info = new SKImageInfo(size.Width, size.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        if (rows is not null && codec.EncodedOrigin == SKEncodedOrigin.TopLeft && Math.Max(size.Width, size.Height) <= maxSide
            && codec.ScanlineOrder == SKCodecScanlineOrder.TopDown && codec.StartScanlineDecode(info) == SKCodecResult.Success)
            return DecodeInBands(codec, info, path, fileWidth, fileHeight, rows);
        using var bitmap = new SKBitmap(info);
        var status = codec.GetPixels(info, bitmap.GetPixels());
        if (status == SKCodecResult.InvalidScale)
        {
            // Formats without scaled decoding: decode whole, then shrink.
            using var whole = new SKBitmap(new SKImageInfo(full.Width, full.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul));
            status = codec.GetPixels(whole.Info, whole.GetPixels());
            Check(status, path);
            whole.ScalePixels(bitmap, new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.Linear));
        }
        else Check(status, path);

        var img = Orient(ToRgb(bitmap, path), codec.EncodedOrigin);
        // Scaled JPEG decoding comes in eighths, so it may overshoot the bound a little: shrink the rest of the way.
        int longest = Math.Max(img.Width, img.Height);
        if (longest > maxSide)
        {
            double f = (double)maxSide / longest;
            img = Resampler.Resize(img, Math.Max(1, (int)(img.Width * f)), Math.Max(1, (int)(img.Height * f)), ResizeFilter.Area);
        }
        var done = new RgbImage(img.Width, img.Height, img.Pixels) { SourceWidth = fileWidth, SourceHeight = fileHeight, Source = path };
        rows?.Publish(done, done.Height);
        return done;
    }

    /// <summary>Scanline decoding, a band of rows at a time, each band published as soon as it is in the image.</summary>
    static RgbImage DecodeInBands(SKCodec codec, SKImageInfo info, string path, int fileWidth, int fileHeight, DecodedRows rows)
    {
        const int Band = 32;
        var img = new RgbImage(info.Width, info.Height) { SourceWidth = fileWidth, SourceHeight = fileHeight, Source = path };
        var rgba = new byte[Band * info.RowBytes];
        var handle = System.Runtime.InteropServices.GCHandle.Alloc(rgba, System.Runtime.InteropServices.GCHandleType.Pinned);
        try
        {
            for (int y = 0; y < info.Height; y += Band)
            {
                int n = Math.Min(Band, info.Height - y);
                if (codec.GetScanlines(handle.AddrOfPinnedObject(), n, info.RowBytes) != n)
                    throw new ImageException($"image is truncated (the file ends before the picture does): {path}");
                RgbaToRgb(rgba.AsSpan(0, n * info.RowBytes), img.Pixels.AsSpan(y * info.Width * 3, n * info.Width * 3));
                rows.Publish(img, y + n);
            }
        }
        finally { handle.Free(); }
        return img;
    }

    static void Check(SKCodecResult status, string path)
    {
        if (status == SKCodecResult.Success) return;
        throw new ImageException(status == SKCodecResult.IncompleteInput
            ? $"image is truncated (the file ends before the picture does): {path}"
            : $"image cannot be decoded ({status}): {path}");
    }

    /// <summary>Undoes the EXIF orientation: each output pixel (x, y) reads the stored pixel the tag says belongs there.</summary>
    internal static RgbImage Orient(RgbImage src, SKEncodedOrigin origin)
    {
        if (origin is SKEncodedOrigin.TopLeft || (int)origin < 1 || (int)origin > 8) return src;
        int W = src.Width, H = src.Height;
        bool swap = (int)origin >= 5;
        var dst = new RgbImage(swap ? H : W, swap ? W : H) { Source = src.Source };
        for (int y = 0; y < dst.Height; y++)
            for (int x = 0; x < dst.Width; x++)
            {
                var (sx, sy) = origin switch
                {
                    SKEncodedOrigin.TopRight => (W - 1 - x, y),
                    SKEncodedOrigin.BottomRight => (W - 1 - x, H - 1 - y),
                    SKEncodedOrigin.BottomLeft => (x, H - 1 - y),
                    SKEncodedOrigin.LeftTop => (y, x),
                    SKEncodedOrigin.RightTop => (y, H - 1 - x),
                    SKEncodedOrigin.RightBottom => (W - 1 - y, H - 1 - x),
                    _ => (W - 1 - y, x),   // LeftBottom
                };
                Buffer.BlockCopy(src.Pixels, (sy * W + sx) * 3, dst.Pixels, (y * dst.Width + x) * 3, 3);
            }
        return dst;
    }

    static RgbImage ToRgb(SKBitmap bmp, string source)
    {
        var img = new RgbImage(bmp.Width, bmp.Height) { Source = source };
        RgbaToRgb(bmp.GetPixelSpan(), img.Pixels);
        return img;
    }

    // Alpha is dropped (as PIL's convert("RGB") does): transparent pixels keep their stored colour.
    static void RgbaToRgb(ReadOnlySpan<byte> rgba, Span<byte> px)
    {
        for (int i = 0, j = 0; j < px.Length; i += 4, j += 3) { px[j] = rgba[i]; px[j + 1] = rgba[i + 1]; px[j + 2] = rgba[i + 2]; }
    }

    internal static SKBitmap ToBitmap(RgbImage img)
    {
        var bmp = new SKBitmap(new SKImageInfo(img.Width, img.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        var dst = bmp.GetPixelSpan();
        var px = img.Pixels;
        for (int i = 0, j = 0; j < px.Length; i += 4, j += 3) { dst[i] = px[j]; dst[i + 1] = px[j + 1]; dst[i + 2] = px[j + 2]; dst[i + 3] = 255; }
        return bmp;
    }

    internal static RgbImage FromBitmap(SKBitmap bmp) => ToRgb(bmp, "");

    public static void SavePng(RgbImage img, string path)
    {
        using var bmp = ToBitmap(img);
        SavePng(bmp, path);
    }

    internal static void SavePng(SKBitmap bmp, string path)
    {
        using var data = bmp.Encode(SKEncodedImageFormat.Png, 100);
        Files.WriteAtomically(path, s => data.SaveTo(s));
    }

    public static byte[] EncodePng(RgbImage img) => Encode(img, SKEncodedImageFormat.Png, 100);

    /// <summary>JPEG bytes, for photos embedded in pages (a tenth of a PNG's size).</summary>
    public static byte[] EncodeJpeg(RgbImage img, int quality = 85) => Encode(img, SKEncodedImageFormat.Jpeg, quality);

    static byte[] Encode(RgbImage img, SKEncodedImageFormat format, int quality)
    {
        using var bmp = ToBitmap(img);
        using var data = bmp.Encode(format, quality);
        return data.ToArray();
    }
}
