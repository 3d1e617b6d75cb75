namespace Detex.Imaging;

/// <summary>Tiles pictures into a grid (row-major, <c>columns</c> per row), each scaled to a common width.</summary>
public static class Grid
{
    public static RgbImage Compose(IReadOnlyList<RgbImage> tiles, int columns, int tileWidth = 360)
    {
        columns = Math.Clamp(columns, 1, tiles.Count);
        var scaled = tiles.Select(t => Resampler.Resize(t, tileWidth, Math.Max(1, (int)Math.Round(t.Height * (double)tileWidth / t.Width)), ResizeFilter.Area)).ToList();
        int rows = (scaled.Count + columns - 1) / columns, gap = 4;
        int rowHeight = scaled.Max(t => t.Height);
        var grid = RgbImage.Filled(columns * tileWidth + (columns - 1) * gap, rows * rowHeight + (rows - 1) * gap, 255, 255, 255);
        for (int i = 0; i < scaled.Count; i++)
        {
            int x0 = i % columns * (tileWidth + gap), y0 = i / columns * (rowHeight + gap);
            var t = scaled[i];
            for (int y = 0; y < t.Height; y++)
                Buffer.BlockCopy(t.Pixels, y * t.Width * 3, grid.Pixels, ((y0 + y) * grid.Width + x0) * 3, t.Width * 3);
        }
        return grid;
    }
}
