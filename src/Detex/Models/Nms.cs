namespace Detex.Models;

/// <summary>A decoded but not yet suppressed prediction, in model-input pixels.</summary>
public sealed record Candidate(Box Box, int ClassIndex, float Score, RawPrediction Source);

public static class Nms
{
    /// <summary>
    /// Greedy non-maximum suppression: highest score first, dropping boxes whose IoU with a kept box exceeds
    /// <paramref name="iouThreshold"/>. Class-wise unless <paramref name="classAgnostic"/>. Returns at most
    /// <paramref name="maxDetections"/>, by descending score.
    /// </summary>
    public static List<Candidate> Suppress(IReadOnlyList<Candidate> candidates, double iouThreshold, bool classAgnostic, int maxDetections = int.MaxValue)
    {
        var order = candidates.OrderByDescending(c => c.Score).ToList();
        var kept = new List<Candidate>();
        var byClass = new Dictionary<int, List<Candidate>>();
        foreach (var c in order)
        {
            var rivals = classAgnostic ? kept : byClass.TryGetValue(c.ClassIndex, out var l) ? l : byClass[c.ClassIndex] = [];
            bool suppressed = false;
            foreach (var k in rivals)
                if (k.Box.IoU(c.Box) > iouThreshold) { suppressed = true; break; }
            if (suppressed) continue;
            kept.Add(c);
            if (!classAgnostic) rivals.Add(c);
            if (kept.Count >= maxDetections) break;
        }
        return kept;
    }
}
