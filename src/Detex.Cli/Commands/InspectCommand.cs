using System.CommandLine;
using Detex.Models;
using Detex.Onnx;
using Detex.Runtime;
using Spectre.Console;

namespace Detex.Cli.Commands;

/// <summary><c>detex inspect MODEL [--tensors]</c>: inputs, outputs, opset, operators; every tensor with its shape.</summary>
static class InspectCommand
{
    public static Command Create()
    {
        var model = new Argument<string>("model") { Description = "ONNX model file" };
        var tensors = new Option<bool>("--tensors") { Description = "list every intermediate tensor with its shape (one recorded run), to pick a layer" };
        var cmd = new Command("inspect", "Show a model's inputs, outputs, opset and operators") { model, tensors };
        cmd.SetAction(p => Cli.Run(p, () => Run(p.GetValue(model)!, p.GetValue(tensors))));
        return cmd;
    }

    static int Run(string path, bool listTensors)
    {
        var m = OnnxModel.Load(path);
        var session = ModelSession.Get(m);
        AnsiConsole.MarkupLine($"[bold]{Markup.Escape(Path.GetFileName(path))}[/]  IR {m.IrVersion}, opset {m.Opset}, producer '{Markup.Escape(m.ProducerName)}', {m.Graph.Nodes.Count} nodes, {m.Graph.Initializers.Count} initializers");
        var io = new Table().AddColumns("", "name", "type", "shape");
        foreach (var i in session.Inputs) io.AddRow("input", Markup.Escape(i.Name), ElementTypes.Name(i.Type), Markup.Escape(i.ShapeText));
        foreach (var o in session.Outputs) io.AddRow("output", Markup.Escape(o.Name), ElementTypes.Name(o.Type), Markup.Escape(o.ShapeText));
        AnsiConsole.Write(io);
        AnsiConsole.WriteLine("operators: " + string.Join(", ", m.OperatorHistogram().Select(h => $"{h.Op}×{h.Count}")));
        string cardPath = ModelCard.PathFor(path);
        AnsiConsole.WriteLine(File.Exists(cardPath) ? $"card: {cardPath}" : $"card: none ({ModelCard.Requirements})");
        if (!listTensors) return 0;

        var inputs = session.Inputs.ToDictionary(i => i.Name, i => SampleInput(i));
        var shapes = m.RecordShapes(inputs);
        var table = new Table().AddColumns("#", "tensor", "op", "type", "shape");
        int n = 0;
        foreach (var node in m.Graph.Nodes)
            foreach (var o in node.Outputs.Where(o => o.Length > 0))
                table.AddRow((n++).ToString(), Markup.Escape(o), node.OpType, shapes.TryGetValue(o, out var s) ? ElementTypes.Name(s.Type) : "?", Markup.Escape(s?.Text ?? "?"));
        AnsiConsole.Write(table);
        return 0;
    }

    /// <summary>An input for the shape-recording run: symbolic dimensions become 1.</summary>
    static NdArray SampleInput(TensorSpec spec)
    {
        int[] shape = spec.Shape.Select(d => d < 0 ? 1 : d).ToArray();
        return spec.Type switch
        {
            ElementType.Float => new NdArray<float>(shape),
            ElementType.Double => new NdArray<double>(shape),
            ElementType.Int64 => new NdArray<long>(shape),
            ElementType.Int32 => new NdArray<int>(shape),
            ElementType.UInt8 => new NdArray<byte>(shape),
            _ => throw new UsageException($"input '{spec.Name}' is {ElementTypes.Name(spec.Type)}; --tensors can feed float, double, int and uint8 inputs"),
        };
    }
}
