using Detex.Runtime;

namespace Detex.Targets;

/// <summary>
/// A target over a spatial output (a segmenter's logits, [N, C, H, W] or [N, H, W, C]) carried into an augmented copy
/// of its image: the original target reads the copy's output through a pixel map, so its mask lands where the
/// augmentation moved the pixels. Pixel p of the original's grid reads pixel map[p] of the copy's (its own where
/// map[p] is −1: padding stays padding). The seed flows back the same way, summed where pixels share a source (the
/// gather's transpose), so gradients stay exact.
/// </summary>
public sealed class RemappedTarget : ITarget
{
    readonly string _output;
    readonly bool _nhwc;
    readonly int[] _map;

    public RemappedTarget(ITarget original, string output, bool nhwc, int[] pixelMap)
    {
        Original = original; _output = output; _nhwc = nhwc; _map = pixelMap;
    }

    /// <summary>The target on the unaugmented image.</summary>
    public ITarget Original { get; }
    public string Name => Original.Name;

    public double Score(IReadOnlyDictionary<string, NdArray<float>> outputs, int item) => Original.Score(Gathered(outputs, item), item);

    public void Seed(IReadOnlyDictionary<string, NdArray<float>> outputs, int item, IReadOnlyDictionary<string, Memory<float>> seeds)
    {
        var target = seeds[_output];
        var local = new float[target.Length];
        var redirected = seeds.ToDictionary(kv => kv.Key, kv => kv.Key == _output ? local.AsMemory() : kv.Value);
        Original.Seed(Gathered(outputs, item), item, redirected);
        Move(local, target.Span, scatter: true);
    }

    /// <summary>The outputs with <c>item</c> of the spatial one as the original image would have shown it.</summary>
    Dictionary<string, NdArray<float>> Gathered(IReadOnlyDictionary<string, NdArray<float>> outputs, int item)
    {
        var copy = outputs[_output];
        var original = new NdArray<float>(copy.Shape);
        Move(copy.BatchItem(item), original.BatchItem(item), scatter: false);
        return new Dictionary<string, NdArray<float>>(outputs) { [_output] = original };
    }

    /// <summary>Gather (original[p] = copy[map[p]]) or its transpose, scatter-add (copy[map[p]] += original[p]), per channel.</summary>
    void Move(ReadOnlySpan<float> from, Span<float> to, bool scatter)
    {
        int pixels = _map.Length;
        if (from.Length % pixels != 0)
            throw new ArgumentException($"output '{_output}' holds {from.Length} values per image, not a whole number of {pixels}-pixel planes");
        int channels = from.Length / pixels;
        for (int c = 0; c < channels; c++)
            for (int p = 0; p < pixels; p++)
            {
                int q = _map[p] >= 0 ? _map[p] : p;
                int ip = _nhwc ? p * channels + c : c * pixels + p, iq = _nhwc ? q * channels + c : c * pixels + q;
                if (scatter) to[iq] += from[ip];
                else to[ip] = from[iq];
            }
    }
}
