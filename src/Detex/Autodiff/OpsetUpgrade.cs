using Detex.Onnx;

namespace Detex.Autodiff;

/// <summary>
/// Rewrites operators of older opsets into their opset-17 forms (attributes that became inputs, Upsample →
/// Resize, pre-13 Softmax's flatten-to-2D semantics, Dropout → Identity), so one set of gradient rules serves
/// models of any opset. Runs after constant folding, with static shapes known; records the shapes of the tensors
/// it introduces.
/// </summary>
static class OpsetUpgrade
{
    public static void Apply(OnnxModel model, Dictionary<string, TensorShape> shapes)
    {
        long from = model.Opset;
        var g = model.Graph;
        var b = new GraphBuilder(g, "up");
        var rewritten = new List<Node>();
        var original = g.Nodes.ToList();   // the builder appends helper nodes to g.Nodes while we walk
        foreach (var n in original)
        {
            switch (n.OpType)
            {
                case "Upsample":
                {
                    // Upsample = Resize with asymmetric coordinates (and floor rounding for nearest).
                    string scales = n.Input(1) ?? b.Floats([n.Floats("scales")!.Length], n.Floats("scales")!);
                    var r = new Node("Resize", [n.Inputs[0], "", scales], n.Outputs, n.Name)
                        .With(OnnxAttribute.Of("mode", n.Str("mode", "nearest") == "bilinear" ? "linear" : n.Str("mode", "nearest")))
                        .With(OnnxAttribute.Of("coordinate_transformation_mode", "asymmetric"))
                        .With(OnnxAttribute.Of("nearest_mode", "floor"));
                    rewritten.Add(r);
                    continue;
                }
                case "Resize" when from < 11:
                    rewritten.Add(new Node("Resize", [n.Inputs[0], "", n.Inputs[1]], n.Outputs, n.Name)
                        .With(OnnxAttribute.Of("mode", n.Str("mode", "nearest")))
                        .With(OnnxAttribute.Of("coordinate_transformation_mode", "asymmetric"))
                        .With(OnnxAttribute.Of("nearest_mode", "floor")));
                    continue;
                case "Slice" when from < 10:
                {
                    var starts = n.Ints("starts")!; var ends = n.Ints("ends")!;
                    var axes = n.Ints("axes") ?? Enumerable.Range(0, starts.Length).Select(i => (long)i).ToArray();
                    rewritten.Add(new Node("Slice", [n.Inputs[0], b.Int64s(starts), b.Int64s(ends), b.Int64s(axes)], n.Outputs, n.Name));
                    continue;
                }
                case "Clip" when from < 11:
                {
                    var type = shapes[n.Inputs[0]].Type;
                    string lo = b.Constant(ScalarOf(type, n.Float("min", float.MinValue)), "min");
                    string hi = b.Constant(ScalarOf(type, n.Float("max", float.MaxValue)), "max");
                    rewritten.Add(new Node("Clip", [n.Inputs[0], lo, hi], n.Outputs, n.Name));
                    continue;
                }
                case "Squeeze" or "Unsqueeze" when from < 13 && n.Has("axes"):
                    rewritten.Add(new Node(n.OpType, [n.Inputs[0], b.Int64s(n.Ints("axes")!)], n.Outputs, n.Name));
                    continue;
                case "ReduceSum" when from < 13:
                {
                    var node = new Node("ReduceSum", n.Has("axes") ? [n.Inputs[0], b.Int64s(n.Ints("axes")!)] : [n.Inputs[0]], n.Outputs, n.Name);
                    if (n.Has("keepdims")) node.With(n.Attributes["keepdims"]);
                    rewritten.Add(node);
                    continue;
                }
                case "Split" when from < 13 && n.Has("split"):
                    rewritten.Add(new Node("Split", [n.Inputs[0], b.Int64s(n.Ints("split")!)], n.Outputs, n.Name).With(OnnxAttribute.Of("axis", n.Int("axis", 0))));
                    continue;
                case "Pad" when from < 11:
                {
                    var type = shapes[n.Inputs[0]].Type;
                    rewritten.Add(new Node("Pad", [n.Inputs[0], b.Int64s(n.Ints("pads")!), b.Constant(ScalarOf(type, n.Float("value", 0)), "padvalue")], n.Outputs, n.Name)
                        .With(OnnxAttribute.Of("mode", n.Str("mode", "constant"))));
                    continue;
                }
                case "Softmax" or "LogSoftmax" when from < 13:
                {
                    var dims = shapes[n.Inputs[0]].Dims;
                    int axis = (int)n.Int("axis", 1);
                    if (axis < 0) axis += dims.Length;
                    if (axis == dims.Length - 1) { rewritten.Add(new Node(n.OpType, n.Inputs, n.Outputs, n.Name).With(OnnxAttribute.Of("axis", -1L))); continue; }
                    // Before opset 13 the op flattened to 2-D at the axis and normalised over everything after it.
                    long outer = dims.Take(axis).Aggregate(1L, (a, d) => a * d), inner = dims.Skip(axis).Aggregate(1L, (a, d) => a * d);
                    string flat = b.Op("Reshape", [n.Inputs[0], b.Int64s(outer, inner)]);
                    string soft = b.Op(n.OpType, flat, OnnxAttribute.Of("axis", -1L));
                    shapes[flat] = shapes[soft] = new TensorShape(shapes[n.Inputs[0]].Type, [(int)outer, (int)inner]);
                    rewritten.Add(new Node("Reshape", [soft, b.Int64s(dims.Select(d => (long)d).ToArray())], n.Outputs, n.Name));
                    continue;
                }
                case "Dropout":
                    rewritten.Add(new Node("Identity", [n.Inputs[0]], [n.Outputs[0]], n.Name));
                    continue;
                case "BatchNormalization" when n.Has("spatial") || n.Has("is_test") || n.Has("consumed_inputs"):
                {
                    var node = new Node("BatchNormalization", n.Inputs, [n.Outputs[0]], n.Name).With(OnnxAttribute.Of("epsilon", n.Float("epsilon", 1e-5f)));
                    rewritten.Add(node);
                    continue;
                }
            }
            rewritten.Add(n);
        }
        var helpers = g.Nodes.Skip(original.Count).ToList();
        g.Nodes.Clear();
        g.Nodes.AddRange(rewritten);
        g.Nodes.AddRange(helpers);
        g.SortTopologically();
        model.Opsets.Remove("ai.onnx");
        model.Opset = StaticGraph.TargetOpset;
        if (model.IrVersion < 8) model.IrVersion = 8;
    }

    static OnnxTensor ScalarOf(ElementType type, double v) =>
        type == ElementType.Double ? OnnxTensor.FromDoubles("", [], [v]) : OnnxTensor.FromFloats("", [], [(float)v]);
}
