using System.Runtime.CompilerServices;
using System.Text;

namespace RAllocator.Testing;

/// <summary>
/// Compares text against Expected/*.txt of the calling test project (copied to its output directory). With
/// RALLOCATOR_UPDATE_EXPECTED=1 the files in the source tree are rewritten instead (review the diff, then commit);
/// otherwise a mismatch fails with the first differing line.
/// </summary>
public static class ExpectedFiles
{
    public const string UpdateVariable = "RALLOCATOR_UPDATE_EXPECTED";

    public static void Match(string actual, string fileName, [CallerFilePath] string callerFile = "")
    {
        actual = Normalize(actual);
        if (Environment.GetEnvironmentVariable(UpdateVariable) == "1")
        {
            string sourcePath = Path.Combine(ProjectDirectory(callerFile), "Expected", fileName);
            Directory.CreateDirectory(Path.GetDirectoryName(sourcePath)!);
            if (!File.Exists(sourcePath) || Normalize(File.ReadAllText(sourcePath)) != actual)
            {
                File.WriteAllText(sourcePath, actual, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
            }

            return;
        }

        string expectedPath = Path.Combine(AppContext.BaseDirectory, "Expected", fileName);
        if (!File.Exists(expectedPath))
        {
            throw new ExpectedFileMismatchException(
                $"Expected file Expected/{fileName} does not exist. Run the tests with {UpdateVariable}=1 to create it, then review and commit it.");
        }

        string expected = Normalize(File.ReadAllText(expectedPath));
        if (expected != actual)
        {
            throw new ExpectedFileMismatchException(Describe(fileName, expected, actual));
        }
    }

    private static string Describe(string fileName, string expected, string actual)
    {
        string[] e = expected.Split('\n');
        string[] a = actual.Split('\n');
        int line = 0;
        while (line < e.Length && line < a.Length && e[line] == a[line])
        {
            line++;
        }

        var message = new StringBuilder();
        message.Append($"Output differs from Expected/{fileName} at line {line + 1} ")
            .Append($"(expected {e.Length} lines, got {a.Length}). Run with {UpdateVariable}=1 to accept the new output.\n");
        for (int i = Math.Max(0, line - 3); i < line; i++)
        {
            message.Append($"  {i + 1,4}   {e[i]}\n");
        }

        for (int i = line; i < Math.Min(e.Length, line + 5); i++)
        {
            message.Append($"- {i + 1,4}   {e[i]}\n");
        }

        for (int i = line; i < Math.Min(a.Length, line + 5); i++)
        {
            message.Append($"+ {i + 1,4}   {a[i]}\n");
        }

        return message.ToString();
    }

    private static string Normalize(string text) => text.Replace("\r\n", "\n", StringComparison.Ordinal);

    /// <summary>The source directory of the test project that compiled <paramref name="callerFile"/>: the nearest
    /// directory above it holding a .csproj.</summary>
    public static string ProjectDirectory([CallerFilePath] string callerFile = "")
    {
        for (var directory = Path.GetDirectoryName(callerFile); directory is not null; directory = Path.GetDirectoryName(directory))
        {
            if (Directory.EnumerateFiles(directory, "*.csproj").Any())
            {
                return directory;
            }
        }

        throw new InvalidOperationException($"no .csproj above {callerFile}");
    }
}

/// <summary>Output that differs from its expected file (or a missing expected file); the message shows where.</summary>
public sealed class ExpectedFileMismatchException(string message) : Exception(message);
