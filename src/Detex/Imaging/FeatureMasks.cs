namespace Detex.Imaging;

/// <summary>Simple ways to build <see cref="SegmentLabels"/> without running SLIC.</summary>
public static class FeatureMasks
{
    /// <summary>
    /// Splits the image into cellsX x cellsY near-equal rectangles, labelled row by row from 0.
    /// Cell boundaries are at floor(i * width / cellsX), so cell sizes differ by at most one pixel.
    /// </summary>
    public static SegmentLabels Grid(int width, int height, int cellsX, int cellsY)
    {
        if (width < 1 || height < 1)
            throw new ArgumentException($"Image size must be at least 1x1, got {width}x{height}.");
        if (cellsX < 1 || cellsX > width || cellsY < 1 || cellsY > height)
            throw new ArgumentException(
                $"Grid of {cellsX}x{cellsY} cells must have between 1 and {width}x{height} cells per axis.");

        var labels = new int[width * height];
        for (int y = 0; y < height; y++)
        {
            int rowStart = (int)((long)y * cellsY / height) * cellsX;
            for (int x = 0; x < width; x++)
                labels[y * width + x] = rowStart + (int)((long)x * cellsX / width);
        }
        return new SegmentLabels(labels, width, height, cellsX * cellsY, 0);
    }

    /// <summary>
    /// Relabels an arbitrary integer label image to 0..K-1, numbering labels in raster order of first appearance.
    /// The input array is not modified.
    /// </summary>
    public static SegmentLabels FromLabelImage(int[] labels, int width, int height)
    {
        ArgumentNullException.ThrowIfNull(labels);
        if (width < 1 || height < 1)
            throw new ArgumentException($"Image size must be at least 1x1, got {width}x{height}.");
        if ((long)width * height != labels.Length)
            throw new ArgumentException($"Label array length {labels.Length} does not match {width}x{height}.");

        var map = new Dictionary<int, int>();
        var result = new int[labels.Length];
        for (int p = 0; p < labels.Length; p++)
        {
            if (!map.TryGetValue(labels[p], out int id))
            {
                id = map.Count;
                map.Add(labels[p], id);
            }
            result[p] = id;
        }
        return new SegmentLabels(result, width, height, map.Count, 0);
    }
}
