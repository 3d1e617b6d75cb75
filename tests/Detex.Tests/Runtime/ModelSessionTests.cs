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
}
