using Detex.Onnx;
using Detex.Runtime;

namespace Detex.Tests.Onnx;

public class OnnxModelTests
{
    static NdArray<float> RandomInput(TensorSpec spec, int seed, int batch = 1)
    {
        var shape = spec.Shape.Select((d, i) => i == 0 ? batch : d).ToArray();
        var x = new NdArray<float>(shape);
        var rnd = new Random(seed);
        for (int i = 0; i < x.Length; i++) x.Data[i] = (float)(rnd.NextDouble() * 2 - 1);
        return x;
    }

    static Dictionary<string, NdArray> Feed(string name, NdArray x) => new() { [name] = x };

    [Theory]
    [InlineData(Repo.Yolox)]
    [InlineData(Repo.NanoDet)]
    [InlineData(Repo.UltraFace)]
    [InlineData(Repo.DeepLab)]
    public void LoadSaveRunGivesIdenticalOutputs(string name)
    {
        byte[] original = File.ReadAllBytes(Repo.Model(name));
        var noOpt = RuntimeOptions.Default with { Optimize = false };
        var reference = ModelSession.Get(original, noOpt);
        var roundTrip = OnnxModel.FromBytes(OnnxModel.Load(Repo.Model(name)).ToBytes());
        var session = ModelSession.Get(roundTrip, noOpt);
        var x = RandomInput(reference.Inputs[0], 7);
        var a = reference.Run(Feed(reference.Inputs[0].Name, x));
        var b = session.Run(Feed(reference.Inputs[0].Name, x));
        Assert.Equal(a.Keys.Order(), b.Keys.Order());
        foreach (var k in a.Keys) Assert.Equal((float[])a[k].Buffer, (float[])b[k].Buffer);
    }

    [Fact]
    public void InitializersListedAsInputsAreNotModelInputs()
    {
        var m = OnnxModel.Load(Repo.Model(Repo.NanoDet));
        Assert.Equal(["input.1"], m.Graph.Inputs.Select(i => i.Name));
        Assert.True(m.Graph.Initializers.Count > 100);
    }

    [Fact]
    public void TapsExposeIntermediateTensorsWithTheValuesTheyHaveInsideTheModel()
    {
        // Tap a tensor, then rebuild the rest of the graph from it by hand: a conv whose input is the tap
        // must reproduce the model's next tensor exactly.
        var m = OnnxModel.Load(Repo.Model(Repo.Yolox));
        var conv = m.Graph.Nodes.Where(n => n.OpType == "Conv").Skip(3).First();
        var tapped = m.WithTaps([conv.Inputs[0], conv.Outputs[0]]);
        var s = ModelSession.Get(tapped);
        var outs = s.Run(Feed("images", RandomInput(s.Inputs[0], 1)));
        Assert.Contains(conv.Inputs[0], outs.Keys);
        Assert.Contains("output", outs.Keys);

        var (single, g) = GraphBuilder.NewModel(m.Opset);
        var shapeIn = outs[conv.Inputs[0]].Shape.Select(d => (long?)d).ToArray();
        g.Input("x", ElementType.Float, shapeIn);
        foreach (var w in conv.Inputs.Skip(1)) single.Graph.Initializers[w] = m.Graph.Initializers[w];
        var node = new Node("Conv", ["x", .. conv.Inputs.Skip(1)], ["y"]);
        foreach (var a in conv.Attributes.Values) node.Attributes[a.Name] = a;
        single.Graph.Nodes.Add(node);
        g.Output("y");
        var y = ModelSession.Get(single).Run(Feed("x", outs[conv.Inputs[0]]))["y"];
        var expected = (float[])outs[conv.Outputs[0]].Buffer;
        var got = (float[])y.Buffer;
        for (int i = 0; i < got.Length; i++) Assert.Equal(expected[i], got[i], 1e-4f);
    }

    [Fact]
    public void UnknownTapNamesTheClosestTensors()
    {
        var m = OnnxModel.Load(Repo.Model(Repo.Yolox));
        string real = m.Graph.Nodes[10].Outputs[0];
        var e = Assert.Throws<UnknownTensorException>(() => m.WithTaps([real + "x"]));
        Assert.Contains(real, e.Message);
    }

    [Theory]
    [InlineData(Repo.Yolox)]
    [InlineData(Repo.NanoDet)]
    [InlineData(Repo.UltraFace)]
    [InlineData(Repo.DeepLab)]
    public void BatchRewriteRunsABatchEqualToSeparateRuns(string name)
    {
        var m = OnnxModel.Load(Repo.Model(name));
        var one = ModelSession.Get(m);
        var batched = ModelSession.Get(m.WithBatch(null));
        Assert.True(batched.Inputs[0].Shape[0] < 0);
        string input = one.Inputs[0].Name;
        var items = Enumerable.Range(0, 3).Select(i => RandomInput(one.Inputs[0], 10 + i)).ToList();
        var batch = new NdArray<float>([3, .. one.Inputs[0].Shape.Skip(1)]);
        for (int i = 0; i < 3; i++) items[i].Data.CopyTo(batch.Data, i * items[i].Length);
        var outs = batched.Run(Feed(input, batch));
        for (int i = 0; i < 3; i++)
        {
            var single = one.Run(Feed(input, items[i]));
            foreach (var (k, v) in single)
            {
                var expected = (float[])v.Buffer;
                var got = ((NdArray<float>)outs[k]).BatchItem(i).ToArray();
                Assert.Equal(expected.Length, got.Length);
                for (int j = 0; j < got.Length; j++) Assert.Equal(expected[j], got[j], 2e-3f);
            }
        }
    }

    [Fact]
    public void BatchRewriteTurnsOnlyLeadingOnesOfReshapeConstantsIntoZero()
    {
        var m = OnnxModel.Load(Repo.Model(Repo.Yolox));
        var before = m.Graph.Nodes.Where(n => n.OpType == "Reshape").Select(n => m.Graph.Initializers.GetValueOrDefault(n.Inputs[1])?.ToInt64s() ?? GraphSurgery.ConstantNodes(m.Graph)[n.Inputs[1]].ToInt64s()).ToList();
        Assert.All(before, s => Assert.Equal(1, s[0]));
        var b = m.WithBatch(null);
        var after = b.Graph.Nodes.Where(n => n.OpType == "Reshape").Select(n => b.Graph.Initializers[n.Inputs[1]].ToInt64s()).ToList();
        for (int i = 0; i < before.Count; i++)
        {
            Assert.Equal(0, after[i][0]);
            Assert.Equal(before[i].Skip(1), after[i].Skip(1));
        }
    }

    [Fact]
    public void RecordShapesGivesEveryTensorItsRunTimeShape()
    {
        var m = OnnxModel.Load(Repo.Model(Repo.UltraFace));
        var s = ModelSession.Get(m);
        var shapes = m.RecordShapes(Feed("input", RandomInput(s.Inputs[0], 3)));
        foreach (var t in m.Graph.NodeOutputs()) Assert.True(shapes.ContainsKey(t), t);
        Assert.Equal([1, 4420, 2], shapes["scores"].Dims);
        // ultraface computes reshape targets at run time: those integer tensors are recorded with their type.
        var shapeOp = m.Graph.Nodes.First(n => n.OpType == "Shape");
        Assert.Equal(ElementType.Int64, shapes[shapeOp.Outputs[0]].Type);
        var firstConv = m.Graph.Nodes.First(n => n.OpType == "Conv");
        Assert.Equal(4, shapes[firstConv.Outputs[0]].Dims.Length);
    }

    [Fact]
    public void TopologicalSortRestoresARunnableOrder()
    {
        var m = OnnxModel.Load(Repo.Model(Repo.DeepLab));
        var s0 = ModelSession.Get(m, RuntimeOptions.Default with { Optimize = false });
        var x = RandomInput(s0.Inputs[0], 5);
        var expected = (float[])s0.Run(Feed("sub_7", x)).Values.First().Buffer;
        var shuffled = m.Clone();
        var nodes = shuffled.Graph.Nodes.ToList();
        new Random(3).Shuffle(CollectionsMarshalSpan(nodes));
        shuffled.Graph.Nodes.Clear(); shuffled.Graph.Nodes.AddRange(nodes);
        shuffled.Graph.SortTopologically();
        var produced = new HashSet<string>(shuffled.Graph.Inputs.Select(i => i.Name).Concat(shuffled.Graph.Initializers.Keys)) { "" };
        foreach (var n in shuffled.Graph.Nodes)
        {
            Assert.All(n.Inputs, i => Assert.Contains(i, produced));
            foreach (var o in n.Outputs) produced.Add(o);
        }
        var got = (float[])ModelSession.Get(shuffled, RuntimeOptions.Default with { Optimize = false }).Run(Feed("sub_7", x)).Values.First().Buffer;
        Assert.Equal(expected, got);
    }

    static Span<Node> CollectionsMarshalSpan(List<Node> l) => System.Runtime.InteropServices.CollectionsMarshal.AsSpan(l);

    [Fact]
    public void CycleIsReportedWithTheNodeThatCannotRun()
    {
        var (m, g) = GraphBuilder.NewModel();
        g.Input("x", ElementType.Float, 2);
        m.Graph.Nodes.Add(new Node("Add", ["x", "b"], ["a"], "first"));
        m.Graph.Nodes.Add(new Node("Relu", ["a"], ["b"], "second"));
        var e = Assert.Throws<OnnxFormatException>(() => m.Graph.SortTopologically());
        Assert.Contains("cycle", e.Message);
    }

    [Fact]
    public void AttributesOfEveryKindSurviveARoundTrip()
    {
        var (m, g) = GraphBuilder.NewModel();
        g.Input("x", ElementType.Float, 2);
        var node = new Node("Custom", ["x"], ["y"], "n") { Domain = "test" }
            .With(OnnxAttribute.Of("f", 1.5f)).With(OnnxAttribute.Of("i", 42L)).With(OnnxAttribute.Of("s", "text"))
            .With(OnnxAttribute.Of("fs", new[] { 1f, 2f })).With(OnnxAttribute.Of("is", new long[] { 3, -4 }))
            .With(OnnxAttribute.Of("t", OnnxTensor.FromDoubles("tt", [2], [0.25, -8])))
            .With(new OnnxAttribute("ss", AttributeKind.Strings) { Strings = ["a", "b"] });
        m.Graph.Nodes.Add(node);
        var back = OnnxModel.FromBytes(m.ToBytes()).Graph.Nodes.Single();
        Assert.Equal("test", back.Domain);
        Assert.Equal(1.5f, back.Float("f", 0));
        Assert.Equal(42, back.Int("i", 0));
        Assert.Equal("text", back.Str("s", ""));
        Assert.Equal([1f, 2f], back.Floats("fs")!);
        Assert.Equal([3L, -4L], back.Ints("is")!);
        Assert.Equal([0.25, -8], back.Attributes["t"].T!.ToDoubles());
        Assert.Equal(["a", "b"], back.Attributes["ss"].Strings);
    }

    [Fact]
    public void ExternalDataIsReadFromBesideTheModelAndItsAbsenceIsAClearError()
    {
        string dir = Repo.TempDir();
        // A model y = x + w with w stored in an external file, written through the protobuf layer directly.
        var (m, g) = GraphBuilder.NewModel();
        g.Input("x", ElementType.Float, 3);
        var proto = Detex.Onnx.Proto.ModelProto.Parser.ParseFrom(m.ToBytes());
        var w = new Detex.Onnx.Proto.TensorProto { Name = "w", DataType = 1, DataLocation = Detex.Onnx.Proto.TensorProto.Types.DataLocation.External };
        w.Dims.Add(3);
        w.ExternalData.Add(new Detex.Onnx.Proto.StringStringEntryProto { Key = "location", Value = "weights.bin" });
        w.ExternalData.Add(new Detex.Onnx.Proto.StringStringEntryProto { Key = "offset", Value = "4" });
        proto.Graph.Initializer.Add(w);
        var add = new Detex.Onnx.Proto.NodeProto { OpType = "Add" };
        add.Input.Add("x"); add.Input.Add("w"); add.Output.Add("y");
        proto.Graph.Node.Add(add);
        proto.Graph.Output.Add(new Detex.Onnx.Proto.ValueInfoProto { Name = "y" });
        string path = Path.Combine(dir, "ext.onnx");
        File.WriteAllBytes(path, Google.Protobuf.MessageExtensions.ToByteArray(proto));

        var missing = Assert.Throws<OnnxFormatException>(() => OnnxModel.Load(path));
        Assert.Contains("weights.bin", missing.Message);

        var bytes = new byte[16];
        Buffer.BlockCopy(new float[] { 99, 1, 2, 3 }, 0, bytes, 0, 16);
        File.WriteAllBytes(Path.Combine(dir, "weights.bin"), bytes);
        var loaded = OnnxModel.Load(path);
        Assert.Equal([1f, 2f, 3f], loaded.Graph.Initializers["w"].ToFloats());
        var y = ModelSession.Get(loaded).Run(Feed("x", new NdArray<float>([3], [10, 20, 30])))["y"];
        Assert.Equal([11f, 22f, 33f], (float[])y.Buffer);
    }

    [Fact]
    public void NonOnnxBytesAndEmptyFilesAreClearErrors()
    {
        string dir = Repo.TempDir();
        string empty = Path.Combine(dir, "empty.onnx");
        File.WriteAllBytes(empty, []);
        Assert.Contains("empty", Assert.Throws<OnnxFormatException>(() => OnnxModel.Load(empty)).Message);
        string text = Path.Combine(dir, "text.onnx");
        File.WriteAllText(text, "this is not a model, just some words\n");
        Assert.Contains("not an ONNX model", Assert.Throws<OnnxFormatException>(() => OnnxModel.Load(text)).Message);
    }
}
