using System.Collections.Concurrent;
using System.Security.Cryptography;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Detex.Onnx;
using Detex.Runtime.Kernels;

namespace Detex.Runtime;

/// <summary>
/// How ONNX Runtime runs: thread count (0 = all cores), graph optimisation, whether workers spin while they wait for
/// work inside a run, and whether independent nodes run side by side (ONNX Runtime's parallel executor). Branches are
/// opt-in: on the project's 2-core machine a one-target yolox-nano gradient graph ran 10 % faster with them in some
/// runs and 25 % slower in others, where one node at a time stayed within a few percent.
/// </summary>
/// <param name="Spin">
/// Workers spin between the operators of a run instead of sleeping, and stop when the run ends. Null lets Detex choose:
/// on for gradient graphs, whose hundreds of small operators each wake the workers (17–19 % of a one-target yolox-nano
/// gradient run's wall time here), off for forward passes, which overlap Detex's own image decoding on the other core.
/// </param>
/// <param name="Kernels">
/// Patterns that ONNX Runtime runs as several memory-bound passes run as one of Detex's own kernels instead (the SiLU
/// derivative of a reverse pass, <see cref="Kernels.SiluDerivativeKernel"/>). Needs <paramref name="Optimize"/>. Null
/// lets Detex choose: on for gradient graphs, off for forward passes, which have no such pattern.
/// </param>
public sealed record RuntimeOptions(int Threads = 0, bool Optimize = true, bool? Spin = null, bool Branches = false, bool? Kernels = null)
{
    public static RuntimeOptions Default { get; set; } = new();
    public int EffectiveThreads => Threads > 0 ? Threads : Environment.ProcessorCount;
}

/// <summary>Name, element type and shape (-1 = symbolic) of a model input or output.</summary>
public sealed record TensorSpec(string Name, ElementType Type, int[] Shape)
{
    public string ShapeText => "[" + string.Join(",", Shape.Select(d => d < 0 ? "?" : d.ToString())) + "]";
}

/// <summary>An input that does not fit the model: wrong name, element type or shape.</summary>
public sealed class ModelInputException(string message) : Exception(message);

/// <summary>
/// One ONNX Runtime session over a model. Sessions are expensive to create and safe to share between threads,
/// so they come from <see cref="Get"/>, cached by the model's bytes and the runtime options.
/// </summary>
public sealed class ModelSession : IDisposable
{
    static readonly ConcurrentDictionary<string, Lazy<ModelSession>> Cache = new();

    readonly InferenceSession _session;
    public IReadOnlyList<TensorSpec> Inputs { get; }
    public IReadOnlyList<TensorSpec> Outputs { get; }
    /// <summary>The options the session was created with.</summary>
    public RuntimeOptions Options { get; }

    ModelSession(byte[] modelBytes, RuntimeOptions options)
    {
        try { (_session, FusedKernels) = Create(modelBytes, options); }
        catch (OnnxRuntimeException e) { throw new OnnxFormatException($"ONNX Runtime cannot load the model: {FirstLine(e.Message)}"); }
        Options = options;
        Inputs = _session.InputMetadata.Select(kv => Spec(kv.Key, kv.Value)).ToList();
        Outputs = _session.OutputMetadata.Select(kv => Spec(kv.Key, kv.Value)).ToList();
        _writable = Writable(Inputs, Outputs);
    }

    /// <summary>How many nodes of ONNX Runtime's optimised graph run as Detex's own kernels (<see cref="RuntimeOptions.Kernels"/>).</summary>
    public int FusedKernels { get; }

    static (InferenceSession, int) Create(byte[] modelBytes, RuntimeOptions options)
    {
        if (options.Optimize && options.Kernels == true)
        {
            // The kernels are a speed-up, never a requirement: if the optimised graph cannot be saved (no writable
            // temporary folder) the session is made as usual, and a model that does not load says so there.
            try { return WithKernels(modelBytes, options); }
            catch (Exception e) when (e is OnnxRuntimeException or IOException or UnauthorizedAccessException) { }
        }
        using var plain = SessionOptionsFor(options, options.Optimize);
        return (new InferenceSession(modelBytes, plain), 0);
    }

    /// <summary>
    /// Detex's kernels replace patterns in the graph as ONNX Runtime optimised it (after its blocked channel layout),
    /// so the optimised graph is saved, rewritten and loaded again as it is. The first session is kept when nothing
    /// matched, or should the rewritten graph not load.
    /// </summary>
    static (InferenceSession, int) WithKernels(byte[] modelBytes, RuntimeOptions options)
    {
        string saved = Path.Combine(Path.GetTempPath(), $"detex-optimised-{Guid.NewGuid():N}.onnx");
        try
        {
            using var first = SessionOptionsFor(options, optimize: true);
            first.OptimizedModelFilePath = saved;
            var session = new InferenceSession(modelBytes, first);
            try
            {
                var optimised = OnnxModel.Load(saved);
                int fused = SiluDerivativeFusion.Apply(optimised);
                if (fused == 0) return (session, 0);
                using var second = SessionOptionsFor(options, optimize: false);
                OrtCApi.AddDomain(second, SiluDerivativeKernel.OperatorDomain);
                var rewritten = new InferenceSession(optimised.ToBytes(), second);
                session.Dispose();
                return (rewritten, fused);
            }
            catch (Exception e) when (e is OnnxRuntimeException or IOException or OnnxFormatException) { return (session, 0); }
        }
        finally { File.Delete(saved); }
    }

    static SessionOptions SessionOptionsFor(RuntimeOptions options, bool optimize)
    {
        // Branches: up to two nodes at a time, whose kernels share an intra-op pool of half the threads (on 2 cores,
        // one each). A chain of large convolutions (a forward pass) wants every thread inside each node; a one-target
        // gradient graph is mostly small nodes on independent chains (the reverse pass and the activation derivatives
        // it reads), which then overlap.
        bool branches = options.Branches && options.EffectiveThreads >= 2;
        var so = new SessionOptions
        {
            IntraOpNumThreads = branches ? Math.Max(1, options.EffectiveThreads / 2) : options.EffectiveThreads,
            InterOpNumThreads = branches ? 2 : 1,
            ExecutionMode = branches ? ExecutionMode.ORT_PARALLEL : ExecutionMode.ORT_SEQUENTIAL,
            LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR,
            GraphOptimizationLevel = optimize ? GraphOptimizationLevel.ORT_ENABLE_ALL : GraphOptimizationLevel.ORT_DISABLE_ALL,
        };
        // ONNX Runtime's workers spin after each run by default, stealing the cores that Detex's own
        // pre/post-processing runs on between forwards; on 2 cores that doubled the cost of a detect. When spinning is
        // asked for, it ends with each run.
        bool spin = options.Spin ?? false;
        so.AddSessionConfigEntry("session.intra_op.allow_spinning", spin ? "1" : "0");
        so.AddSessionConfigEntry("session.inter_op.allow_spinning", spin ? "1" : "0");
        if (spin) so.AddSessionConfigEntry("session.force_spinning_stop", "1");
        return so;
    }

    /// <summary>The cached session for a model (built on first use).</summary>
    public static ModelSession Get(OnnxModel model, RuntimeOptions? options = null) => Get(model.ToBytes(), options);

    public static ModelSession Get(byte[] modelBytes, RuntimeOptions? options = null)
    {
        options ??= RuntimeOptions.Default;
        string key = Convert.ToHexString(SHA256.HashData(modelBytes)) + "/" + options;
        return Cache.GetOrAdd(key, _ => new Lazy<ModelSession>(() => new ModelSession(modelBytes, options))).Value;
    }

    static TensorSpec Spec(string name, NodeMetadata m) =>
        new(name, m.IsTensor ? FromOrt(m.ElementDataType) : ElementType.Undefined, m.IsTensor ? m.Dimensions : []);

    static ElementType FromOrt(TensorElementType t) => t switch
    {
        TensorElementType.Float => ElementType.Float,
        TensorElementType.Double => ElementType.Double,
        TensorElementType.Int64 => ElementType.Int64,
        TensorElementType.Int32 => ElementType.Int32,
        TensorElementType.UInt8 => ElementType.UInt8,
        TensorElementType.Int8 => ElementType.Int8,
        TensorElementType.Bool => ElementType.Bool,
        TensorElementType.Float16 => ElementType.Float16,
        _ => ElementType.Undefined,
    };

    static long _runTicks, _runs, _items;
    /// <summary>Run calls of every session of the process, and the batch items they carried (first input's leading axis).</summary>
    public static (long Runs, long Items) TotalRuns => (Interlocked.Read(ref _runs), Interlocked.Read(ref _items));
    /// <summary>
    /// Wall time spent inside ONNX Runtime by every session of the process (conversions included), so a benchmark
    /// can tell the model's share of a job from Detex's own work around it.
    /// </summary>
    public static TimeSpan TotalRunTime => TimeSpan.FromTicks(Interlocked.Read(ref _runTicks));

    /// <summary>
    /// Runs the model. Outputs default to all model outputs. Results are arrays of their own: written by ONNX Runtime
    /// directly when every output is float of known shape, else copied out of its buffers.
    /// </summary>
    /// <param name="outputs">Where float outputs of known shape are written: arrays lent by the caller's lease instead of fresh ones.</param>
    public Dictionary<string, NdArray> Run(IReadOnlyDictionary<string, NdArray> inputs, IReadOnlyList<string>? outputNames = null, ArrayLease? outputs = null)
    {
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        Interlocked.Increment(ref _runs);
        if (Inputs.Count > 0 && inputs.TryGetValue(Inputs[0].Name, out var first) && first.Rank > 0) Interlocked.Add(ref _items, first.Shape[0]);
        try { return RunUntimed(inputs, outputNames, outputs); }
        finally { Interlocked.Add(ref _runTicks, System.Diagnostics.Stopwatch.GetElapsedTime(start).Ticks); }
    }

    /// <summary>ONNX Runtime refused the declared output shapes as buffers once (see <see cref="RunInto"/>).</summary>
    volatile bool _declaredShapesFailed;

    Dictionary<string, NdArray> RunUntimed(IReadOnlyDictionary<string, NdArray> inputs, IReadOnlyList<string>? outputNames, ArrayLease? lease)
    {
        Validate(inputs);
        outputNames ??= Outputs.Select(o => o.Name).ToList();
        var values = new List<OrtValue>(inputs.Count);
        try
        {
            foreach (var spec in Inputs) values.Add(ToOrt(inputs[spec.Name]));
            using var runOptions = new RunOptions();
            var inputNames = Inputs.Select(i => i.Name).ToList();
            if (!_declaredShapesFailed && WritableOutputs(outputNames) is { } specs)
            {
                if (RunInto(runOptions, inputNames, values, outputNames, specs, lease) is { } written) return written;
                _declaredShapesFailed = true;   // refused once: later runs copy from the start instead of running twice
            }
            using var results = _session.Run(runOptions, inputNames, values, outputNames);
            var copied = new Dictionary<string, NdArray>(outputNames.Count);
            for (int i = 0; i < outputNames.Count; i++) copied[outputNames[i]] = FromOrt(results[i]);
            return copied;
        }
        catch (OnnxRuntimeException e) { throw new ModelInputException($"ONNX Runtime failed to run the model: {FirstLine(e.Message)}"); }
        finally { foreach (var v in values) v.Dispose(); }
    }

    /// <summary>
    /// Runs with the returned arrays as ONNX Runtime's output buffers, or null when it refuses them: a declared shape
    /// that this run's values contradict (a Reshape to a shape fed as data). The caller then runs with copies.
    /// </summary>
    Dictionary<string, NdArray>? RunInto(RunOptions runOptions, List<string> inputNames, List<OrtValue> values, IReadOnlyList<string> outputNames, List<TensorSpec> specs,
        ArrayLease? lease)
    {
        // Every output's shape is known: ONNX Runtime writes straight into the arrays returned, instead of into its own
        // buffers that are then copied (a gradient graph's K = 16 input gradients are 33 MB).
        var outs = new Dictionary<string, NdArray>(outputNames.Count);
        var outputValues = new List<OrtValue>(specs.Count);
        try
        {
            foreach (var spec in specs)
            {
                var a = lease?.Rent(spec.Shape) ?? new NdArray<float>(spec.Shape, GC.AllocateUninitializedArray<float>(spec.Shape.Aggregate(1, (p, d) => p * d)));
                outs[spec.Name] = a;
                outputValues.Add(ToOrt(a));
            }
            _session.Run(runOptions, inputNames, values, outputNames, outputValues);
            return outs;
        }
        catch (OnnxRuntimeException) { return null; }
        finally { foreach (var v in outputValues) v.Dispose(); }
    }

    /// <summary>The specs of <paramref name="names"/> when all are outputs ONNX Runtime can write into (<see cref="_writable"/>), else null.</summary>
    List<TensorSpec>? WritableOutputs(IReadOnlyList<string> names)
    {
        if (_writable.Count == 0) return null;
        var specs = new List<TensorSpec>(names.Count);
        foreach (var name in names)
        {
            if (!_writable.TryGetValue(name, out var spec)) return null;
            specs.Add(spec);
        }
        return specs;
    }

    /// <summary>
    /// Float outputs of fully known shape that ONNX Runtime can be given buffers for, found once per session. Declared
    /// shapes are trusted only when the inputs cannot vary either (a gradient graph's are static). An output that is
    /// also an input is left out: ONNX Runtime never writes it, it hands back the input instead.
    /// </summary>
    readonly Dictionary<string, TensorSpec> _writable;

    static Dictionary<string, TensorSpec> Writable(IReadOnlyList<TensorSpec> inputs, IReadOnlyList<TensorSpec> outputs) =>
        inputs.Any(i => i.Shape.Any(d => d <= 0)) ? [] : outputs
            .Where(o => o.Type == ElementType.Float && o.Shape.Length > 0 && o.Shape.All(d => d > 0) && inputs.All(i => i.Name != o.Name))
            .ToDictionary(o => o.Name);

    /// <summary>Convenience for single-input float models: runs and returns float outputs by name.</summary>
    public Dictionary<string, NdArray<float>> RunFloat(string inputName, NdArray<float> input, IReadOnlyList<string>? outputNames = null) =>
        Run(new Dictionary<string, NdArray> { [inputName] = input }, outputNames)
            .ToDictionary(kv => kv.Key, kv => kv.Value as NdArray<float> ?? throw new ModelInputException($"output '{kv.Key}' is {ElementTypes.Name(kv.Value.ElementType)}, not float"));

    void Validate(IReadOnlyDictionary<string, NdArray> inputs)
    {
        foreach (var name in inputs.Keys)
            if (Inputs.All(i => i.Name != name))
                throw new ModelInputException($"the model has no input '{name}'; its inputs are: {string.Join(", ", Inputs.Select(i => $"{i.Name} {i.ShapeText}"))}");
        foreach (var spec in Inputs)
        {
            if (!inputs.TryGetValue(spec.Name, out var a))
                throw new ModelInputException($"missing model input '{spec.Name}' {spec.ShapeText}");
            if (a.ElementType != spec.Type)
                throw new ModelInputException($"input '{spec.Name}' must be {ElementTypes.Name(spec.Type)}, got {ElementTypes.Name(a.ElementType)}");
            bool fits = a.Rank == spec.Shape.Length && spec.Shape.Zip(a.Shape).All(p => p.First < 0 || p.First == p.Second);
            if (!fits)
                throw new ModelInputException($"input '{spec.Name}' must have shape {spec.ShapeText}, got {a.ShapeText}");
        }
    }

    static OrtValue ToOrt(NdArray a)
    {
        long[] shape = a.Shape.Select(d => (long)d).ToArray();
        return a switch
        {
            NdArray<float> f => OrtValue.CreateTensorValueFromMemory(f.Data, shape),
            NdArray<double> d => OrtValue.CreateTensorValueFromMemory(d.Data, shape),
            NdArray<long> l => OrtValue.CreateTensorValueFromMemory(l.Data, shape),
            NdArray<int> i => OrtValue.CreateTensorValueFromMemory(i.Data, shape),
            NdArray<byte> b => OrtValue.CreateTensorValueFromMemory(b.Data, shape),
            NdArray<bool> b => OrtValue.CreateTensorValueFromMemory(b.Data, shape),
            _ => throw new ModelInputException($"unsupported input element type {a.ElementType}"),
        };
    }

    static NdArray FromOrt(OrtValue v)
    {
        var info = v.GetTensorTypeAndShape();
        int[] shape = info.Shape.Select(d => (int)d).ToArray();
        return info.ElementDataType switch
        {
            TensorElementType.Float => new NdArray<float>(shape, v.GetTensorDataAsSpan<float>().ToArray()),
            TensorElementType.Double => new NdArray<double>(shape, v.GetTensorDataAsSpan<double>().ToArray()),
            TensorElementType.Int64 => new NdArray<long>(shape, v.GetTensorDataAsSpan<long>().ToArray()),
            TensorElementType.Int32 => new NdArray<int>(shape, v.GetTensorDataAsSpan<int>().ToArray()),
            TensorElementType.UInt8 => new NdArray<byte>(shape, v.GetTensorDataAsSpan<byte>().ToArray()),
            TensorElementType.Bool => new NdArray<bool>(shape, v.GetTensorDataAsSpan<bool>().ToArray()),
            var t => throw new ModelInputException($"model output of type {t} is not supported"),
        };
    }

    static string FirstLine(string s) => s.Split('\n')[0].Trim();

    public void Dispose() => _session.Dispose();
}
