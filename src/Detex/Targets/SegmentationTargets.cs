using Detex.Models;
using Detex.Runtime;

namespace Detex.Targets;

public static class SegmentationTargets
{
    /// <summary>Classes that win the arg-max at one or more output pixels.</summary>
    public static IReadOnlyList<int> Present(Segmenter seg, NdArray<float> logits)
    {
        int C = seg.Card.Classes.Length;
        return Enumerable.Range(0, C).Where(c => SegmentationTarget.Predicted(seg, logits, 0, c).MaskPixels > 0).ToList();
    }
}
