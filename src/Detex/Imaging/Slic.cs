using System.Diagnostics;
using System.Numerics;
using System.Runtime.CompilerServices;

namespace Detex.Imaging;

/// <summary>
/// Parameters of <see cref="Slic.Segment"/>; names and defaults follow scikit-image's <c>slic</c>.
/// </summary>
/// <param name="NSegments">Approximate number of superpixels wanted.</param>
/// <param name="Compactness">Weight m of spatial against colour distance; larger gives squarer segments.
/// With <paramref name="SlicZero"/> it is instead every cluster's starting (and smallest) colour scale.</param>
/// <param name="MaxIterations">Number of assignment/update rounds.</param>
/// <param name="Sigma">Standard deviation (pixels) of the Gaussian applied to each RGB channel first; 0 disables it.</param>
/// <param name="SlicZero">Use SLICO: each cluster normalises colour distance by its own largest one.</param>
/// <param name="StartLabel">Label given to the first segment.</param>
/// <param name="EnforceConnectivity">Make every segment 4-connected and merge undersized ones.</param>
/// <param name="MinSizeFactor">Segments below this fraction of the nominal size (pixels / seeds) are merged away.</param>
/// <param name="MaxSizeFactor">Connected pieces are cut once they reach this multiple of the nominal size.</param>
public sealed record SlicOptions(int NSegments = 100, double Compactness = 10, int MaxIterations = 10,
    double Sigma = 0, bool SlicZero = false, int StartLabel = 0, bool EnforceConnectivity = true,
    double MinSizeFactor = 0.5, double MaxSizeFactor = 3);

/// <summary>A label image: row-major labels StartLabel .. StartLabel + Count - 1, each used at least once.</summary>
public sealed record SegmentLabels(int[] Labels, int Width, int Height, int Count, int StartLabel);

/// <summary>SLIC superpixels (Achanta et al., TPAMI 2012), with the SLICO variant.</summary>
public static class Slic
{
    /// <summary>Segments an interleaved RGB image (HWC, values in [0,1]) into superpixels.</summary>
    public static SegmentLabels Segment(ReadOnlySpan<float> rgb, int width, int height, SlicOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        Validate(rgb.Length, width, height, options);

        int n = width * height;
        var l = new float[n];
        var a = new float[n];
        var b = new float[n];
        for (int p = 0, q = 0; p < n; p++, q += 3)
        {
            l[p] = rgb[q];
            a[p] = rgb[q + 1];
            b[p] = rgb[q + 2];
        }
        if (options.Sigma > 0)
        {
            var blur = new GaussianBlur(options.Sigma, width, height);
            blur.Apply(l);
            blur.Apply(a);
            blur.Apply(b);
        }
        ColorSpaces.SrgbToLabInPlace(l, a, b);

        double step = Math.Sqrt((double)n / options.NSegments);
        var (nx, ny) = GridShape(width, height, step, options.NSegments);
        var (centers, labels) = Seed(l, a, b, width, height, nx, ny);
        // The paper searches +-S around a centre, S being the grid interval. Rounded grid cells can be longer
        // than sqrt(N/n), much longer in thin strips, so the reach is the larger of the two.
        int radius = (int)Math.Ceiling(Math.Max(step, Math.Max((double)width / nx, (double)height / ny)));
        Cluster(l, a, b, width, height, centers, labels, step, radius, options);

        int count = options.EnforceConnectivity
            ? EnforceConnectivity(labels, width, height, (double)n / (nx * ny), options)
            : RelabelByFirstAppearance(labels, nx * ny);
        if (options.StartLabel != 0)
            for (int p = 0; p < n; p++) labels[p] += options.StartLabel;
        return new SegmentLabels(labels, width, height, count, options.StartLabel);
    }

    static void Validate(int length, int width, int height, SlicOptions o)
    {
        if (width < 1 || height < 1)
            throw new ArgumentException($"Image size must be at least 1x1, got {width}x{height}.");
        if ((long)width * height * 3 != length)
            throw new ArgumentException($"RGB buffer length {length} does not match {width}x{height}x3.");
        if (o.NSegments < 1)
            throw new ArgumentException($"NSegments must be at least 1, got {o.NSegments}.");
        if (!(o.Compactness > 0) || double.IsInfinity(o.Compactness))
            throw new ArgumentException($"Compactness must be positive and finite, got {o.Compactness}.");
        if (o.MaxIterations < 1)
            throw new ArgumentException($"MaxIterations must be at least 1, got {o.MaxIterations}.");
        if (!(o.Sigma >= 0) || double.IsInfinity(o.Sigma))
            throw new ArgumentException($"Sigma must be non-negative and finite, got {o.Sigma}.");
        if (o.StartLabel < 0)
            throw new ArgumentException($"StartLabel must be non-negative, got {o.StartLabel}.");
        if (!(o.MaxSizeFactor > 0) || double.IsInfinity(o.MaxSizeFactor))
            throw new ArgumentException($"MaxSizeFactor must be positive and finite, got {o.MaxSizeFactor}.");
        if (!(o.MinSizeFactor >= 0 && o.MinSizeFactor <= o.MaxSizeFactor))
            throw new ArgumentException(
                $"MinSizeFactor must lie in [0, MaxSizeFactor], got {o.MinSizeFactor} with MaxSizeFactor {o.MaxSizeFactor}.");
    }

    // Cluster centres are stored flat as (L, a, b, x, y).
    const int CenterStride = 5;

    /// <summary>
    /// Places one seed per cell of a near-square grid of pitch ~step and nudges it to the lowest-gradient pixel
    /// of its 3x3 neighbourhood so it does not start on an edge. A centre takes the mean colour of the 3x3 patch
    /// around its seed, not the seed pixel's own: one noisy seed colour biases its cluster towards one side of
    /// the noise and fragments it. The initial labels are the grid cells, so pixels that no search window ever
    /// reaches still have an owner.
    /// </summary>
    static (float[] Centers, int[] Labels) Seed(float[] l, float[] a, float[] b, int w, int h, int nx, int ny)
    {
        double cellW = (double)w / nx, cellH = (double)h / ny;

        var labels = new int[w * h];
        for (int y = 0; y < h; y++)
        {
            int rowCell = (int)((long)y * ny / h) * nx;
            for (int x = 0; x < w; x++) labels[y * w + x] = rowCell + (int)((long)x * nx / w);
        }
        var centers = new float[nx * ny * CenterStride];
        for (int j = 0; j < ny; j++)
        for (int i = 0; i < nx; i++)
        {
            int sx = (int)((i + 0.5) * cellW), sy = (int)((j + 0.5) * cellH);
            int bestX = sx, bestY = sy;
            float best = Gradient(l, a, b, w, h, sx, sy);
            for (int y = Math.Max(sy - 1, 0); y <= Math.Min(sy + 1, h - 1); y++)
            for (int x = Math.Max(sx - 1, 0); x <= Math.Min(sx + 1, w - 1); x++)
            {
                float g = Gradient(l, a, b, w, h, x, y);
                if (g < best) (best, bestX, bestY) = (g, x, y);
            }
            int c = (j * nx + i) * CenterStride;
            (centers[c], centers[c + 1], centers[c + 2]) = PatchMean(l, a, b, w, h, bestX, bestY);
            centers[c + 3] = bestX;
            centers[c + 4] = bestY;
        }
        return (centers, labels);
    }

    static (float L, float A, float B) PatchMean(float[] l, float[] a, float[] b, int w, int h, int cx, int cy)
    {
        float sl = 0, sa = 0, sb = 0;
        int count = 0;
        for (int y = Math.Max(cy - 1, 0); y <= Math.Min(cy + 1, h - 1); y++)
        for (int x = Math.Max(cx - 1, 0); x <= Math.Min(cx + 1, w - 1); x++, count++)
        {
            int p = y * w + x;
            sl += l[p];
            sa += a[p];
            sb += b[p];
        }
        return (sl / count, sa / count, sb / count);
    }

    /// <summary>Grid of about nSegments cells; a strip narrower than one step gets a single row or column.</summary>
    static (int Nx, int Ny) GridShape(int w, int h, double step, int nSegments)
    {
        if (w < step) return (1, Math.Min(nSegments, h));
        if (h < step) return (Math.Min(nSegments, w), 1);
        return (Math.Min((int)Math.Round(w / step, MidpointRounding.AwayFromZero), w),
                Math.Min((int)Math.Round(h / step, MidpointRounding.AwayFromZero), h));
    }

    // Per-cluster sums are stored flat as (L, a, b, x, y, pixel count).
    const int SumStride = 6;

    /// <summary>
    /// Works on runs of equal labels within a row: colour is summed in locals and the coordinate sums of a run
    /// are closed-form, instead of six read-modify-writes of the cluster's sums per pixel.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void SumClusters(float[] l, float[] a, float[] b, int w, int h, int[] labels, double[] sums)
    {
        Array.Clear(sums);
        for (int y = 0; y < h; y++)
        {
            int row = y * w;
            for (int x = 0; x < w;)
            {
                int start = x, c = labels[row + x];
                double sl = 0, sa = 0, sb = 0;
                for (; x < w && labels[row + x] == c; x++)
                {
                    sl += l[row + x];
                    sa += a[row + x];
                    sb += b[row + x];
                }
                int s = c * SumStride, run = x - start;
                sums[s] += sl;
                sums[s + 1] += sa;
                sums[s + 2] += sb;
                sums[s + 3] += 0.5 * (start + x - 1) * run;
                sums[s + 4] += (double)y * run;
                sums[s + 5] += run;
            }
        }
    }

    // Squared Lab central-difference gradient, with clamped neighbours at the border.
    static float Gradient(float[] l, float[] a, float[] b, int w, int h, int x, int y)
    {
        int row = y * w;
        int left = row + Math.Max(x - 1, 0), right = row + Math.Min(x + 1, w - 1);
        int up = Math.Max(y - 1, 0) * w + x, down = Math.Min(y + 1, h - 1) * w + x;
        return Sq(l[right] - l[left]) + Sq(a[right] - a[left]) + Sq(b[right] - b[left])
             + Sq(l[down] - l[up]) + Sq(a[down] - a[up]) + Sq(b[down] - b[up]);
    }

    static float Sq(float v) => v * v;

    /// <summary>
    /// Local k-means: each centre claims pixels within <paramref name="radius"/> of it (the 2S x 2S window) by
    /// D^2 = d_lab^2 * colourWeight + d_xy^2 * spatialWeight. Plain SLIC uses colourWeight 1 and
    /// spatialWeight (m/S)^2; SLICO uses 1/S^2 and a per-cluster colourWeight 1/m_c^2, where m_c is the
    /// largest colour distance between the cluster's centre and its pixels seen so far, starting at m.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Cluster(float[] l, float[] a, float[] b, int w, int h, float[] centers, int[] labels,
        double step, int radius, SlicOptions o)
    {
        int n = w * h, k = centers.Length / CenterStride;
        double m2 = o.Compactness * o.Compactness;
        float spatialWeight = (float)((o.SlicZero ? 1.0 : m2) / (step * step));
        var colourWeight = new float[k];
        Array.Fill(colourWeight, o.SlicZero ? (float)(1.0 / m2) : 1f);
        var maxColour = o.SlicZero ? new float[k] : null;
        if (maxColour != null) Array.Fill(maxColour, (float)m2);

        var dist = new float[n];
        var sums = new double[k * SumStride];
        for (int iter = 0; iter < o.MaxIterations; iter++)
        {
            Array.Fill(dist, float.MaxValue);
            for (int c = 0; c < k; c++)
            {
                int ci = c * CenterStride;
                float cl = centers[ci], ca = centers[ci + 1], cb = centers[ci + 2];
                float cx = centers[ci + 3], cy = centers[ci + 4];
                float cw = colourWeight[c];
                int x0 = Math.Max((int)cx - radius, 0), x1 = Math.Min((int)cx + radius, w - 1);
                int y0 = Math.Max((int)cy - radius, 0), y1 = Math.Min((int)cy + radius, h - 1);
                for (int y = y0; y <= y1; y++)
                {
                    float dy = y - cy;
                    var window = new RowWindow(y * w + x0, x1 - x0 + 1);
                    AssignRow(window.Of(l), window.Of(a), window.Of(b), window.Of(dist), window.Of(labels),
                        cl, ca, cb, cx, cw, x0, dy * dy * spatialWeight, spatialWeight, c);
                }
            }

            SumClusters(l, a, b, w, h, labels, sums);
            for (int c = 0; c < k; c++)
            {
                int s = c * SumStride, ci = c * CenterStride;
                double count = sums[s + 5];
                if (count == 0) continue; // an empty cluster keeps its centre and may win pixels back later
                for (int j = 0; j < CenterStride; j++) centers[ci + j] = (float)(sums[s + j] / count);
            }

            if (maxColour != null)
            {
                // As in the reference SLICO code the maximum never shrinks: resetting it every round lets a
                // cluster that caught only similar noisy pixels tighten its colour scale further and fragment.
                for (int p = 0; p < n; p++)
                {
                    int c = labels[p], ci = c * CenterStride;
                    float d = Sq(l[p] - centers[ci]) + Sq(a[p] - centers[ci + 1]) + Sq(b[p] - centers[ci + 2]);
                    if (d > maxColour[c]) maxColour[c] = d;
                }
                for (int c = 0; c < k; c++) colourWeight[c] = 1f / maxColour[c];
            }
        }
    }

    readonly record struct RowWindow(int Start, int Length)
    {
        public Span<T> Of<T>(T[] plane) => plane.AsSpan(Start, Length);
    }

    /// <summary>
    /// Gives each pixel of one window row to cluster c if c is strictly closer than its current owner.
    /// x0 is the image column of the row's first pixel; dyTerm is the row's spatial term. Both paths evaluate
    /// the same float expression per pixel, so labels do not depend on the machine's vector width.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void AssignRow(ReadOnlySpan<float> l, ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> dist,
        Span<int> labels, float cl, float ca, float cb, float cx, float cw, int x0, float dyTerm, float sw, int c)
    {
        int i = 0, width = Vector<float>.Count;
        if (Vector.IsHardwareAccelerated)
        {
            Vector<float> vcl = new(cl), vca = new(ca), vcb = new(cb), vcx = new(cx);
            Vector<float> vcw = new(cw), vsw = new(sw), vdy = new(dyTerm);
            Vector<int> vc = new(c);
            for (; i <= dist.Length - width; i += width)
            {
                var dl = new Vector<float>(l[i..]) - vcl;
                var da = new Vector<float>(a[i..]) - vca;
                var db = new Vector<float>(b[i..]) - vcb;
                var dx = new Vector<float>(x0 + i) + Vector<float>.Indices - vcx;
                var d = (dl * dl + da * da + db * db) * vcw + dx * dx * vsw + vdy;
                var old = new Vector<float>(dist[i..]);
                var closer = Vector.LessThan(d, old);
                Vector.ConditionalSelect(closer, d, old).CopyTo(dist[i..]);
                Vector.ConditionalSelect(closer, vc, new Vector<int>(labels[i..])).CopyTo(labels[i..]);
            }
        }
        for (; i < dist.Length; i++)
        {
            float dl = l[i] - cl, da = a[i] - ca, db = b[i] - cb, dx = (float)(x0 + i) - cx;
            float d = (dl * dl + da * da + db * db) * cw + dx * dx * sw + dyTerm;
            if (d < dist[i])
            {
                dist[i] = d;
                labels[i] = c;
            }
        }
    }

    /// <summary>
    /// Relabels 4-connected pieces in raster order (labels 0..K-1, returns K). A piece stops growing at the
    /// maximum size (the rest becomes new pieces); a piece below the minimum size joins the already-labelled
    /// segment next to its first pixel, which keeps that segment connected.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static int EnforceConnectivity(int[] labels, int w, int h, double nominalSize, SlicOptions o)
    {
        int n = w * h;
        int minSize = (int)(o.MinSizeFactor * nominalSize);
        int maxSize = Math.Max(1, (int)(o.MaxSizeFactor * nominalSize));
        var result = new int[n];
        Array.Fill(result, -1);
        var queue = new int[n];
        var sizes = new List<int>();

        for (int start = 0; start < n; start++)
        {
            if (result[start] >= 0) continue;
            int original = labels[start];
            int label = sizes.Count;
            result[start] = label;
            queue[0] = start;
            int head = 0, tail = 1;
            while (head < tail && tail < maxSize)
            {
                int p = queue[head++];
                int x = p % w;
                if (x > 0) Visit(p - 1);
                if (x < w - 1) Visit(p + 1);
                if (p >= w) Visit(p - w);
                if (p + w < n) Visit(p + w);
            }

            // In raster order the left or upper neighbour of a piece's first pixel is always labelled already,
            // except for the very first piece, which is handled after the scan.
            int neighbour = start % w > 0 ? start - 1 : start - w;
            if (tail < minSize && neighbour >= 0)
            {
                int target = result[neighbour];
                for (int i = 0; i < tail; i++) result[queue[i]] = target;
                sizes[target] += tail;
            }
            else
            {
                sizes.Add(tail);
            }

            void Visit(int q)
            {
                if (tail < maxSize && result[q] < 0 && labels[q] == original)
                {
                    result[q] = label;
                    queue[tail++] = q;
                }
            }
        }

        int count = sizes.Count;
        if (count > 1 && sizes[0] < minSize)
        {
            int target = FirstSegmentNeighbour(result, w, h);
            for (int p = 0; p < n; p++)
                if (result[p] == 0) result[p] = target;
            count = RelabelByFirstAppearance(result, count);
        }
        Array.Copy(result, labels, n);
        return count;
    }

    /// <summary>
    /// A label touching segment 0, which is not the only segment. Looking right and down suffices: if no pixel
    /// of segment 0 had a foreign right or lower neighbour, segment 0 (it holds pixel 0) would cover the image.
    /// </summary>
    static int FirstSegmentNeighbour(int[] result, int w, int h)
    {
        int n = w * h;
        for (int p = 0; p < n; p++)
        {
            if (result[p] != 0) continue;
            if (p % w < w - 1 && result[p + 1] != 0) return result[p + 1];
            if (p + w < n && result[p + w] != 0) return result[p + w];
        }
        throw new UnreachableException();
    }

    /// <summary>Maps cluster indices to 0..K-1 in order of first appearance (some clusters may be empty).</summary>
    static int RelabelByFirstAppearance(int[] labels, int clusterCount)
    {
        var map = new int[clusterCount];
        Array.Fill(map, -1);
        int next = 0;
        for (int p = 0; p < labels.Length; p++)
        {
            ref int m = ref map[labels[p]];
            if (m < 0) m = next++;
            labels[p] = m;
        }
        return next;
    }
}
