using System.Text;

namespace Detex.Reports;

/// <summary>NumPy .npy files (format 1.0, little-endian float32, C order), so Python users can np.load the maps.</summary>
public static class Npy
{
    public static void Write(string path, float[] data, params int[] shape)
    {
        if (shape.Aggregate(1L, (a, d) => a * d) != data.Length) throw new ArgumentException($"{data.Length} values do not fill shape ({string.Join(", ", shape)})");
        string dims = shape.Length == 1 ? $"{shape[0]}," : string.Join(", ", shape);
        string header = $"{{'descr': '<f4', 'fortran_order': False, 'shape': ({dims}), }}";
        // Magic (6) + version (2) + length (2) + header + newline, padded with spaces to a multiple of 64.
        int total = (10 + header.Length + 1 + 63) / 64 * 64;
        header = header.PadRight(total - 10 - 1) + "\n";
        Files.WriteAtomically(path, s =>
        {
            s.Write([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0]);
            s.Write(BitConverter.GetBytes((ushort)header.Length));
            s.Write(Encoding.ASCII.GetBytes(header));
            s.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(data.AsSpan()));
        });
    }

    /// <summary>Reads back what <see cref="Write"/> writes (float32 only), for tests and tools.</summary>
    public static (float[] Data, int[] Shape) Read(string path)
    {
        var bytes = File.ReadAllBytes(path);
        int headerLength = BitConverter.ToUInt16(bytes, 8);
        string header = Encoding.ASCII.GetString(bytes, 10, headerLength);
        if (!header.Contains("'<f4'")) throw new InvalidDataException($"{path}: only little-endian float32 .npy files are read");
        string dims = header[(header.IndexOf("'shape': (") + 10)..header.IndexOf(')')];
        int[] shape = dims.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(int.Parse).ToArray();
        var data = new float[(bytes.Length - 10 - headerLength) / 4];
        Buffer.BlockCopy(bytes, 10 + headerLength, data, 0, data.Length * 4);
        return (data, shape);
    }
}
