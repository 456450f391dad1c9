using System.Diagnostics;

namespace RAllocator.Fabric.Verbs.Tests.Layout;

/// <summary>
/// Compiles a generated C probe with gcc against the installed headers, in a fresh temporary directory, and returns
/// what it prints. Missing gcc or headers fail loudly with the packages to install (scripts/test.sh installs them).
/// </summary>
internal static class NativeProbe
{
    public const string AptHint = "install them with: apt-get install -y gcc libibverbs-dev (scripts/test.sh does this when run as root)";

    // Bounds every child process: gcc on a 300-line file takes well under a second; a hang must not hang the suite.
    private static readonly TimeSpan s_processLimit = TimeSpan.FromMinutes(2);

    public static string[] CompileAndRun(string cSource, string header)
    {
        string directory = Path.Combine(Path.GetTempPath(), "rallocator-verbs-probe-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(directory);
        try
        {
            string source = Path.Combine(directory, "verbs_probe.c");
            string binary = Path.Combine(directory, "verbs_probe");
            File.WriteAllText(source, cSource);

            var (gccExit, _, gccErrors) = Run("gcc", ["-std=gnu11", "-Wall", "-Werror", "-o", binary, source], "gcc");
            if (gccExit != 0)
            {
                string reason = gccErrors.Contains(header, StringComparison.Ordinal) && gccErrors.Contains("No such file", StringComparison.Ordinal)
                    ? $"the header <{header}> is not installed"
                    : "the generated probe does not compile against the installed header";
                throw new Xunit.Sdk.XunitException($"{reason}; {AptHint}.\ngcc said:\n{gccErrors}");
            }

            var (probeExit, output, probeErrors) = Run(binary, [], "the compiled probe");
            if (probeExit != 0)
            {
                throw new Xunit.Sdk.XunitException($"the layout probe exited with {probeExit}: {probeErrors}");
            }

            return output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private static (int Exit, string Output, string Errors) Run(string fileName, string[] arguments, string what)
    {
        var start = new ProcessStartInfo(fileName) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        Process process;
        try
        {
            process = Process.Start(start) ?? throw new InvalidOperationException($"{what} did not start");
        }
        catch (System.ComponentModel.Win32Exception missing)
        {
            throw new Xunit.Sdk.XunitException($"{what} ({fileName}) cannot be started: {missing.Message}; {AptHint}.");
        }

        using (process)
        {
            var output = process.StandardOutput.ReadToEndAsync();
            var errors = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(s_processLimit))
            {
                process.Kill(entireProcessTree: true);
                throw new Xunit.Sdk.XunitException($"{what} did not finish within {s_processLimit}.");
            }

            return (process.ExitCode, output.GetAwaiter().GetResult(), errors.GetAwaiter().GetResult());
        }
    }
}
