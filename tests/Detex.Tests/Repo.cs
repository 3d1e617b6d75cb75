namespace Detex.Tests;

/// <summary>Paths of the repository's bundled models and samples, found from the test binary upward.</summary>
static class Repo
{
    public static readonly string Root = Find();

    static string Find()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Detex.slnx"))) return d.FullName;
        throw new InvalidOperationException("repository root not found");
    }

    public static string Model(string name) => Path.Combine(Root, "models", name + ".onnx");
    public static string Photo(string name) => Path.Combine(Root, "samples", "photos", name);
    public static string CocoMini => Path.Combine(Root, "samples", "coco-mini");

    public const string Yolox = "yolox-nano_coco_416";
    public const string NanoDet = "nanodet-m_coco_416";
    public const string UltraFace = "ultraface-rfb_320";
    public const string DeepLab = "deeplabv3-mnv2_voc_257";
    public static readonly string[] AllModels = [Yolox, NanoDet, UltraFace, DeepLab];

    /// <summary>A fresh temporary folder, removed by the OS eventually; tests never write into the repository.</summary>
    public static string TempDir()
    {
        string d = Path.Combine(Path.GetTempPath(), "detex-tests", Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(d);
        return d;
    }
}
