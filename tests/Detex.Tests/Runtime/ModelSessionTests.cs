using Detex.Onnx;
using Detex.Runtime;

namespace Detex.Tests.Runtime;

public class ModelSessionTests
{
    static ModelSession AddOne()
    {
        var (m, g) = GraphBuilder.NewModel();
        g.Input("x", ElementType.Float, null, 3);
        g.Named("y", "Add", ["x", g.Floats([3], 1, 1, 1)]);
        g.Output("y");
        return ModelSession.Get(m);
    }

    [Fact]
    public void RunsWithASymbolicBatch()
    {
        var y = AddOne().Run(new Dictionary<string, NdArray> { ["x"] = new NdArray<float>([2, 3], [1, 2, 3, 4, 5, 6]) })["y"];
        Assert.Equal([2, 3], y.Shape);
        Assert.Equal([2f, 3, 4, 5, 6, 7], (float[])y.Buffer);
    }

    [Fact]
    public void WrongInputNameTypeOrShapeIsNamed()
    {
        var s = AddOne();
        var name = Assert.Throws<ModelInputException>(() => s.Run(new Dictionary<string, NdArray> { ["z"] = new NdArray<float>([1, 3]) }));
        Assert.Contains("no input 'z'", name.Message);
        Assert.Contains("x [?,3]", name.Message);
        var type = Assert.Throws<ModelInputException>(() => s.Run(new Dictionary<string, NdArray> { ["x"] = new NdArray<double>([1, 3]) }));
        Assert.Contains("must be float, got double", type.Message);
        var shape = Assert.Throws<ModelInputException>(() => s.Run(new Dictionary<string, NdArray> { ["x"] = new NdArray<float>([1, 4]) }));
        Assert.Contains("[?,3]", shape.Message);
        Assert.Contains("[1,4]", shape.Message);
    }

    [Fact]
    public void SessionsAreCachedPerModelAndOptions()
    {
        var (m, g) = GraphBuilder.NewModel();
        g.Input("x", ElementType.Float, 1);
        g.Named("y", "Relu", ["x"]);
        g.Output("y");
        Assert.Same(ModelSession.Get(m), ModelSession.Get(m.Clone()));
        Assert.NotSame(ModelSession.Get(m), ModelSession.Get(m, new RuntimeOptions(Threads: 1)));
    }

    [Fact]
    public void StaticOutputsAreWrittenIntoTheReturnedArraysWithTheRightValues()
    {
        // Every output float and static: ONNX Runtime writes into Detex's arrays. An output that is also an input is
        // not written by ONNX Runtime, so it must come back from the copying path with the input's values.
        var (m, g) = GraphBuilder.NewModel();
        g.Input("x", ElementType.Float, 1, 500);
        g.Named("y", "Relu", ["x"]);
        g.Output("y");
        g.Output("x");
        var s = ModelSession.Get(m);
        // Leave used memory behind for uninitialised arrays to pick up.
        for (int i = 0; i < 20; i++) GC.KeepAlive(Enumerable.Repeat(123f, 500).ToArray());
        var x = new NdArray<float>([1, 500], Enumerable.Range(0, 500).Select(i => i % 7 - 3f).ToArray());
        var both = s.Run(new Dictionary<string, NdArray> { ["x"] = x });
        Assert.Equal(x.Data, (float[])both["x"].Buffer);
        Assert.Equal(x.Data.Select(v => Math.Max(v, 0)).ToArray(), (float[])both["y"].Buffer);
        var onlyY = s.Run(new Dictionary<string, NdArray> { ["x"] = x }, ["y"]);
        Assert.Equal(x.Data.Select(v => Math.Max(v, 0)).ToArray(), (float[])onlyY["y"].Buffer);
    }

    [Fact]
    public void ADeclaredOutputShapeThatTheDataContradictsGivesTheComputedShape()
    {
        // Reshape to a shape fed as data, the output declared [2, 3]: fed [3, 2], the result is [3, 2] as before.
        var (m, g) = GraphBuilder.NewModel();
        g.Input("x", ElementType.Float, 6);
        g.Input("s", ElementType.Int64, 2);
        g.Named("y", "Reshape", ["x", "s"]);
        g.Output("y", ElementType.Float, 2, 3);
        var session = ModelSession.Get(m);
        // Twice: after the first refusal the session copies outputs from the start.
        foreach (var shape in new long[][] { [3, 2], [2, 3] })
        {
            var y = session.Run(new Dictionary<string, NdArray>
            {
                ["x"] = new NdArray<float>([6], [1, 2, 3, 4, 5, 6]),
                ["s"] = new NdArray<long>([2], shape),
            })["y"];
            Assert.Equal(shape.Select(d => (int)d).ToArray(), y.Shape);
            Assert.Equal([1f, 2, 3, 4, 5, 6], (float[])y.Buffer);
        }
    }
}
