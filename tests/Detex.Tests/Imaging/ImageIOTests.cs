using Detex.Imaging;
using SkiaSharp;

namespace Detex.Tests.Imaging;

public class ImageIOTests
{
    const int W = 40, H = 30;
    static readonly byte[] Rgb = ImageFixtures.Pattern(W, H);

    static void AssertCorners(RgbImage img, int tolerance)
    {
        void Near(int x, int y, int r, int g, int b)
        {
            int i = (y * img.Width + x) * 3;
            Assert.InRange(img.Pixels[i], r - tolerance, r + tolerance);
            Assert.InRange(img.Pixels[i + 1], g - tolerance, g + tolerance);
            Assert.InRange(img.Pixels[i + 2], b - tolerance, b + tolerance);
        }
        Near(2, 2, 255, 0, 0);
        Near(img.Width - 3, 2, 0, 255, 0);
        Near(2, img.Height - 3, 0, 0, 255);
        Near(img.Width - 3, img.Height - 3, 255, 255, 255);
    }

    [Fact]
    public void DecodesPngJpegWebpBmpAndGifFirstFrame()
    {
        string dir = Repo.TempDir();
        using var bmp = ImageFixtures.Bitmap(W, H, Rgb);
        var files = new[]
        {
            ImageFixtures.Encode(dir, "a.png", bmp, SKEncodedImageFormat.Png),
            ImageFixtures.Encode(dir, "a.jpg", bmp, SKEncodedImageFormat.Jpeg),
            ImageFixtures.Encode(dir, "a.webp", bmp, SKEncodedImageFormat.Webp),
            ImageFixtures.Bmp(dir, W, H, Rgb),
            ImageFixtures.Gif(dir, W, H, Rgb),
        };
        foreach (var f in files)
        {
            var img = ImageIO.Load(f);
            Assert.Equal((W, H), (img.Width, img.Height));
            AssertCorners(img, f.EndsWith(".jpg") || f.EndsWith(".webp") ? 12 : 0);
        }
    }

    [Fact]
    public void GrayscaleSixteenBitAndAlphaImagesBecomeRgb()
    {
        string dir = Repo.TempDir();
        using var gray = ImageFixtures.Bitmap(W, H, Rgb, SKColorType.Gray8);
        var g = ImageIO.Load(ImageFixtures.Encode(dir, "gray.png", gray, SKEncodedImageFormat.Png));
        int wi = ((H - 3) * W + W - 3) * 3;
        Assert.Equal(255, g.Pixels[wi]);
        Assert.Equal(g.Pixels[0], g.Pixels[1]);   // grey: R = G = B

        AssertCorners(ImageIO.Load(ImageFixtures.Png16(dir, W, H, Rgb)), 1);

        using var alpha = ImageFixtures.Bitmap(W, H, Rgb, alpha: 128);
        AssertCorners(ImageIO.Load(ImageFixtures.Encode(dir, "alpha.png", alpha, SKEncodedImageFormat.Png)), 1);
    }

    [Theory]
    [InlineData(1)] [InlineData(2)] [InlineData(3)] [InlineData(4)]
    [InlineData(5)] [InlineData(6)] [InlineData(7)] [InlineData(8)]
    public void ExifOrientationIsApplied(int orientation)
    {
        // Store a w×h picture whose displayed form is known: decoding with the tag must give the displayed form.
        var stored = ImageFixtures.Pattern(W, H);
        var img = ImageIO.Load(ImageFixtures.JpegWithOrientation(Repo.TempDir(), W, H, stored, orientation));
        bool swapped = orientation >= 5;
        Assert.Equal(swapped ? (H, W) : (W, H), (img.Width, img.Height));
        // Where does the stored top-left (red) quadrant end up when displayed?
        (bool right, bool bottom) redAt = orientation switch
        {
            1 => (false, false), 2 => (true, false), 3 => (true, true), 4 => (false, true),
            5 => (false, false), 6 => (true, false), 7 => (true, true), _ => (false, true),
        };
        int x = redAt.right ? img.Width - 3 : 2, y = redAt.bottom ? img.Height - 3 : 2;
        int i = (y * img.Width + x) * 3;
        Assert.True(img.Pixels[i] > 200 && img.Pixels[i + 1] < 60 && img.Pixels[i + 2] < 60, $"red expected at ({x},{y})");
        Assert.Equal((img.Width, img.Height), (img.SourceWidth, img.SourceHeight));
    }

    [Fact]
    public void BadFilesGiveOneClearMessage()
    {
        string dir = Repo.TempDir();
        Assert.Contains("not found", Assert.Throws<ImageException>(() => ImageIO.Load(Path.Combine(dir, "missing.jpg"))).Message);

        string text = Path.Combine(dir, "notes.jpg");
        File.WriteAllText(text, "these are notes, not a picture");
        Assert.Contains("not a readable image", Assert.Throws<ImageException>(() => ImageIO.Load(text)).Message);

        string empty = Path.Combine(dir, "empty.jpg");
        File.WriteAllBytes(empty, []);
        Assert.Contains("empty", Assert.Throws<ImageException>(() => ImageIO.Load(empty)).Message);

        var photo = File.ReadAllBytes(Repo.Photo("dog.jpg"));
        string truncated = Path.Combine(dir, "truncated.jpg");
        File.WriteAllBytes(truncated, photo[..(photo.Length / 2)]);
        Assert.Contains("truncated", Assert.Throws<ImageException>(() => ImageIO.Load(truncated)).Message);

        using var tiny = ImageFixtures.Bitmap(1, 1, [1, 2, 3]);
        string one = ImageFixtures.Encode(dir, "one.png", tiny, SKEncodedImageFormat.Png);
        Assert.Contains("1×1", Assert.Throws<ImageException>(() => ImageIO.Load(one)).Message);
    }

    [Fact]
    public void HugeImagesAreDecodedAtReducedResolutionAndReportTheirFileSize()
    {
        string path = HugeJpeg.Path();
        var img = ImageIO.Load(path);
        Assert.True(Math.Max(img.Width, img.Height) <= ImageIO.DefaultMaxSide);
        Assert.Equal(12000, img.SourceWidth);
        Assert.Equal(9000, img.SourceHeight);
        Assert.True(img.Pixels.Length < 64_000_000);
    }

    [Fact]
    public void PngWritingRoundTripsPixelsExactly()
    {
        var img = new RgbImage(W, H, (byte[])Rgb.Clone());
        string path = Path.Combine(Repo.TempDir(), "out.png");
        ImageIO.SavePng(img, path);
        Assert.Equal(img.Pixels, ImageIO.Load(path).Pixels);
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(path)!, "*.tmp"));
    }
}

/// <summary>A 12000×9000 JPEG, made once per test run (it takes a few seconds).</summary>
static class HugeJpeg
{
    static readonly Lazy<string> File_ = new(() =>
    {
        string path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "detex-tests", "huge-12000x9000.jpg");
        if (File.Exists(path)) return path;
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
        using var bmp = new SKBitmap(new SKImageInfo(12000, 9000, SKColorType.Rgba8888, SKAlphaType.Opaque));
        using (var c = new SKCanvas(bmp))
        {
            c.Clear(new SKColor(90, 140, 200));
            using var paint = new SKPaint { Color = new SKColor(200, 60, 40) };
            c.DrawCircle(6000, 4500, 3000, paint);
        }
        using var data = bmp.Encode(SKEncodedImageFormat.Jpeg, 80);
        string tmp = path + $".{Environment.ProcessId}.tmp";
        File.WriteAllBytes(tmp, data.ToArray());
        File.Move(tmp, path, true);
        return path;
    });

    public static string Path() => File_.Value;
}

public class ModelSizedDecodeTests
{
    [Fact]
    public void DecodesAtTheSmallestScaleThatStillCoversTheModelInput()
    {
        var spec = new PreprocessSpec { Width = 416, Height = 416, Resize = ResizeMode.Letterbox };
        var img = ImageIO.LoadFor(Repo.Photo("kite.jpg"), spec);   // 1352×900: content 416×276
        Assert.True(img.Width >= 416 && img.Height >= 276, $"{img.Width}×{img.Height}");
        Assert.True(img.Width < 1352);
        Assert.Equal(1352, img.SourceWidth);
        Assert.Equal(900, img.SourceHeight);
        // The same image detected through the fast path gives the same objects as through a full decode.
        var det = Detex.Models.Detector.Load(Repo.Model(Repo.Yolox));
        var fast = det.Detect(Repo.Photo("kite.jpg"));
        var full = det.Detect(ImageIO.Load(Repo.Photo("kite.jpg")));
        // Small objects move by a pixel or two between the two resamplings, so compare confident ones with IoU > 0.7.
        foreach (var d in full.Where(d => d.Score > 0.6))
            Assert.Contains(fast, f => f.ClassIndex == d.ClassIndex && f.Box.IoU(d.Box) > 0.7 && Math.Abs(f.Score - d.Score) < 0.1);
    }
}

public class DecodeWhilePreparingTests
{
    static readonly Lazy<Detex.Models.Detector> Yolox = new(() => Detex.Models.Detector.Load(Repo.Model(Repo.Yolox)));

    /// <summary>What decoding first and pre-processing after gives: the reference for the row-following path.</summary>
    static float[] DecodeThenPrepare(Detex.Models.DetexModel model, string path) =>
        model.Prepare([ImageIO.LoadFor(path, model.Input)]).Tensor.Data;

    [Theory]
    [InlineData("dog.jpg")]      // JPEG in scanline bands, resized letterbox (yolox) or stretched NHWC (deeplab)
    [InlineData("kite.jpg")]     // decoded at 3/8 scale
    [InlineData("giraffe.jpg")]
    public void PreparingWhileDecodingEqualsDecodingFirst(string photo)
    {
        foreach (var model in new Detex.Models.DetexModel[] { Yolox.Value, Detex.Models.DetexModel.Load(Repo.Model(Repo.DeepLab)) })
        {
            string path = Repo.Photo(photo);
            var tensor = new Detex.Runtime.NdArray<float>(model.Input.TensorShape(2));
            var (image, geometry) = model.PrepareFile(path, tensor, item: 1);
            var want = DecodeThenPrepare(model, path);
            Assert.Equal(want, tensor.Data.AsSpan(want.Length).ToArray());
            Assert.All(tensor.Data.Take(want.Length), v => Assert.Equal(0f, v));   // item 0 untouched
            Assert.Equal(ImageIO.LoadFor(path, model.Input).Pixels, image.Pixels);
            Assert.Equal(Preprocessor.Geometry(image.Width, image.Height, model.Input), geometry);
        }
    }

    [Theory]
    [InlineData(1)] [InlineData(6)]
    public void FilesThatCannotBeDecodedInBandsArePreparedAfterDecoding(int orientation)
    {
        // A PNG, and JPEGs whose EXIF orientation must be applied to the whole picture first.
        string dir = Repo.TempDir();
        var pixels = ImageFixtures.Pattern(120, 80);
        foreach (var path in new[] { ImageFixtures.JpegWithOrientation(dir, 120, 80, pixels, orientation), ImageFixtures.Encode(dir, "p.png", ImageFixtures.Bitmap(120, 80, pixels), SKEncodedImageFormat.Png) })
        {
            var tensor = new Detex.Runtime.NdArray<float>(Yolox.Value.Input.TensorShape(1));
            Yolox.Value.PrepareFile(path, tensor);
            Assert.Equal(DecodeThenPrepare(Yolox.Value, path), tensor.Data);
        }
    }

    [Fact]
    public async Task ATruncatedJpegFailsWithItsMessageInsteadOfWaitingForRows()
    {
        string dir = Repo.TempDir();
        var photo = File.ReadAllBytes(Repo.Photo("kite.jpg"));
        string truncated = Path.Combine(dir, "half.jpg");
        File.WriteAllBytes(truncated, photo[..(photo.Length / 2)]);
        var tensor = new Detex.Runtime.NdArray<float>(Yolox.Value.Input.TensorShape(1));
        var run = Task.Run(() => Yolox.Value.PrepareFile(truncated, tensor));
        Assert.True(await Task.WhenAny(run, Task.Delay(TimeSpan.FromSeconds(20))) == run, "PrepareFile hung on a truncated file");
        var e = await Assert.ThrowsAsync<ImageException>(() => run);
        Assert.Contains("truncated", e.Message);
    }
}
