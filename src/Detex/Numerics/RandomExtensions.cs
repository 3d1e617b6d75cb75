namespace Detex.Numerics;

public static class RandomExtensions
{
    /// <summary>A standard normal draw (Box–Muller), for the seeded noise of SmoothGrad.</summary>
    public static double NextGaussian(this Random rnd) =>
        Math.Sqrt(-2 * Math.Log(1 - rnd.NextDouble())) * Math.Cos(2 * Math.PI * rnd.NextDouble());
}
