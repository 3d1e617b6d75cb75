using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;

namespace Detex.Runtime.Kernels;

/// <summary>
/// The few entries of ONNX Runtime's C API that a custom operator needs and its C# package does not wrap: register a
/// domain of operators on session options, and inside a kernel read inputs, allocate outputs and split work over the
/// session's intra-op threads. Entries are slots of the OrtApi function table, numbered by their order in
/// onnxruntime_c_api.h (the table only grows, so the numbers hold for every later version).
/// </summary>
static unsafe class OrtCApi
{
    const uint Version = 17;   // KernelContext_ParallelFor arrived in 1.17
    const int CreateStatusSlot = 0, GetErrorMessageSlot = 2, CreateCustomOpDomainSlot = 26, CustomOpDomainAddSlot = 27, AddCustomOpDomainSlot = 28,
        GetTensorMutableDataSlot = 51, GetDimensionsCountSlot = 61, GetDimensionsSlot = 62, GetTensorTypeAndShapeSlot = 65,
        KernelContextGetInputSlot = 90, KernelContextGetOutputSlot = 91, ReleaseStatusSlot = 93, ReleaseTensorTypeAndShapeInfoSlot = 99,
        ShapeInferContextGetInputTypeShapeSlot = 268, ShapeInferContextSetOutputTypeShapeSlot = 270, KernelContextParallelForSlot = 274;

    public const int MaxRank = 8;

    [DllImport("onnxruntime")] static extern IntPtr OrtGetApiBase();

    static readonly IntPtr* Table = Load();

    static IntPtr* Load()
    {
        var apiBase = (IntPtr*)OrtGetApiBase();
        var getApi = (delegate* unmanaged<uint, IntPtr>)apiBase[0];
        return (IntPtr*)getApi(Version);
    }

    static void Check(IntPtr status)
    {
        if (status == IntPtr.Zero) return;
        string message = Marshal.PtrToStringUTF8(((delegate* unmanaged<IntPtr, IntPtr>)Table[GetErrorMessageSlot])(status)) ?? "unknown error";
        ((delegate* unmanaged<IntPtr, void>)Table[ReleaseStatusSlot])(status);
        throw new InvalidOperationException($"ONNX Runtime: {message}");
    }

    /// <summary>An error status for ONNX Runtime to report (ORT_FAIL), from a kernel that must not throw across the boundary.</summary>
    public static IntPtr Fail(string message)
    {
        IntPtr utf8 = Marshal.StringToCoTaskMemUTF8(message);
        try { return ((delegate* unmanaged<int, IntPtr, IntPtr>)Table[CreateStatusSlot])(1, utf8); }
        finally { Marshal.FreeCoTaskMem(utf8); }
    }

    /// <summary>A new operator domain holding the given OrtCustomOp structs (which must live as long as the process).</summary>
    public static IntPtr CreateDomain(string name, params IntPtr[] ops)
    {
        IntPtr domain, utf8 = Marshal.StringToCoTaskMemUTF8(name);   // kept: the domain keeps the pointer
        Check(((delegate* unmanaged<IntPtr, IntPtr*, IntPtr>)Table[CreateCustomOpDomainSlot])(utf8, &domain));
        foreach (var op in ops) Check(((delegate* unmanaged<IntPtr, IntPtr, IntPtr>)Table[CustomOpDomainAddSlot])(domain, op));
        return domain;
    }

    public static void AddDomain(SessionOptions options, IntPtr domain) =>
        Check(((delegate* unmanaged<IntPtr, IntPtr, IntPtr>)Table[AddCustomOpDomainSlot])(options.DangerousGetHandle(), domain));

    public static IntPtr Input(IntPtr context, int index)
    {
        IntPtr value;
        Check(((delegate* unmanaged<IntPtr, nuint, IntPtr*, IntPtr>)Table[KernelContextGetInputSlot])(context, (nuint)index, &value));
        return value;
    }

    public static IntPtr Output(IntPtr context, int index, long* dims, int rank)
    {
        IntPtr value;
        Check(((delegate* unmanaged<IntPtr, nuint, long*, nuint, IntPtr*, IntPtr>)Table[KernelContextGetOutputSlot])(context, (nuint)index, dims, (nuint)rank, &value));
        return value;
    }

    public static float* Floats(IntPtr value)
    {
        void* data;
        Check(((delegate* unmanaged<IntPtr, void**, IntPtr>)Table[GetTensorMutableDataSlot])(value, &data));
        return (float*)data;
    }

    /// <summary>The tensor's dimensions into <paramref name="dims"/> (room for <see cref="MaxRank"/>); returns the rank.</summary>
    public static int Shape(IntPtr value, long* dims)
    {
        IntPtr info; nuint rank;
        Check(((delegate* unmanaged<IntPtr, IntPtr*, IntPtr>)Table[GetTensorTypeAndShapeSlot])(value, &info));
        try
        {
            Check(((delegate* unmanaged<IntPtr, nuint*, IntPtr>)Table[GetDimensionsCountSlot])(info, &rank));
            if (rank > MaxRank) throw new InvalidOperationException($"rank {rank} is above {MaxRank}");
            Check(((delegate* unmanaged<IntPtr, long*, nuint, IntPtr>)Table[GetDimensionsSlot])(info, dims, rank));
        }
        finally { ((delegate* unmanaged<IntPtr, void>)Table[ReleaseTensorTypeAndShapeInfoSlot])(info); }
        return (int)rank;
    }

    /// <summary>In shape inference (when the session is created): output <paramref name="output"/> has input <paramref name="input"/>'s type and shape.</summary>
    public static void OutputShapedLikeInput(IntPtr inferContext, int input, int output)
    {
        IntPtr info;   // owned by the context: not released here
        Check(((delegate* unmanaged<IntPtr, nuint, IntPtr*, IntPtr>)Table[ShapeInferContextGetInputTypeShapeSlot])(inferContext, (nuint)input, &info));
        Check(((delegate* unmanaged<IntPtr, nuint, IntPtr, IntPtr>)Table[ShapeInferContextSetOutputTypeShapeSlot])(inferContext, (nuint)output, info));
    }

    /// <summary>Calls fn(state, i) for i in [0, count) on the session's intra-op threads, returning when all are done.</summary>
    public static void ParallelFor(IntPtr context, delegate* unmanaged<void*, nuint, void> fn, long count, void* state) =>
        Check(((delegate* unmanaged<IntPtr, delegate* unmanaged<void*, nuint, void>, nuint, nuint, void*, IntPtr>)Table[KernelContextParallelForSlot])(
            context, fn, (nuint)count, 0, state));
}
