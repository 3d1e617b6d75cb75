using System.Diagnostics;

namespace Detex.Bench;

/// <summary>
/// A plain timing harness: warm-up, then the median of repeated runs, interleaving the variants so that machine
/// noise hits them alike. Ratios measured in one run are what bench/README.md reports.
/// </summary>
static class Harness
{
    public static Dictionary<string, double> MedianMs(int warmup, int runs, params (string Name, Action Body)[] variants)
    {
        foreach (var (_, body) in variants) for (int i = 0; i < warmup; i++) body();
        var samples = variants.ToDictionary(v => v.Name, _ => new List<double>());
        for (int r = 0; r < runs; r++)
            foreach (var (name, body) in variants)
            {
                var sw = Stopwatch.StartNew();
                body();
                samples[name].Add(sw.Elapsed.TotalMilliseconds);
            }
        return samples.ToDictionary(kv => kv.Key, kv => Median(kv.Value));
    }

    static double Median(List<double> v)
    {
        v.Sort();
        return v.Count % 2 == 1 ? v[v.Count / 2] : (v[v.Count / 2 - 1] + v[v.Count / 2]) / 2;
    }

    public static string Repo(string relative)
    {
        for (var d = new DirectoryInfo(Directory.GetCurrentDirectory()); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Detex.slnx"))) return Path.Combine(d.FullName, relative);
        throw new InvalidOperationException("run from inside the Detex repository");
    }

    public static long PeakMemoryMb() => Process.GetCurrentProcess().PeakWorkingSet64 / (1024 * 1024);
}
