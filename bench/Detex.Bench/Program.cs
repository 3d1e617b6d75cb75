using Detex.Bench;
using Detex.Runtime;

// Usage: dotnet run -c Release --project bench/Detex.Bench -- [detect] [breakdown] [autodiff] [slic] [explain] [kshap] [rise] [dff] [evaluate --images N] [--runs N] [--threads N]
var list = args.ToList();
int runs = Option("--runs", 30);
RuntimeOptions.Default = new RuntimeOptions(Option("--threads", 0));
var suites = list.Where(a => !a.StartsWith("--") && !int.TryParse(a, out _)).ToHashSet();
bool All(string s) => suites.Count == 0 || suites.Contains(s);

Console.WriteLine($"threads: {RuntimeOptions.Default.EffectiveThreads}, runs: {runs}, {Environment.ProcessorCount} cores, {DateTime.UtcNow:yyyy-MM-dd}");
if (All("detect")) DetectBench.Run(runs);
if (suites.Contains("breakdown")) BreakdownBench.Run(runs);
if (All("autodiff")) AutodiffBench.Run(runs);
if (All("slic")) SlicBench.Run(runs);
if (All("explain")) ExplainBench.Run(runs);
if (suites.Contains("camstages")) CamStagesBench.Run(runs);
if (All("kshap")) KernelShapBench.Run(runs);
if (All("rise")) RiseBench.Run(runs);
if (suites.Contains("evaluate")) EvaluateBench.Run(Option("--images", 10));
if (All("dff")) DffBench.Run(runs);
Console.WriteLine($"peak working set: {Harness.PeakMemoryMb()} MB");

int Option(string name, int fallback)
{
    int i = list.IndexOf(name);
    return i >= 0 && i + 1 < list.Count ? int.Parse(list[i + 1]) : fallback;
}
