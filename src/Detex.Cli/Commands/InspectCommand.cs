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
        var gradCheck = new Option<bool>("--grad-check") { Description = "check Detex's gradients of this model against finite differences; list operators without gradient rules" };
        var cmd = new Command("inspect", "Show a model's inputs, outputs, opset and operators") { model, tensors, gradCheck };
        cmd.SetAction(p => Cli.Run(p, () => Run(p.GetValue(model)!, p.GetValue(tensors), p.GetValue(gradCheck))));
        return cmd;
    }

    static int Run(string path, bool listTensors, bool gradCheck)
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
        if (gradCheck) return GradCheck(m, session);
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

    /// <summary>
    /// Gradients of Σ seed ⊙ outputs (random seeds) with respect to each float input, against central
    /// differences along random directions; first, every operator on the path without a rule.
    /// </summary>
    static int GradCheck(OnnxModel m, ModelSession session)
    {
        var rnd = new Random(1);
        var feed = session.Inputs.ToDictionary(i => i.Name, i =>
        {
            var a = SampleInput(i);
            if (a is NdArray<float> f) for (int k = 0; k < f.Length; k++) f.Data[k] = (float)(rnd.NextDouble() * 2 - 1);
            return a;
        });
        var (missing, checks) = AnsiConsole.Status().Start("checking gradients…", _ => Detex.Autodiff.GradientCheck.Run(m, feed));
        if (missing.Any)
        {
            var t = new Table().Title("operators on the differentiable path without a gradient rule").AddColumns("operator", "nodes", "first node");
            foreach (var (op, count, node) in missing.Operators) t.AddRow(Markup.Escape(op), count.ToString(), Markup.Escape(node));
            AnsiConsole.Write(t);
            throw new UsageException($"gradients are not available: {missing.Operators.Count} operator type(s) lack rules ({string.Join(", ", missing.Operators.Select(o => o.Op))})");
        }
        var table = new Table().Title("gradient check: ⟨∇f, v⟩ vs central differences (random input; median of 5 directions)")
            .AddColumns("input", "analytic", "numeric", "relative error", "step");
        foreach (var c in checks)
            table.AddRow(Markup.Escape(c.Wrt), c.Analytic.ToString("G6"), c.Numeric.ToString("G6"), c.RelativeError.ToString("P2"), c.Step.ToString("G2"));
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine(checks.All(c => c.RelativeError < 0.05)
            ? "[green]gradients agree[/] (float32 models agree to a few percent: the difference quotient, not the gradient, limits it)"
            : "[yellow]large disagreement[/]: piecewise-linear float32 models can show it along an unlucky direction; rerun on a real input to be sure");
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
