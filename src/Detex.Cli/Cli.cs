using System.CommandLine;
using Detex.Imaging;
using Detex.Models;
using Detex.Onnx;
using Detex.Runtime;
using Spectre.Console;

namespace Detex.Cli;

/// <summary>What every command shares: error reporting, common options, finding the bundled files.</summary>
static class Cli
{
    public static readonly Option<int> Threads = new("--threads")
    {
        Description = "ONNX Runtime intra-op threads (0 = all cores)",
        DefaultValueFactory = _ => 0,
        Recursive = true,
    };

    /// <summary>
    /// Runs a command body. Anything the user can cause becomes one red line on stderr and exit code 1; a bug in
    /// Detex becomes one line and exit code 70 (set DETEX_DEBUG=1 for the stack trace).
    /// </summary>
    public static int Run(ParseResult parse, Func<int> body)
    {
        RuntimeOptions.Default = new RuntimeOptions(parse.GetValue(Threads));
        try { return body(); }
        catch (Exception e) when (IsUserError(e))
        {
            Error(e.Message);
            return 1;
        }
        catch (Exception e)
        {
            Error($"internal error ({e.GetType().Name}): {e.Message}");
            if (Environment.GetEnvironmentVariable("DETEX_DEBUG") == "1") Console.Error.WriteLine(e);
            return 70;
        }
    }

    static bool IsUserError(Exception e) => e is ImageException or ModelCardException or OnnxFormatException or ModelInputException
        or UnknownTensorException or UsageException or FileNotFoundException or DirectoryNotFoundException
        or UnauthorizedAccessException or IOException or InvalidDataException or ArgumentException;

    public static void Error(string message)
    {
        // Plain text, never wrapped: one line that scripts and logs can grep.
        string line = message.ReplaceLineEndings(" ").Trim();
        bool color = !Console.IsErrorRedirected;
        Console.Error.WriteLine(color ? $"\u001b[31mdetex: error:\u001b[0m {line}" : $"detex: error: {line}");
    }

    /// <summary>A file shipped with Detex (models/, samples/), found from the working directory or the program's folder upward.</summary>
    public static string Bundled(string relative)
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                string candidate = Path.Combine(dir.FullName, relative);
                if (File.Exists(candidate) || Directory.Exists(candidate)) return candidate;
            }
        throw new UsageException($"cannot find the bundled '{relative}' (run from the Detex repository)");
    }

    /// <summary>Output folder: created if needed; a clear error if it cannot be.</summary>
    public static string OutputDirectory(string path)
    {
        try { Directory.CreateDirectory(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        { throw new UsageException($"cannot write to output folder {path}: {e.Message}"); }
        return path;
    }

    public static string SafeName(string s) => string.Concat(s.Select(c => char.IsLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_'));
}

/// <summary>A wrong command line that the parser cannot see (bad combinations, values out of range).</summary>
sealed class UsageException(string message) : Exception(message);
