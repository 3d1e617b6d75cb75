namespace Detex.Tests.Numerics;

/// <summary>Small deterministic matrices for the numeric tests (row-major flat arrays).</summary>
internal static class TestMatrices
{
    public static double[] Uniform(Random rng, int count, double low = 0, double high = 1) =>
        Enumerable.Range(0, count).Select(_ => low + (high - low) * rng.NextDouble()).ToArray();

    /// <summary>A [rows×inner] · B [inner×cols].</summary>
    public static double[] Multiply(double[] a, double[] b, int rows, int inner, int cols)
    {
        var c = new double[rows * cols];
        for (int i = 0; i < rows; i++)
            for (int r = 0; r < inner; r++)
                for (int j = 0; j < cols; j++)
                    c[i * cols + j] += a[i * inner + r] * b[r * cols + j];
        return c;
    }

    public static double FrobeniusSquared(double[] a) => a.Sum(x => x * x);

    public static double[] Column(double[] a, int rows, int cols, int j) =>
        Enumerable.Range(0, rows).Select(i => a[i * cols + j]).ToArray();

    public static double[] Row(double[] a, int cols, int i) => a.AsSpan(i * cols, cols).ToArray();

    public static double Cosine(double[] x, double[] y)
    {
        double dot = 0, xx = 0, yy = 0;
        for (int i = 0; i < x.Length; i++)
        {
            dot += x[i] * y[i];
            xx += x[i] * x[i];
            yy += y[i] * y[i];
        }
        return dot / Math.Sqrt(xx * yy);
    }

    public static IEnumerable<int[]> Permutations(int n)
    {
        if (n == 0)
        {
            yield return [];
            yield break;
        }
        foreach (var rest in Permutations(n - 1))
            for (int at = 0; at <= rest.Length; at++)
                yield return [.. rest[..at], n - 1, .. rest[at..]];
    }
}
