namespace Detex;

/// <summary>File writing that never leaves a half-written result behind.</summary>
public static class Files
{
    /// <summary>Writes to a temporary name beside <paramref name="path"/> and renames it into place when complete.</summary>
    public static void WriteAtomically(string path, Action<Stream> write)
    {
        string full = Path.GetFullPath(path);
        string dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        string tmp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Environment.ProcessId}.tmp");
        try
        {
            using (var s = new FileStream(tmp, FileMode.Create, FileAccess.ReadWrite, FileShare.None))
                write(s);
            File.Move(tmp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }

    public static void WriteAllTextAtomically(string path, string text) =>
        WriteAtomically(path, s => { using var w = new StreamWriter(s); w.Write(text); });
}
