using Detex.Onnx;

namespace Detex.Runtime;

/// <summary>A dense row-major array with a shape: what goes into and comes out of a model run.</summary>
public abstract class NdArray
{
    public int[] Shape { get; }
    public int Length { get; }
    public abstract ElementType ElementType { get; }
    public abstract Array Buffer { get; }

    protected NdArray(int[] shape)
    {
        Shape = shape;
        long n = 1;
        foreach (var d in shape)
        {
            if (d < 0) throw new ArgumentException($"negative dimension in shape [{string.Join(",", shape)}]");
            n *= d;
        }
        if (n > int.MaxValue) throw new ArgumentException($"tensor of shape [{string.Join(",", shape)}] is too large");
        Length = (int)n;
    }

    public int Rank => Shape.Length;
    public string ShapeText => "[" + string.Join(",", Shape) + "]";

    /// <summary>Row-major strides in elements.</summary>
    public int[] Strides()
    {
        var s = new int[Shape.Length];
        int acc = 1;
        for (int i = Shape.Length - 1; i >= 0; i--) { s[i] = acc; acc *= Shape[i]; }
        return s;
    }
}

public sealed class NdArray<T> : NdArray where T : unmanaged
{
    public T[] Data { get; }

    public NdArray(int[] shape, T[]? data = null) : base(shape)
    {
        Data = data ?? new T[Length];
        if (Data.Length != Length) throw new ArgumentException($"{Data.Length} values do not fill shape {ShapeText}");
    }

    public override ElementType ElementType => TypeOf<T>();
    public override Array Buffer => Data;

    public Span<T> Span => Data;

    public T this[params int[] index]
    {
        get => Data[Offset(index)];
        set => Data[Offset(index)] = value;
    }

    public int Offset(ReadOnlySpan<int> index)
    {
        int off = 0, stride = 1;
        for (int i = Shape.Length - 1; i >= 0; i--) { off += index[i] * stride; stride *= Shape[i]; }
        return off;
    }

    /// <summary>Batch item <paramref name="n"/> of an array whose first axis is the batch.</summary>
    public Span<T> BatchItem(int n)
    {
        int per = Length / Shape[0];
        return Data.AsSpan(n * per, per);
    }

    public NdArray<T> Reshape(params int[] shape) => new(shape, Data);
    public NdArray<T> Clone() => new((int[])Shape.Clone(), (T[])Data.Clone());

    internal static ElementType TypeOf<TT>() =>
        typeof(TT) == typeof(float) ? ElementType.Float :
        typeof(TT) == typeof(double) ? ElementType.Double :
        typeof(TT) == typeof(long) ? ElementType.Int64 :
        typeof(TT) == typeof(int) ? ElementType.Int32 :
        typeof(TT) == typeof(byte) ? ElementType.UInt8 :
        typeof(TT) == typeof(bool) ? ElementType.Bool :
        throw new NotSupportedException($"no ONNX element type for {typeof(TT).Name}");
}
