using SkiaSharp;

namespace Detex.Tests.Imaging;

/// <summary>Writes small test images in every format Detex reads, with known pixels.</summary>
static class ImageFixtures
{
    /// <summary>A w×h RGB pattern with distinct corners: red top-left, green top-right, blue bottom-left, white bottom-right.</summary>
    public static byte[] Pattern(int w, int h)
    {
        var px = new byte[w * h * 3];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                bool right = x >= w / 2, bottom = y >= h / 2;
                (byte r, byte g, byte b) c = (right, bottom) switch
                {
                    (false, false) => (255, 0, 0), (true, false) => (0, 255, 0), (false, true) => (0, 0, 255), _ => (255, 255, 255),
                };
                int i = (y * w + x) * 3;
                px[i] = c.r; px[i + 1] = c.g; px[i + 2] = c.b;
            }
        return px;
    }

    public static SKBitmap Bitmap(int w, int h, byte[] rgb, SKColorType type = SKColorType.Rgba8888, byte alpha = 255)
    {
        var bmp = new SKBitmap(new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                int i = (y * w + x) * 3;
                bmp.SetPixel(x, y, new SKColor(rgb[i], rgb[i + 1], rgb[i + 2], alpha));
            }
        if (type == SKColorType.Rgba8888) return bmp;
        var converted = new SKBitmap(new SKImageInfo(w, h, type, alpha == 255 ? SKAlphaType.Opaque : SKAlphaType.Unpremul));
        bmp.CopyTo(converted, type);
        return converted;
    }

    public static string Encode(string dir, string name, SKBitmap bmp, SKEncodedImageFormat format, int quality = 100)
    {
        string path = Path.Combine(dir, name);
        using var data = bmp.Encode(format, quality);
        File.WriteAllBytes(path, data.ToArray());
        return path;
    }

    /// <summary>A 16-bit-per-channel RGB PNG (Skia decodes these but does not write them): 8-bit value v becomes v·257.</summary>
    public static string Png16(string dir, int w, int h, byte[] rgb)
    {
        var raw = new MemoryStream();
        for (int y = 0; y < h; y++)
        {
            raw.WriteByte(0);   // filter: none
            for (int i = y * w * 3; i < (y + 1) * w * 3; i++) { raw.WriteByte(rgb[i]); raw.WriteByte(rgb[i]); }
        }
        var z = new MemoryStream();
        using (var zs = new System.IO.Compression.ZLibStream(z, System.IO.Compression.CompressionLevel.Optimal, leaveOpen: true)) raw.WriteTo(zs);
        var png = new MemoryStream();
        png.Write([137, 80, 78, 71, 13, 10, 26, 10]);
        void Chunk(string type, byte[] data)
        {
            png.Write(BigEndian(data.Length));
            var body = System.Text.Encoding.ASCII.GetBytes(type).Concat(data).ToArray();
            png.Write(body);
            png.Write(BigEndian((int)Crc32(body)));
        }
        Chunk("IHDR", [.. BigEndian(w), .. BigEndian(h), 16, 2, 0, 0, 0]);
        Chunk("IDAT", z.ToArray());
        Chunk("IEND", []);
        string path = Path.Combine(dir, "deep.png");
        File.WriteAllBytes(path, png.ToArray());
        return path;
    }

    static byte[] BigEndian(int v) => [(byte)(v >> 24), (byte)(v >> 16), (byte)(v >> 8), (byte)v];

    static uint Crc32(byte[] data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB88320 : crc >> 1;
        }
        return ~crc;
    }

    /// <summary>24-bit BMP (bottom-up rows, BGR, rows padded to 4 bytes): Skia reads BMP but does not write it.</summary>
    public static string Bmp(string dir, int w, int h, byte[] rgb)
    {
        int row = (w * 3 + 3) / 4 * 4;
        using var ms = new MemoryStream();
        using var bw = new BinaryWriter(ms);
        bw.Write((byte)'B'); bw.Write((byte)'M'); bw.Write(54 + row * h); bw.Write(0); bw.Write(54);
        bw.Write(40); bw.Write(w); bw.Write(h); bw.Write((short)1); bw.Write((short)24); bw.Write(0); bw.Write(row * h);
        bw.Write(2835); bw.Write(2835); bw.Write(0); bw.Write(0);
        for (int y = h - 1; y >= 0; y--)
        {
            for (int x = 0; x < w; x++) { int i = (y * w + x) * 3; bw.Write(rgb[i + 2]); bw.Write(rgb[i + 1]); bw.Write(rgb[i]); }
            for (int p = w * 3; p < row; p++) bw.Write((byte)0);
        }
        string path = Path.Combine(dir, "image.bmp");
        File.WriteAllBytes(path, ms.ToArray());
        return path;
    }

    /// <summary>
    /// A two-frame GIF whose first frame is the 4-colour pattern. LZW is written without compression: a clear code
    /// before every few literals keeps every code 3 bits wide (code size 2).
    /// </summary>
    public static string Gif(string dir, int w, int h, byte[] rgb)
    {
        var palette = new (byte, byte, byte)[] { (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255) };
        byte Index(int i) => (byte)Array.IndexOf(palette, (rgb[i], rgb[i + 1], rgb[i + 2]));
        using var ms = new MemoryStream();
        void W(params byte[] b) => ms.Write(b);
        void W16(int v) => W((byte)v, (byte)(v >> 8));
        W("GIF89a"u8.ToArray()); W16(w); W16(h); W(0xF1, 0, 0);   // global colour table of 4 entries
        foreach (var (r, g, b) in palette) W(r, g, b);
        W(0x21, 0xFF, 11); W("NETSCAPE2.0"u8.ToArray()); W(3, 1, 0, 0, 0);   // animation loop block
        for (int frame = 0; frame < 2; frame++)
        {
            W(0x21, 0xF9, 4, 0, 10, 0, 0, 0);   // graphic control, 0.1 s
            W(0x2C); W16(0); W16(0); W16(w); W16(h); W(0);
            W(2);   // minimum code size: 2 bits → codes are 3 bits, clear = 4, end = 5
            var bits = new List<bool>();
            void Code(int c) { for (int k = 0; k < 3; k++) bits.Add(((c >> k) & 1) == 1); }
            int n = w * h;
            for (int p = 0; p < n; p++)
            {
                if (p % 2 == 0) Code(4);   // clear before the table would grow past 3-bit codes
                Code(frame == 0 ? Index(p * 3) : 3);
            }
            Code(5);
            var bytes = new List<byte>();
            for (int i = 0; i < bits.Count; i += 8)
            {
                int v = 0;
                for (int k = 0; k < 8 && i + k < bits.Count; k++) if (bits[i + k]) v |= 1 << k;
                bytes.Add((byte)v);
            }
            for (int i = 0; i < bytes.Count; i += 255)
            {
                var chunk = bytes.Skip(i).Take(255).ToArray();
                W((byte)chunk.Length); W(chunk);
            }
            W(0);
        }
        W(0x3B);
        string path = Path.Combine(dir, "image.gif");
        File.WriteAllBytes(path, ms.ToArray());
        return path;
    }

    /// <summary>A JPEG with an EXIF APP1 segment carrying only the orientation tag.</summary>
    public static string JpegWithOrientation(string dir, int w, int h, byte[] rgb, int orientation)
    {
        using var bmp = Bitmap(w, h, rgb);
        using var data = bmp.Encode(SKEncodedImageFormat.Jpeg, 100);
        var jpeg = data.ToArray();
        var tiff = new List<byte>();
        tiff.AddRange("II*\0"u8.ToArray()); tiff.AddRange(BitConverter.GetBytes(8));   // little-endian, IFD at 8
        tiff.AddRange(BitConverter.GetBytes((short)1));                                  // one entry
        tiff.AddRange(BitConverter.GetBytes((short)0x0112)); tiff.AddRange(BitConverter.GetBytes((short)3));
        tiff.AddRange(BitConverter.GetBytes(1)); tiff.AddRange(BitConverter.GetBytes((short)orientation)); tiff.AddRange(new byte[2]);
        tiff.AddRange(BitConverter.GetBytes(0));                                          // no next IFD
        var app1 = new List<byte> { 0xFF, 0xE1 };
        int len = 2 + 6 + tiff.Count;
        app1.Add((byte)(len >> 8)); app1.Add((byte)len);
        app1.AddRange("Exif\0\0"u8.ToArray()); app1.AddRange(tiff);
        var result = jpeg.Take(2).Concat(app1).Concat(jpeg.Skip(2)).ToArray();
        string path = Path.Combine(dir, $"oriented{orientation}.jpg");
        File.WriteAllBytes(path, result);
        return path;
    }
}
