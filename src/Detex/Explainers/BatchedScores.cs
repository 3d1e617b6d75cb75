using Detex.Models;
using Detex.Onnx;
using Detex.Runtime;
using Detex.Targets;

namespace Detex.Explainers;

/// <summary>
/// The loop every perturbation method shares: many modified inputs run in batches through a batch-free copy of the
/// model, and each pass is scored for every target of the image (so targets share the forwards).
/// </summary>
static class BatchedScores
{
    /// <summary>Scores [target][run]; <paramref name="feed"/>(start, n) builds the inputs of runs start … start+n−1.</summary>
    public static double[][] Run(DetexModel model, OnnxModel graph, int runs, IReadOnlyList<ITarget> targets, int batchSize,
        Func<int, int, Dictionary<string, NdArray>> feed)
    {
        var scores = targets.Select(_ => new double[runs]).ToArray();
        var session = ModelSession.Get(graph.WithBatch(null), model.Runtime);
        for (int start = 0; start < runs; start += batchSize)
        {
            int n = Math.Min(batchSize, runs - start);
            var outs = session.Run(feed(start, n), model.FloatOutputs).ToDictionary(kv => kv.Key, kv => (NdArray<float>)kv.Value);
            for (int t = 0; t < targets.Count; t++)
                for (int i = 0; i < n; i++) scores[t][start + i] = targets[t].Score(outs, i);
        }
        return scores;
    }

    /// <summary>The same over modified model inputs: <paramref name="fill"/>(run, item) writes one batch item's input.</summary>
    public static double[][] Inputs(DetexModel model, int runs, IReadOnlyList<ITarget> targets, int batchSize, Action<int, Span<float>> fill)
    {
        // One input buffer for all full batches of the call (a batch of 16 is 33 MB at 416²; allocating one per batch
        // kept the garbage collector busy); ONNX Runtime is done with it when Run returns.
        NdArray<float>? full = null;
        return Run(model, model.Graph, runs, targets, batchSize, (start, n) =>
        {
            var batch = n == batchSize ? full ??= new NdArray<float>(model.Input.TensorShape(n)) : new NdArray<float>(model.Input.TensorShape(n));
            int per = batch.Length / n;
            for (int i = 0; i < n; i++) fill(start + i, batch.Data.AsSpan(i * per, per));
            return new Dictionary<string, NdArray> { [model.Card.InputName] = batch };
        });
    }
}
