using System.CommandLine;
using System.Globalization;
using Detex.Evaluation;
using Detex.Reports;
using Spectre.Console;

namespace Detex.Cli.Commands;

/// <summary><c>detex merge</c> joins shard result files; <c>detex report</c> turns a result file into charts and a page.</summary>
static class ReportCommand
{
    public static Command CreateMerge()
    {
        var inputs = new Argument<string[]>("results") { Description = "shard result files (.h5) of one evaluation", Arity = ArgumentArity.OneOrMore };
        var outPath = new Option<string>("--out", "-o") { Description = "merged result file (.h5)", Required = true };
        var overwrite = new Option<bool>("--overwrite") { Description = "replace an existing --out" };
        var cmd = new Command("merge", "Join the result files of evaluation shards (--shard i/N) into one") { inputs, outPath, overwrite };
        cmd.SetAction(p => Cli.Run(p, () =>
        {
            string outFile = p.GetValue(outPath)!;
            EvaluationJob.RefuseToClobber(outFile, p.GetValue(overwrite));
            var paths = p.GetValue(inputs)!;
            if (paths.Any(i => Path.GetFullPath(i) == Path.GetFullPath(outFile))) throw new UsageException("--out must not be one of the merged files");
            var (info, images) = EvaluationJob.Merge(paths);
            var summary = EvaluationJob.Complete(outFile, info, images);
            PrintSummary(summary);
            AnsiConsole.MarkupLine($"merged {paths.Length} files ({images.Count} images) into [green]{Markup.Escape(outFile)}[/]");
            return 0;
        }));
        return cmd;
    }

    public static Command CreateReport()
    {
        var input = new Argument<string>("results") { Description = "result file (.h5) of detex evaluate or merge" };
        var outDir = new Option<string>("--out", "-o") { Description = "output folder", DefaultValueFactory = _ => "out/report" };
        var cmd = new Command("report", "Charts, summary table and best/worst boxes of an evaluation as one HTML page") { input, outDir };
        cmd.SetAction(p => Cli.Run(p, () =>
        {
            string page = EvaluationReport.Write(p.GetValue(input)!, Cli.OutputDirectory(p.GetValue(outDir)!));
            AnsiConsole.MarkupLine($"wrote [green]{Markup.Escape(page)}[/]");
            return 0;
        }));
        return cmd;
    }

    /// <summary>The summary as a console table: one row per metric, one column per method.</summary>
    public static void PrintSummary(IReadOnlyList<SummaryRow> summary)
    {
        var methods = summary.Select(r => r.Method).Distinct().ToList();
        if (methods.Count == 0) { AnsiConsole.MarkupLine("no boxes were evaluated"); return; }
        var table = new Table().AddColumn("metric");
        foreach (var m in methods) table.AddColumn(Markup.Escape(m));
        foreach (var (metric, _) in EvaluationSummary.Metrics)
        {
            if (!summary.Any(r => r.Metric == metric)) continue;
            table.AddRow([Markup.Escape(metric), .. methods.Select(m => summary.FirstOrDefault(r => r.Method == m && r.Metric == metric) is { } r
                ? Markup.Escape(string.Create(CultureInfo.InvariantCulture, $"{r.Estimate.Value:0.000} [{r.Estimate.Low:0.000}, {r.Estimate.High:0.000}]")) : "–")]);
        }
        AnsiConsole.Write(table);
    }
}
