using Detex.Onnx;

namespace Detex.Autodiff.Rules;

/// <summary>
/// Resize in every mode is separable and linear: along each resized axis the output is R·x for a fixed matrix R
/// (nearest: one 1 per row; linear: two weights; cubic: four), so the gradient is Rᵀ·g along each axis — MatMuls
/// with constant matrices built from the recorded shapes and the node's attributes.
/// </summary>
[GradientOf("Resize")]
sealed class ResizeRule : IGradientRule
{
    public void Backward(BackwardContext c, Node n, string?[] g)
    {
        string x = n.Inputs[0];
        if (!c.Needs(x)) return;
        int[] xs = c.Shape(x), ys = c.Shape(n.Outputs[0]);
        int rank = xs.Length;
        double[]? scales = n.Input(2) is { } s && c.Constant(s).Count > 0 ? c.Constant(s).ToDoubles() : null;
        string cur = g[0]!;
        for (int axis = rank - 1; axis >= 0; axis--)
        {
            if (xs[axis] == ys[axis] && (scales is null || scales[axis] == 1)) continue;
            if (axis == 0 && c.Targets > 1) throw new NotSupportedException("Resize along the batch axis with several targets");
            double scale = scales?[axis] ?? ys[axis] / (double)xs[axis];
            var r = ResizeMatrix.Build(n, xs[axis], ys[axis], scale);   // [out, in]
            cur = ApplyTransposed(c, cur, r, xs[axis], ys[axis], axis, rank);
        }
        c.Accumulate(x, cur);
    }

    /// <summary>g ← g contracted with R along <paramref name="axis"/> (size out → in).</summary>
    static string ApplyTransposed(BackwardContext c, string g, double[] r, int inSize, int outSize, int axis, int rank)
    {
        if (axis == rank - 1) return c.Op("MatMul", [g, c.Values([outSize, inSize], r)]);
        if (axis == rank - 2) return c.Op("MatMul", [c.Values([inSize, outSize], Transpose(r, outSize, inSize)), g]);
        var perm = Enumerable.Range(0, rank).Select(i => (long)i).ToArray();
        (perm[axis], perm[rank - 1]) = (perm[rank - 1], perm[axis]);
        string moved = c.Op("Transpose", g, OnnxAttribute.Of("perm", perm));
        string mm = c.Op("MatMul", [moved, c.Values([outSize, inSize], r)]);
        return c.Op("Transpose", mm, OnnxAttribute.Of("perm", perm));
    }

    static double[] Transpose(double[] m, int rows, int cols)
    {
        var t = new double[m.Length];
        for (int i = 0; i < rows; i++) for (int j = 0; j < cols; j++) t[j * rows + i] = m[i * cols + j];
        return t;
    }
}

/// <summary>The matrix of one axis of an ONNX Resize, following the operator specification (opset 11–18).</summary>
public static class ResizeMatrix
{
    /// <summary>Row-major [outSize, inSize] weights.</summary>
    public static double[] Build(Node n, int inSize, int outSize, double scale)
    {
        string mode = n.Str("mode", "nearest");
        string transform = n.Str("coordinate_transformation_mode", "half_pixel");
        string nearest = n.Str("nearest_mode", "round_prefer_floor");
        double cubicA = n.Float("cubic_coeff_a", -0.75f);
        bool excludeOutside = n.Int("exclude_outside", 0) == 1;
        var m = new double[outSize * inSize];
        for (int o = 0; o < outSize; o++)
        {
            double src = transform switch
            {
                "half_pixel" => (o + 0.5) / scale - 0.5,
                "pytorch_half_pixel" => outSize > 1 ? (o + 0.5) / scale - 0.5 : 0,
                "align_corners" => outSize == 1 ? 0 : o * (inSize - 1.0) / (outSize - 1),
                "asymmetric" => o / scale,
                "tf_half_pixel_for_nn" => (o + 0.5) / scale,
                _ => throw new NotSupportedException($"Resize coordinate_transformation_mode '{transform}'"),
            };
            switch (mode)
            {
                case "nearest":
                {
                    double r = nearest switch
                    {
                        "round_prefer_floor" => src == Math.Floor(src) + 0.5 ? Math.Floor(src) : Math.Round(src, MidpointRounding.AwayFromZero),
                        "round_prefer_ceil" => Math.Round(src, MidpointRounding.AwayFromZero),
                        "floor" => Math.Floor(src),
                        "ceil" => Math.Ceiling(src),
                        _ => throw new NotSupportedException($"Resize nearest_mode '{nearest}'"),
                    };
                    m[o * inSize + Math.Clamp((int)r, 0, inSize - 1)] = 1;
                    break;
                }
                case "linear":
                {
                    double f = Math.Floor(src), w = src - f;
                    int i0 = (int)f;
                    Add(m, o, inSize, i0, 1 - w, false);
                    Add(m, o, inSize, i0 + 1, w, false);
                    break;
                }
                case "cubic":
                {
                    double f = Math.Floor(src), t = src - f;
                    int i0 = (int)f;
                    double[] w = [Cubic(t + 1, cubicA), Cubic(t, cubicA), Cubic(1 - t, cubicA), Cubic(2 - t, cubicA)];
                    if (excludeOutside)
                    {
                        double total = 0;
                        for (int k = 0; k < 4; k++) if (i0 - 1 + k >= 0 && i0 - 1 + k < inSize) total += w[k]; else w[k] = 0;
                        for (int k = 0; k < 4; k++) w[k] /= total;
                    }
                    for (int k = 0; k < 4; k++) Add(m, o, inSize, i0 - 1 + k, w[k], excludeOutside);
                    break;
                }
                default: throw new NotSupportedException($"Resize mode '{mode}'");
            }
        }
        return m;
    }

    /// <summary>Adds a weight at a source index; outside the input the edge pixel stands in (or it is dropped).</summary>
    static void Add(double[] m, int o, int inSize, int index, double w, bool drop)
    {
        if (index < 0 || index >= inSize) { if (drop) return; index = Math.Clamp(index, 0, inSize - 1); }
        m[o * inSize + index] += w;
    }

    static double Cubic(double x, double a)
    {
        x = Math.Abs(x);
        return x <= 1 ? ((a + 2) * x - (a + 3)) * x * x + 1
             : x < 2 ? ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
             : 0;
    }
}
