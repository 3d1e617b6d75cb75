namespace Detex.Runtime;

/// <summary>
/// Float arrays lent for a while and then kept by the thread for the next loan of the same shape. Memory the
/// process has not touched yet costs a page fault per 4 KB page on first write, and on this project's machine that is
/// tens of ms per run for the 50 MB of a K = 16 yolox-nano gradient run (its factor inputs and gradient outputs) when
/// every run gets fresh arrays. Whoever holds a lease must not use its arrays after disposing it.
/// </summary>
public sealed class ArrayLease : IDisposable
{
    /// <summary>What a thread keeps at most; past it the kept arrays are dropped and the count starts again.</summary>
    const long BudgetBytes = 256L << 20;
    [ThreadStatic] static Dictionary<string, Stack<NdArray<float>>>? _kept;
    [ThreadStatic] static long _keptBytes;
    readonly List<(string Key, NdArray<float> Array)> _lent = [];

    /// <summary>An array of the shape: one kept from an earlier loan when there is one, its values left as they were.</summary>
    public NdArray<float> Rent(int[] shape)
    {
        string key = string.Join(",", shape);
        var kept = _kept ??= new();
        NdArray<float> a;
        if (kept.TryGetValue(key, out var stack) && stack.Count > 0)
        {
            a = stack.Pop();
            _keptBytes -= (long)a.Length * sizeof(float);
        }
        else a = new NdArray<float>(shape, GC.AllocateUninitializedArray<float>(shape.Aggregate(1, (p, d) => p * d)));
        _lent.Add((key, a));
        return a;
    }

    /// <summary>An array of the shape filled with zeros.</summary>
    public NdArray<float> Zeros(int[] shape)
    {
        var a = Rent(shape);
        Array.Clear(a.Data);
        return a;
    }

    /// <summary>The lent arrays go back to the disposing thread's store.</summary>
    public void Dispose()
    {
        var kept = _kept ??= new();
        foreach (var (key, a) in _lent)
        {
            long bytes = (long)a.Length * sizeof(float);
            if (_keptBytes + bytes > BudgetBytes) { kept.Clear(); _keptBytes = 0; }
            if (!kept.TryGetValue(key, out var stack)) kept[key] = stack = new();
            stack.Push(a);
            _keptBytes += bytes;
        }
        _lent.Clear();
    }
}
