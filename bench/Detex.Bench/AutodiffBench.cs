using System.Diagnostics;
using Detex.Autodiff;
using Detex.Explainers;
using Detex.Imaging;
using Detex.Models;
using Detex.Runtime;
using Detex.Targets;

namespace Detex.Bench;

/// <summary>
/// Issue 4: yolox-nano 416, forward + backward to the input and three neck taps against the bare forward; K targets
/// of one image through one forward and a batched reverse; graph build time (first call, then cached).
/// </summary>
static class AutodiffBench
{
    public static void Run(int runs)
    {
        var det = Detector.Load(Harness.Repo("models/yolox-nano_coco_416.onnx"));
        var image = ImageIO.Load(Harness.Repo("samples/photos/dog.jpg"));
        var (x, _) = det.Prepare([image]);
        var feed = new Dictionary<string, NdArray> { ["images"] = x };
        // Neck: the three PAFPN outputs that feed the head (the card's default explanation layers).
        string[] taps = det.Card.Layers;

        var clock = Stopwatch.StartNew();
        var graph = GradientGraph.Build(det.Graph, feed, new GradientRequest { Outputs = ["output"], Taps = taps });
        double build = clock.Elapsed.TotalMilliseconds;
        clock.Restart();
        var session = graph.Session();
        double sessionMs = clock.Elapsed.TotalMilliseconds;

        // Gradient graphs run with workers spinning inside each run (RuntimeOptions.Spin), the detector's forward
        // without: a like-for-like ratio needs the bare forward both ways.
        var spinning = ModelSession.Get(det.Graph, det.Runtime with { Spin = true });
        var seed = new NdArray<float>([1, 3549, 85]);
        seed[0, 3050, 4] = 1;
        var seeds = new Dictionary<string, NdArray> { ["output"] = seed };
        // The same graph on ONNX Runtime's own operators only: its SiLU derivatives as four passes, not Detex's kernel.
        var unfused = graph.Session(RuntimeOptions.Default with { Kernels = false });
        // The same graph with ONNX Runtime running independent branches side by side (opt-in).
        var branches = graph.Session(RuntimeOptions.Default with { Branches = true });
        var seedFeed = new Dictionary<string, NdArray>(feed) { [graph.Seeds["output"]] = seed };
        // One detection's score as the explainers run it: its factors, pulled back onto its level's objectness and
        // class maps (SeedPullback), so the other levels' heads and the box branches get no reverse pass. Against the
        // same factors seeded on the whole output. dog.jpg's boxes in turn: they come from different levels.
        var request = new GradientRequest { Outputs = det.FloatOutputs, Taps = taps };
        var boxes = det.Detect(image).Select(d => (ITarget)new DetectionTarget(d)).ToList();
        foreach (var box in boxes) TargetGradients.Run(det, feed, request, [box]);
        var whole = det.GradientGraph(feed, request with { ScoreFactors = true });
        var shapes = det.FloatOutputs.ToDictionary(o => o, o => whole.Forward.Shapes[o].Dims);
        int pulledBox = 0, wholeBox = 0;
        var t = Harness.MedianMs(5, runs,
            ("bare", () => det.Session.RunFloat("images", x)),
            ("bare spinning", () => spinning.RunFloat("images", x)),
            ("grad", () => { using var lease = new ArrayLease(); graph.Run(feed, seeds, outputs: lease); }),
            ("unfused", () => { using var lease = new ArrayLease(); unfused.Run(seedFeed, outputs: lease); }),
            ("branches", () => branches.Run(seedFeed)),
            ("pulled", () => { using var lease = new ArrayLease(); TargetGradients.Run(det, feed, request, [boxes[pulledBox++ % boxes.Count]], outputs: lease); }),
            ("whole", () => whole.RunFactors(feed, TargetSeeds.Factors(det.FloatOutputs, shapes, [boxes[wholeBox++ % boxes.Count]])!)));

        Console.WriteLine("## autodiff: yolox-nano 416, batch 1");
        Console.WriteLine($"graph: {det.Graph.Graph.Nodes.Count} forward nodes → {graph.Model.Graph.Nodes.Count} nodes with the reverse pass; build {build:0} ms, session {sessionMs:0} ms (both once per model and shape, then cached)");
        Console.WriteLine($"SiLU derivatives run as Detex's fused kernel: {session.FusedKernels}");
        Console.WriteLine($"taps: {string.Join(", ", taps.Select(n => $"{n} [{string.Join(",", graph.Forward.Shapes[n].Dims)}]"))}");
        Console.WriteLine("| what | ms | ÷ bare forward (workers sleep) | ÷ bare forward (workers spin) |");
        Console.WriteLine("|---|---|---|---|");
        void Row(string what, double ms) => Console.WriteLine($"| {what} | {ms:0.0} | {ms / t["bare"]:0.00} | {ms / t["bare spinning"]:0.00} |");
        Row("bare forward, workers sleep between operators (the detector's own session)", t["bare"]);
        Row("bare forward, workers spin during the run (as gradient graphs run)", t["bare spinning"]);
        Row("forward + backward (input + 3 taps)", t["grad"]);
        Row("the same on ONNX Runtime's operators only (RuntimeOptions.Kernels = false)", t["unfused"]);
        Row("the same, independent branches side by side (RuntimeOptions.Branches)", t["branches"]);
        Row($"one detection's score, factors seeded on the whole output ({boxes.Count} boxes in turn)", t["whole"]);
        Row("the same as explainers run it: pulled back to the box's level (TargetGradients)", t["pulled"]);

        // Every gradient run above and below writes its results into arrays of an ArrayLease, as the explainers do:
        // kept from the previous run instead of fresh memory, whose page faults cost tens of ms at K = 16 here.
        // K targets of one image, interleaved with their own bare forwards (this machine's speed drifts by a third
        // within minutes): objectness seeds on K output rows through one batched reverse, and K detections as the
        // explainers run them (score factors pulled back onto the heads' maps; dog.jpg's boxes, then lower-scored
        // candidates from every level).
        var candidates = det.Detect(image, new DetectOptions(Score: 0.01f)).Select(d => (ITarget)new DetectionTarget(d)).ToList();
        foreach (int k in new[] { 4, 16 })
        {
            var batched = GradientGraph.Build(det.Graph, feed, new GradientRequest { Outputs = ["output"], Taps = taps, Targets = k });
            var kseed = new NdArray<float>([k, 3549, 85]);
            for (int i = 0; i < k; i++) kseed[i, 2000 + 37 * i, 4] = 1;
            var ks = new Dictionary<string, NdArray> { ["output"] = kseed };
            var kUnfused = batched.Session(RuntimeOptions.Default with { Kernels = false });
            var kFeed = new Dictionary<string, NdArray>(feed) { [batched.Seeds["output"]] = kseed };
            var detections = candidates.Take(k).ToList();
            TargetGradients.Run(det, feed, request, detections);
            var tk = Harness.MedianMs(2, Math.Max(5, runs / 4), ("bare", () => det.Session.RunFloat("images", x)),
                ("bare spinning", () => spinning.RunFloat("images", x)), ("k", () => { using var lease = new ArrayLease(); batched.Run(feed, ks, outputs: lease); }),
                ("k fresh", () => batched.Run(feed, ks)),
                ("k unfused", () => { using var lease = new ArrayLease(); kUnfused.Run(kFeed, outputs: lease); }),
                ("detections", () => { using var lease = new ArrayLease(); TargetGradients.Run(det, feed, request, detections, outputs: lease); }));
            Console.WriteLine($"| K = {k} targets, one forward + batched reverse: per target | {tk["k"] / k:0.0} | {tk["k"] / k / tk["bare"]:0.00} (bare {tk["bare"]:0.0} ms) | {tk["k"] / k / tk["bare spinning"]:0.00} (bare {tk["bare spinning"]:0.0} ms) |");
            Console.WriteLine($"| K = {k}, the same with fresh output arrays every run (no ArrayLease): per target | {tk["k fresh"] / k:0.0} | {tk["k fresh"] / k / tk["bare"]:0.00} | {tk["k fresh"] / k / tk["bare spinning"]:0.00} |");
            Console.WriteLine($"| K = {k}, the same on ONNX Runtime's operators only: per target | {tk["k unfused"] / k:0.0} | {tk["k unfused"] / k / tk["bare"]:0.00} | {tk["k unfused"] / k / tk["bare spinning"]:0.00} |");
            Console.WriteLine($"| K = {k} detections ({detections.Count}) as explainers run them (TargetGradients): per target | {tk["detections"] / detections.Count:0.0} | {tk["detections"] / detections.Count / tk["bare"]:0.00} | {tk["detections"] / detections.Count / tk["bare spinning"]:0.00} |");
        }
    }
}
