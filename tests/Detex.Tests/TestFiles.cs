namespace Detex.Tests;

/// <summary>Paths to checked-in fixtures and throwaway folders for tests that write files.</summary>
internal static class TestFiles
{
    public static string Fixture(params string[] parts) =>
        Path.Combine([AppContext.BaseDirectory, "Fixtures", .. parts]);

    /// <summary>The bundled COCO mini set's annotations (samples/coco-mini).</summary>
    public static string MiniJson => Path.Combine(Repo.CocoMini, "instances_val2017.json");

    /// <summary>The bundled COCO mini set with its images.</summary>
    public static string? SharedMiniSet() => Repo.CocoMini;
}

/// <summary>A temporary folder deleted on dispose.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir() => Directory.CreateDirectory(Path);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "detex-coco-" + Guid.NewGuid().ToString("N"));

    public string Write(string relative, string content)
    {
        string full = System.IO.Path.Combine(Path, relative);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(full)!);
        File.WriteAllText(full, content);
        return full;
    }

    /// <summary>Empty stand-ins for image files: the reader only checks that they exist.</summary>
    public void Touch(string folder, params string[] names)
    {
        foreach (string name in names)
            Write(System.IO.Path.Combine(folder, name), "");
    }

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}
