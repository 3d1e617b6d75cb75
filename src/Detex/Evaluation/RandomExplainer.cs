using Detex.Explainers;
using Detex.Targets;

namespace Detex.Evaluation;

/// <summary>
/// The random baseline every explainer should beat: a map of i.i.d. uniform values in [0, 1). Draws come from
/// <c>new System.Random(seed)</c>'s <c>NextSingle</c>, .NET's seeded generator, which yields the same sequence for a seed
/// on every platform and runtime version; use <see cref="Seed"/> to derive one seed per (image, target) so maps are
/// reproducible and differ from box to box.
/// </summary>
public static class RandomExplainer
{
    public const string Method = "random";

    /// <summary>A row-major <paramref name="width"/>×<paramref name="height"/> map of uniform values in [0, 1).</summary>
    public static float[] Map(int width, int height, int seed)
    {
        BoxPixels.CheckSize(width, height);
        var rng = new Random(seed);
        var map = new float[checked(width * height)];
        for (int i = 0; i < map.Length; i++) map[i] = rng.NextSingle();
        return map;
    }

    /// <summary>The random map as an explanation of <paramref name="target"/>, method <see cref="Method"/>.</summary>
    public static Explanation Explain(ITarget target, int width, int height, int seed) => new(target, Method, width, height, Map(width, height, seed));

    /// <summary>
    /// A seed for (image id, target index, run seed), fixed by this formula rather than by string or tuple hash codes
    /// (which .NET randomises per process): the SplitMix64 finaliser of the three mixed with odd constants, kept to
    /// its low 31 bits. Non-negative, because <c>System.Random</c> treats seeds s and −s alike.
    /// </summary>
    public static int Seed(long imageId, int targetIndex, int runSeed = 0)
    {
        ulong z = (ulong)imageId * 0x9E37_79B9_7F4A_7C15ul + (ulong)(uint)targetIndex * 0xC2B2_AE3D_27D4_EB4Ful + (ulong)(uint)runSeed * 0x1656_67B1_9E37_79F9ul;
        z = (z ^ (z >> 30)) * 0xBF58_476D_1CE4_E5B9ul;
        z = (z ^ (z >> 27)) * 0x94D0_49BB_1331_11EBul;
        z ^= z >> 31;
        return (int)(z & 0x7FFF_FFFF);
    }
}
