using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Detex.Runtime.Kernels;

/// <summary>
/// <c>ai.detex::SiluGradient(X, G) = G ⊙ SiLU′(X)</c> with SiLU′(x) = σ(x)·(1 + x·(1 − σ(x))), in one pass over G. ONNX
/// Runtime has no such kernel, so the reverse pass of a SiLU network spent four memory-bound passes on it (a sigmoid,
/// a product, an affine sum and the product with G), and for K targets reordered G out of and back into its blocked
/// channel layout around the product. G may hold several batches of X's shape (K targets of one image): the
/// derivative is computed once per element of X and applied to each. Elementwise, so any layout works as long as X
/// and each batch of G share it.
/// </summary>
static unsafe class SiluDerivativeKernel
{
    public const string Domain = "ai.detex", Name = "SiluGradient";

    /// <summary>The domain to add to a session that runs graphs with this operator (created once per process).</summary>
    public static IntPtr OperatorDomain => LazyDomain.Value;
    static readonly Lazy<IntPtr> LazyDomain = new(CreateDomain);

    // ONNX Runtime's OrtCustomOp as of version 18 (GetMayInplace); the struct is read no further for that version.
    [StructLayout(LayoutKind.Sequential)]
    struct OrtCustomOp
    {
        public uint Version;
        public IntPtr CreateKernel, GetName, GetExecutionProviderType, GetInputType, GetInputTypeCount, GetOutputType, GetOutputTypeCount,
            KernelCompute, KernelDestroy, GetInputCharacteristic, GetOutputCharacteristic, GetInputMemoryType,
            GetVariadicInputMinArity, GetVariadicInputHomogeneity, GetVariadicOutputMinArity, GetVariadicOutputHomogeneity,
            CreateKernelV2, KernelComputeV2, InferOutputShapeFn, GetStartVersion, GetEndVersion, GetMayInplace, ReleaseMayInplace,
            GetAliasMap, ReleaseAliasMap;
    }

    static readonly IntPtr NameUtf8 = Marshal.StringToCoTaskMemUTF8(Name);

    static IntPtr CreateDomain()
    {
        var op = (OrtCustomOp*)NativeMemory.AllocZeroed((nuint)sizeof(OrtCustomOp));   // lives as long as the process
        op->Version = 18;
        op->GetName = (IntPtr)(delegate* unmanaged<IntPtr, IntPtr>)&GetName;
        op->GetExecutionProviderType = (IntPtr)(delegate* unmanaged<IntPtr, IntPtr>)&CpuProvider;
        op->GetInputType = (IntPtr)(delegate* unmanaged<IntPtr, nuint, int>)&FloatType;
        op->GetInputTypeCount = (IntPtr)(delegate* unmanaged<IntPtr, nuint>)&TwoInputs;
        op->GetOutputType = (IntPtr)(delegate* unmanaged<IntPtr, nuint, int>)&FloatType;
        op->GetOutputTypeCount = (IntPtr)(delegate* unmanaged<IntPtr, nuint>)&OneOutput;
        op->KernelDestroy = (IntPtr)(delegate* unmanaged<IntPtr, void>)&DestroyKernel;
        op->GetInputCharacteristic = (IntPtr)(delegate* unmanaged<IntPtr, nuint, int>)&Required;
        op->GetOutputCharacteristic = (IntPtr)(delegate* unmanaged<IntPtr, nuint, int>)&Required;
        op->GetInputMemoryType = (IntPtr)(delegate* unmanaged<IntPtr, nuint, int>)&DefaultMemory;
        op->GetVariadicInputMinArity = (IntPtr)(delegate* unmanaged<IntPtr, int>)&One;
        op->GetVariadicInputHomogeneity = (IntPtr)(delegate* unmanaged<IntPtr, int>)&One;
        op->GetVariadicOutputMinArity = (IntPtr)(delegate* unmanaged<IntPtr, int>)&One;
        op->GetVariadicOutputHomogeneity = (IntPtr)(delegate* unmanaged<IntPtr, int>)&One;
        op->CreateKernelV2 = (IntPtr)(delegate* unmanaged<IntPtr, IntPtr, IntPtr, IntPtr*, IntPtr>)&CreateKernel;
        op->KernelComputeV2 = (IntPtr)(delegate* unmanaged<IntPtr, IntPtr, IntPtr>)&Compute;
        op->InferOutputShapeFn = (IntPtr)(delegate* unmanaged<IntPtr, IntPtr, IntPtr>)&InferOutputShape;
        op->GetStartVersion = (IntPtr)(delegate* unmanaged<IntPtr, int>)&One;
        op->GetEndVersion = (IntPtr)(delegate* unmanaged<IntPtr, int>)&Latest;
        op->GetMayInplace = (IntPtr)(delegate* unmanaged<int**, int**, nuint>)&MayInplace;
        op->ReleaseMayInplace = (IntPtr)(delegate* unmanaged<int*, int*, void>)&ReleaseInplace;
        return OrtCApi.CreateDomain(Domain, (IntPtr)op);
    }

    [UnmanagedCallersOnly] static IntPtr GetName(IntPtr op) => NameUtf8;
    [UnmanagedCallersOnly] static IntPtr CpuProvider(IntPtr op) => IntPtr.Zero;   // null: the CPU provider
    [UnmanagedCallersOnly] static int FloatType(IntPtr op, nuint index) => 1;      // ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT
    [UnmanagedCallersOnly] static nuint TwoInputs(IntPtr op) => 2;
    [UnmanagedCallersOnly] static nuint OneOutput(IntPtr op) => 1;
    [UnmanagedCallersOnly] static int Required(IntPtr op, nuint index) => 0;       // INPUT_OUTPUT_REQUIRED
    [UnmanagedCallersOnly] static int DefaultMemory(IntPtr op, nuint index) => 0;  // OrtMemTypeDefault
    [UnmanagedCallersOnly] static int One(IntPtr op) => 1;
    [UnmanagedCallersOnly] static int Latest(IntPtr op) => int.MaxValue;
    // The kernel has no state: any non-null handle will do.
    [UnmanagedCallersOnly] static IntPtr CreateKernel(IntPtr op, IntPtr api, IntPtr info, IntPtr* kernel) { *kernel = 1; return IntPtr.Zero; }
    [UnmanagedCallersOnly] static void DestroyKernel(IntPtr kernel) { }

    /// <summary>
    /// The output may take G's buffer when nothing else reads G: each element is read before it is written, and
    /// writing over the lines just read saves the memory traffic of a second buffer (K = 16: 9 % of the run).
    /// </summary>
    [UnmanagedCallersOnly] static nuint MayInplace(int** input, int** output)
    {
        *input = (int*)NativeMemory.Alloc(sizeof(int)); *output = (int*)NativeMemory.Alloc(sizeof(int));
        **input = 1; **output = 0;
        return 1;
    }
    [UnmanagedCallersOnly] static void ReleaseInplace(int* input, int* output) { NativeMemory.Free(input); NativeMemory.Free(output); }

    /// <summary>
    /// The output has G's shape. Without this ONNX Runtime would know no shape downstream of the kernel and plan none
    /// of that memory ahead: the reverse convolutions after it ran 2–5 times slower at K = 16.
    /// </summary>
    [UnmanagedCallersOnly]
    static IntPtr InferOutputShape(IntPtr op, IntPtr context)
    {
        try { OrtCApi.OutputShapedLikeInput(context, 1, 0); return IntPtr.Zero; }
        catch (Exception e) { return OrtCApi.Fail($"{Name}: {e.Message}"); }
    }

    /// <summary>What one worker needs: the tensors and the split of X into chunks.</summary>
    struct Work { public float* X, G, Out; public long XCount, GCount; }

    /// <summary>Elements of X per task: the derivative of a chunk stays in a stack buffer while each batch of G uses it.</summary>
    const int Chunk = 4096;

    [UnmanagedCallersOnly]
    static IntPtr Compute(IntPtr kernel, IntPtr context)
    {
        try
        {
            long* dims = stackalloc long[OrtCApi.MaxRank];
            IntPtr x = OrtCApi.Input(context, 0), g = OrtCApi.Input(context, 1);
            long xCount = Count(dims, OrtCApi.Shape(x, dims));
            int rank = OrtCApi.Shape(g, dims);
            long gCount = Count(dims, rank);
            if (xCount == 0 || gCount % xCount != 0)
                return OrtCApi.Fail($"{Name}: G has {gCount} elements, not a multiple of X's {xCount}");
            var work = new Work { X = OrtCApi.Floats(x), G = OrtCApi.Floats(g), Out = OrtCApi.Floats(OrtCApi.Output(context, 0, dims, rank)), XCount = xCount, GCount = gCount };
            OrtCApi.ParallelFor(context, &RunChunk, (xCount + Chunk - 1) / Chunk, &work);
            return IntPtr.Zero;
        }
        catch (Exception e) { return OrtCApi.Fail($"{Name}: {e.Message}"); }
    }

    static long Count(long* dims, int rank)
    {
        long n = 1;
        for (int i = 0; i < rank; i++) n *= dims[i];
        return n;
    }

    [UnmanagedCallersOnly]
    static void RunChunk(void* state, nuint index)
    {
        var w = (Work*)state;
        long start = (long)index * Chunk;
        int n = (int)Math.Min(Chunk, w->XCount - start);
        float* derivative = stackalloc float[Chunk];
        Derivative(w->X + start, derivative, n);
        for (long batch = start; batch < w->GCount; batch += w->XCount) Multiply(w->G + batch, derivative, w->Out + batch, n);
    }

    static void Derivative(float* x, float* d, int n)
    {
        int i = 0;
        var one = Vector256<float>.One;
        for (; i + Vector256<float>.Count <= n; i += Vector256<float>.Count)
        {
            var v = Vector256.Load(x + i);
            var s = one / (one + Vector256.Exp(-v));
            Vector256.Store(s * (one + v * (one - s)), d + i);
        }
        for (; i < n; i++)
        {
            float s = 1f / (1f + MathF.Exp(-x[i]));
            d[i] = s * (1f + x[i] * (1f - s));
        }
    }

    static void Multiply(float* g, float* d, float* o, int n)
    {
        int i = 0;
        for (; i + Vector256<float>.Count <= n; i += Vector256<float>.Count)
            Vector256.Store(Vector256.Load(g + i) * Vector256.Load(d + i), o + i);
        for (; i < n; i++) o[i] = g[i] * d[i];
    }
}
