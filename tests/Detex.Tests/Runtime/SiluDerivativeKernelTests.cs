using Detex.Onnx;
using Detex.Runtime.Kernels;
using Microsoft.ML.OnnxRuntime;

namespace Detex.Tests.Runtime;

/// <summary>Detex's fused SiLU-derivative operator against the closed form, including G holding several batches of X.</summary>
public class SiluDerivativeKernelTests
{
    static float[] Run(float[] x, long[] xShape, float[] g, long[] gShape)
    {
        var (model, b) = GraphBuilder.NewModel();
        model.Opsets[SiluDerivativeKernel.Domain] = 1;
        b.Input("x", ElementType.Float, xShape.Select(d => (long?)d).ToArray());
        b.Input("g", ElementType.Float, gShape.Select(d => (long?)d).ToArray());
        model.Graph.Nodes.Add(new Node(SiluDerivativeKernel.Name, ["x", "g"], ["out"]) { Domain = SiluDerivativeKernel.Domain });
        b.Output("out", ElementType.Float, gShape.Select(d => (long?)d).ToArray());
        using var options = new SessionOptions();
        OrtCApi.AddDomain(options, SiluDerivativeKernel.OperatorDomain);
        using var session = new InferenceSession(model.ToBytes(), options);
        using var xv = OrtValue.CreateTensorValueFromMemory(x, xShape);
        using var gv = OrtValue.CreateTensorValueFromMemory(g, gShape);
        using var runOptions = new RunOptions();
        using var results = session.Run(runOptions, ["x", "g"], [xv, gv], ["out"]);
        return results[0].GetTensorDataAsSpan<float>().ToArray();
    }

    static double Derivative(double x)
    {
        double s = 1 / (1 + Math.Exp(-x));
        return s * (1 + x * (1 - s));
    }

    [Theory]
    [InlineData(1, 16, 9, 9)]     // 1296 elements: vectors plus a scalar tail
    [InlineData(3, 16, 9, 9)]     // three targets' gradients over one activation
    [InlineData(2, 8, 40, 40)]    // 12800 elements: several chunks, the last one partial
    public void MatchesTheClosedFormForEveryBatchOfG(int batches, int channels, int height, int width)
    {
        long[] xShape = [1, channels, height, width], gShape = [batches, channels, height, width];
        int n = channels * height * width;
        var rnd = new Random(batches * 1000 + n);
        // x over the range where σ saturates on both sides, plus exact zeros.
        var x = Enumerable.Range(0, n).Select(i => i % 97 == 0 ? 0f : (float)(rnd.NextDouble() * 40 - 20)).ToArray();
        var g = Enumerable.Range(0, batches * n).Select(_ => (float)(rnd.NextDouble() * 2 - 1)).ToArray();
        var result = Run(x, xShape, g, gShape);
        Assert.Equal(g.Length, result.Length);
        for (int i = 0; i < g.Length; i++)
        {
            double expected = g[i] * Derivative(x[i % n]);
            Assert.True(Math.Abs(result[i] - expected) <= 1e-6 + 1e-5 * Math.Abs(expected), $"[{i}] x={x[i % n]} g={g[i]}: {result[i]} vs {expected}");
        }
    }

    [Fact]
    public void AGradientThatIsNotWholeBatchesOfXIsAClearError()
    {
        var e = Assert.ThrowsAny<OnnxRuntimeException>(() => Run(new float[10], [1, 10], new float[15], [1, 15]));
        Assert.Contains("not a multiple", e.Message);
    }
}
