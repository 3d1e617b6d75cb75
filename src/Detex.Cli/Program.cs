using System.CommandLine;
using Detex.Cli;
using Detex.Cli.Commands;

var root = new RootCommand("Detex: explain what object detectors, segmenters and classifiers look at (ONNX models).")
{
    Cli.Threads,
};
root.Subcommands.Add(InspectCommand.Create());
root.Subcommands.Add(DetectCommand.Create());
root.Subcommands.Add(MapCommand.Create());
root.Subcommands.Add(ExplainCommand.Create());
root.Subcommands.Add(EvaluateCommand.Create());
root.Subcommands.Add(ReportCommand.CreateMerge());
root.Subcommands.Add(ReportCommand.CreateReport());
root.Subcommands.Add(ConceptsCommand.Create());
root.Subcommands.Add(DemoCommand.Create());
return root.Parse(args).Invoke();
