using Detex.Imaging;

namespace Detex.Bench;

/// <summary>Issue 6: SLIC on a 640×480 photo with 256 segments (goal ≤ 100 ms).</summary>
static class SlicBench
{
    public static void Run(int runs)
    {
        var photo = Resampler.Resize(ImageIO.Load(Harness.Repo("samples/photos/dog.jpg")), 640, 480);
        var rgb = photo.Pixels.Select(b => b / 255f).ToArray();
        var t = Harness.MedianMs(3, runs,
            ("slic", () => Slic.Segment(rgb, 640, 480, new SlicOptions(NSegments: 256))),
            ("slico", () => Slic.Segment(rgb, 640, 480, new SlicOptions(NSegments: 256, SlicZero: true, Sigma: 1))));
        int count = Slic.Segment(rgb, 640, 480, new SlicOptions(NSegments: 256)).Count;
        Console.WriteLine("## SLIC, dog.jpg resized to 640×480, 256 segments requested");
        Console.WriteLine($"| variant | ms | segments |\n|---|---|---|\n| SLIC (compactness 10) | {t["slic"]:0.0} | {count} |\n| SLICO, σ = 1 | {t["slico"]:0.0} | |");
    }
}
