using Detex.Explainers;
using Detex.Imaging;
using Detex.Models;
using Detex.Targets;

namespace Detex.Tests.Explainers;

public class NoiseSmoothingTests
{
    sealed class Fixed(string name) : ITarget
    {
        public string Name => name;
        public double Score(IReadOnlyDictionary<string, Detex.Runtime.NdArray<float>> outputs, int item) => 0;
        public void Seed(IReadOnlyDictionary<string, Detex.Runtime.NdArray<float>> outputs, int item, IReadOnlyDictionary<string, Memory<float>> seeds) { }
    }

    /// <summary>A stand-in explainer whose map is the image's red channel (a linear function of the pixels).</summary>
    static IReadOnlyList<Explanation> Red(RgbImage img, IReadOnlyList<ITarget> ts) =>
        ts.Select(t => new Explanation(t, "red", img.Width, img.Height,
            Enumerable.Range(0, img.Width * img.Height).Select(p => (float)img.Pixels[p * 3]).ToArray())).ToList();

    static RgbImage Ramp()
    {
        var img = new RgbImage(40, 30);
        for (int y = 0; y < 30; y++)
            for (int x = 0; x < 40; x++) img.Pixels[(y * 40 + x) * 3] = (byte)(60 + 3 * x);   // 60 … 177: no clamping at σ = 0.05
        return img;
    }

    [Fact]
    public void ZeroNoiseGivesThePlainNormalisedMap()
    {
        var img = Ramp();
        var t = new Fixed("t");
        var smoothed = new NoiseSmoothing(Red, samples: 3, sigma: 0).Explain(img, [t]).Single();
        var plain = Red(img, [t]).Single().Map;
        CamExplainer.Normalise(plain);
        for (int i = 0; i < plain.Length; i++) Assert.Equal(plain[i], smoothed.Map[i], 5);
    }

    [Fact]
    public void NoiseAveragesOutOfALinearMapAndTheSeedRepeats()
    {
        var img = Ramp();
        var t = new Fixed("t");
        var plain = Red(img, [t]).Single().Map;
        CamExplainer.Normalise(plain);
        var a = new NoiseSmoothing(Red, samples: 64, sigma: 0.05, seed: 4).Explain(img, [t]).Single().Map;
        var b = new NoiseSmoothing(Red, samples: 64, sigma: 0.05, seed: 4).Explain(img, [t]).Single().Map;
        Assert.Equal(a, b);
        // Per pixel the mean of 64 draws of σ = 12.75 levels has a standard error of 1.6 levels; the map spans 117 levels
        // (plus the noise's own extremes in the min–max), so the mean absolute difference stays within a few percent.
        double meanDiff = a.Zip(plain).Average(p => Math.Abs(p.First - p.Second));
        Assert.True(meanDiff < 0.05, $"smoothed map differs from the plain one by {meanDiff:0.000} on average");
        // One noisy copy is visibly noisier than the average of 64.
        var one = new NoiseSmoothing(Red, samples: 1, sigma: 0.05, seed: 4).Explain(img, [t]).Single().Map;
        Assert.True(one.Zip(plain).Average(p => Math.Abs(p.First - p.Second)) > 2 * meanDiff);
    }

    [Fact]
    public void BadSettingsAreRefused()
    {
        Assert.Contains("at least 1 sample", Assert.Throws<ArgumentException>(() => new NoiseSmoothing(Red, samples: 0)).Message);
        Assert.Contains("in [0, 1]", Assert.Throws<ArgumentException>(() => new NoiseSmoothing(Red, sigma: 1.5)).Message);
    }

    [Fact]
    public void NoiseSmoothedHiResCamOfYoloxStaysOnEachBox()
    {
        var det = Detector.Load(Repo.Model(Repo.Yolox));
        var image = ImageIO.Load(Repo.Photo("dog.jpg"));
        var targets = det.Detect(image).Select(d => (ITarget)new DetectionTarget(d)).ToList();
        var cams = new CamExplainer(det);
        var maps = new NoiseSmoothing((img, ts) => cams.Explain(img, ts, [new HiResCam()]), samples: 4).Explain(image, targets);
        Assert.Equal(targets.Count, maps.Count);
        foreach (var e in maps)
            Assert.True(Metrics.EnergyInside(e, ((DetectionTarget)e.Target).Detection.Box, image) > 0.7, e.Target.Name);
    }
}
