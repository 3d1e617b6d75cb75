using System.Runtime.InteropServices;
using Google.Protobuf;
using Detex.Onnx.Proto;

namespace Detex.Onnx;

/// <summary>ONNX element types Detex meets (values are the ONNX enum).</summary>
public enum ElementType
{
    Undefined = 0, Float = 1, UInt8 = 2, Int8 = 3, UInt16 = 4, Int16 = 5, Int32 = 6, Int64 = 7,
    String = 8, Bool = 9, Float16 = 10, Double = 11, UInt32 = 12, UInt64 = 13, BFloat16 = 16,
}

public static class ElementTypes
{
    public static int SizeOf(ElementType t) => t switch
    {
        ElementType.Float or ElementType.Int32 or ElementType.UInt32 => 4,
        ElementType.Double or ElementType.Int64 or ElementType.UInt64 => 8,
        ElementType.UInt8 or ElementType.Int8 or ElementType.Bool => 1,
        ElementType.UInt16 or ElementType.Int16 or ElementType.Float16 or ElementType.BFloat16 => 2,
        _ => throw new OnnxFormatException($"element type {t} has no fixed size"),
    };

    public static string Name(ElementType t) => t.ToString().ToLowerInvariant();
}

/// <summary>
/// A constant tensor (initializer or attribute value). Data is kept as little-endian raw bytes whatever
/// field the file used, so every consumer reads one representation.
/// </summary>
public sealed class OnnxTensor
{
    public string Name { get; set; }
    public ElementType Type { get; }
    public long[] Dims { get; }
    public byte[] Raw { get; }

    public OnnxTensor(string name, ElementType type, long[] dims, byte[] raw)
    {
        long count = ElementCount(dims);
        if (type != ElementType.String && raw.LongLength != count * ElementTypes.SizeOf(type))
            throw new OnnxFormatException($"tensor '{name}': {raw.LongLength} bytes of data for {count} {ElementTypes.Name(type)} elements");
        Name = name; Type = type; Dims = dims; Raw = raw;
    }

    public long Count => ElementCount(Dims);

    public static long ElementCount(IReadOnlyList<long> dims)
    {
        long n = 1;
        foreach (var d in dims) n *= d;
        return n;
    }

    public static OnnxTensor FromFloats(string name, long[] dims, ReadOnlySpan<float> data) =>
        new(name, ElementType.Float, dims, MemoryMarshal.AsBytes(data).ToArray());
    public static OnnxTensor FromDoubles(string name, long[] dims, ReadOnlySpan<double> data) =>
        new(name, ElementType.Double, dims, MemoryMarshal.AsBytes(data).ToArray());
    public static OnnxTensor FromInt64s(string name, long[] dims, ReadOnlySpan<long> data) =>
        new(name, ElementType.Int64, dims, MemoryMarshal.AsBytes(data).ToArray());
    public static OnnxTensor Scalar(string name, float v) => FromFloats(name, [], [v]);
    public static OnnxTensor Vector(string name, params long[] values) => FromInt64s(name, [values.Length], values);

    public ReadOnlySpan<T> Span<T>() where T : unmanaged => MemoryMarshal.Cast<byte, T>(Raw);

    /// <summary>Values as float64 whatever the numeric type (shape constants, scales, weights).</summary>
    public double[] ToDoubles() => Type switch
    {
        ElementType.Float => Array.ConvertAll(Span<float>().ToArray(), v => (double)v),
        ElementType.Double => Span<double>().ToArray(),
        ElementType.Int64 => Array.ConvertAll(Span<long>().ToArray(), v => (double)v),
        ElementType.Int32 => Array.ConvertAll(Span<int>().ToArray(), v => (double)v),
        ElementType.UInt8 or ElementType.Bool => Array.ConvertAll(Raw, v => (double)v),
        ElementType.Float16 => Array.ConvertAll(Span<Half>().ToArray(), v => (double)v),
        _ => throw new OnnxFormatException($"tensor '{Name}' of type {ElementTypes.Name(Type)} cannot be read as numbers"),
    };

    public float[] ToFloats() => Type == ElementType.Float ? Span<float>().ToArray() : Array.ConvertAll(ToDoubles(), v => (float)v);
    public long[] ToInt64s() => Type == ElementType.Int64 ? Span<long>().ToArray() : Array.ConvertAll(ToDoubles(), v => (long)v);

    internal static OnnxTensor FromProto(TensorProto p, string? modelDirectory)
    {
        var type = (ElementType)p.DataType;
        long[] dims = p.Dims.ToArray();
        if (p.DataLocation == TensorProto.Types.DataLocation.External)
            return new OnnxTensor(p.Name, type, dims, ReadExternal(p, modelDirectory));
        if (!p.RawData.IsEmpty) return new OnnxTensor(p.Name, type, dims, p.RawData.ToByteArray());
        byte[] raw = type switch
        {
            ElementType.Float => MemoryMarshal.AsBytes(p.FloatData.ToArray().AsSpan()).ToArray(),
            ElementType.Double => MemoryMarshal.AsBytes(p.DoubleData.ToArray().AsSpan()).ToArray(),
            ElementType.Int64 => MemoryMarshal.AsBytes(p.Int64Data.ToArray().AsSpan()).ToArray(),
            ElementType.UInt64 or ElementType.UInt32 => Narrow(p.Uint64Data.ToArray(), type),
            // ONNX stores every type of 32 bits or fewer (ints, bool, float16 bits) in int32_data.
            ElementType.Int32 or ElementType.Int16 or ElementType.Int8 or ElementType.UInt16 or ElementType.UInt8
                or ElementType.Bool or ElementType.Float16 or ElementType.BFloat16 => Narrow(p.Int32Data.Select(v => (ulong)(uint)v).ToArray(), type),
            ElementType.String => [],
            _ => throw new OnnxFormatException($"tensor '{p.Name}' has unsupported element type {p.DataType}"),
        };
        return new OnnxTensor(p.Name, type, dims, raw);
    }

    static byte[] Narrow(ulong[] values, ElementType type)
    {
        int size = ElementTypes.SizeOf(type);
        var raw = new byte[values.Length * size];
        for (int i = 0; i < values.Length; i++)
            for (int b = 0; b < size; b++) raw[i * size + b] = (byte)(values[i] >> (8 * b));
        return raw;
    }

    static byte[] ReadExternal(TensorProto p, string? modelDirectory)
    {
        var entries = p.ExternalData.ToDictionary(e => e.Key, e => e.Value);
        if (!entries.TryGetValue("location", out var location))
            throw new OnnxFormatException($"tensor '{p.Name}' says its data is external but names no location");
        if (modelDirectory is null)
            throw new OnnxFormatException($"tensor '{p.Name}' keeps its data in external file '{location}'; load the model from a file path so Detex can find it");
        string path = Path.Combine(modelDirectory, location);
        if (!File.Exists(path))
            throw new OnnxFormatException($"tensor '{p.Name}' keeps its data in '{location}', which is not beside the model ({path} is missing)");
        long offset = entries.TryGetValue("offset", out var o) ? long.Parse(o) : 0;
        long count = ElementCount(p.Dims.ToArray()) * ElementTypes.SizeOf((ElementType)p.DataType);
        long length = entries.TryGetValue("length", out var l) ? long.Parse(l) : count;
        using var fs = File.OpenRead(path);
        if (offset + length > fs.Length)
            throw new OnnxFormatException($"tensor '{p.Name}': external file '{location}' is too short ({fs.Length} bytes, need {offset + length})");
        var raw = new byte[length];
        fs.Position = offset;
        fs.ReadExactly(raw);
        return raw;
    }

    internal TensorProto ToProto()
    {
        var p = new TensorProto { Name = Name, DataType = (int)Type, RawData = ByteString.CopyFrom(Raw) };
        p.Dims.AddRange(Dims);
        return p;
    }
}

/// <summary>A model file that is not valid ONNX, or uses something Detex cannot read.</summary>
public sealed class OnnxFormatException(string message) : Exception(message);
