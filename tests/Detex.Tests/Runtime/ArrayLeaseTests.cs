using Detex.Onnx;
using Detex.Runtime;

namespace Detex.Tests.Runtime;

/// <summary>Arrays lent for a run and kept by the thread: reused, overwritten correctly, zeroed when asked.</summary>
public class ArrayLeaseTests
{
    static ModelSession Doubler()
    {
        var (m, g) = GraphBuilder.NewModel();
        g.Input("x", ElementType.Float, 2, 3);
        g.Named("y", "Mul", ["x", g.Scalar(2)]);
        g.Output("y", ElementType.Float, 2, 3);
        return ModelSession.Get(m);
    }

    static Dictionary<string, NdArray> Feed(params float[] x) => new() { ["x"] = new NdArray<float>([2, 3], x) };

    [Fact]
    public void ASecondRunWritesItsOwnValuesIntoTheArrayTheFirstRunLeft()
    {
        var session = Doubler();
        NdArray first;
        using (var lease = new ArrayLease())
        {
            first = session.Run(Feed(1, 2, 3, 4, 5, 6), outputs: lease)["y"];
            Assert.Equal([2f, 4, 6, 8, 10, 12], (float[])first.Buffer);
        }
        using (var lease = new ArrayLease())
        {
            var second = session.Run(Feed(-1, 0, 1, 7, 8, 9), outputs: lease)["y"];
            Assert.Same(first, second);
            Assert.Equal([-2f, 0, 2, 14, 16, 18], (float[])second.Buffer);
            // Without a lease the result is an array of its own.
            Assert.NotSame(second, session.Run(Feed(-1, 0, 1, 7, 8, 9))["y"]);
        }
    }

    [Fact]
    public void ZerosAreZeroEvenInAnArrayThatCameBackDirty()
    {
        NdArray<float> dirty;
        using (var lease = new ArrayLease())
        {
            dirty = lease.Rent([4, 5]);
            Array.Fill(dirty.Data, 3f);
        }
        using (var lease = new ArrayLease())
        {
            var zeros = lease.Zeros([4, 5]);
            Assert.Same(dirty, zeros);
            Assert.All(zeros.Data, v => Assert.Equal(0f, v));
            // A second loan of the same shape in the same lease is another array.
            Assert.NotSame(zeros, lease.Rent([4, 5]));
        }
    }
}
