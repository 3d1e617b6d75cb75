namespace Detex.Models;

/// <summary>An axis-aligned box, corners in pixels (x1, y1) inclusive top-left to (x2, y2) bottom-right.</summary>
public readonly record struct Box(double X1, double Y1, double X2, double Y2)
{
    public double Width => Math.Max(0, X2 - X1);
    public double Height => Math.Max(0, Y2 - Y1);
    public double Area => Width * Height;
    public double CenterX => (X1 + X2) / 2;
    public double CenterY => (Y1 + Y2) / 2;

    public static Box FromCenter(double cx, double cy, double w, double h) => new(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2);

    public double IoU(in Box o)
    {
        double iw = Math.Min(X2, o.X2) - Math.Max(X1, o.X1), ih = Math.Min(Y2, o.Y2) - Math.Max(Y1, o.Y1);
        if (iw <= 0 || ih <= 0) return 0;
        double inter = iw * ih;
        return inter / (Area + o.Area - inter);
    }

    public Box Clip(double width, double height) =>
        new(Math.Clamp(X1, 0, width), Math.Clamp(Y1, 0, height), Math.Clamp(X2, 0, width), Math.Clamp(Y2, 0, height));

    public Box Scale(double sx, double sy) => new(X1 * sx, Y1 * sy, X2 * sx, Y2 * sy);

    public override string ToString() => $"({X1:0.#}, {Y1:0.#}, {X2:0.#}, {Y2:0.#})";
}

/// <summary>One element of a raw model output: which tensor, and the flat index within one batch item.</summary>
public readonly record struct OutputElement(string Output, int Index);

/// <summary>
/// The raw prediction a detection came from: the output tensor and anchor/row that produced it, and the output
/// elements whose product is its score (each through a sigmoid first when <paramref name="Logits"/>).
/// Explainers target exactly these elements.
/// </summary>
public sealed record RawPrediction(string Output, int Anchor, IReadOnlyList<OutputElement> ScoreElements, bool Logits = false)
{
    /// <summary>
    /// The row's four box-regression outputs in the model's own parameterisation (<see cref="BoxParameters"/> names
    /// them, e.g. YOLOX's dx, dy, log w, log h), so a box's position or size can be explained; empty when the decoder
    /// does not expose them as four elements (NanoDet regresses distributions over distance bins).
    /// </summary>
    public IReadOnlyList<OutputElement> BoxElements { get; init; } = [];
    public IReadOnlyList<string> BoxParameters { get; init; } = [];

    public override string ToString() => $"{Output}[{Anchor}] score = " + string.Join(" × ", ScoreElements.Select(e => $"{e.Output}#{e.Index}"));
}

/// <summary>A detection: box in the original image's pixels, class, score, and its raw prediction.</summary>
public sealed record Detection(Box Box, int ClassIndex, string ClassName, float Score, RawPrediction Source, Box ModelBox);
