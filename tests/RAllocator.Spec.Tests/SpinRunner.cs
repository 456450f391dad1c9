using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace RAllocator.Spec.Tests;

/// <summary>What one spin verification run reported.</summary>
/// <param name="Errors">pan's "errors:" count.</param>
/// <param name="StatesStored">pan's "states, stored".</param>
/// <param name="Transitions">pan's "transitions".</param>
/// <param name="SearchCompleted">False when pan printed "Search not completed" (a bounded or truncated search).</param>
/// <param name="Violation">The first "pan:1: ..." line, if any.</param>
/// <param name="ElapsedSeconds">pan's own "elapsed time".</param>
/// <param name="Output">Everything pan printed.</param>
public sealed record SpinResult(long Errors, long StatesStored, long Transitions, bool SearchCompleted, string? Violation, double ElapsedSeconds, string Output);

/// <summary>
/// Runs the spin pipeline on spec/model/rallocator.pml in a temp directory: <c>spin -a</c>, <c>gcc -O2 -DSAFETY</c>,
/// <c>./pan</c>, and parses pan's report. A missing spin or gcc fails loudly with the apt hint.
/// </summary>
public static partial class SpinRunner
{
    /// <summary>The model's path.</summary>
    public static string ModelPath => RepositoryPaths.Combine("spec", "model", "rallocator.pml");

    /// <summary>
    /// Verifies the model (exhaustive safety search: assertions and invalid end states) with the given spin
    /// preprocessor defines, e.g. <c>SEEDED_BUG=3</c>.
    /// </summary>
    public static SpinResult Verify(params string[] defines) => Verify(exhaustive: true, defines);

    /// <summary>
    /// As <see cref="Verify(string[])"/>; with <paramref name="exhaustive"/> false (a seeded-bug run, which stops at
    /// the first error) pan is compiled without optimization: compiling pan.c with -O2 takes longer than such a search.
    /// </summary>
    public static SpinResult Verify(bool exhaustive, params string[] defines)
    {
        RequireTool("spin", "-V");
        RequireTool("gcc", "--version");
        using var dir = new TempDirectory();
        File.Copy(ModelPath, dir.File("rallocator.pml"));
        var spinArgs = defines.Select(d => $"-D{d}").Append("-a").Append("rallocator.pml").ToArray();
        Run(dir.FullPath, "spin", spinArgs, "spin -a");
        // -DSAFETY: safety properties only (the invariants are assertions); -w: pan.c's own warnings are not ours.
        Run(dir.FullPath, "gcc", [exhaustive ? "-O2" : "-O0", "-w", "-DSAFETY", "-o", "pan", "pan.c"], "gcc pan.c");
        // -m: depth bound well above the model's depth (pan reports "Search not completed" if it is hit);
        // -w25: 2^25 hash slots for a few million states.
        string output = Run(dir.FullPath, Path.Combine(dir.FullPath, "pan"), ["-m200000", exhaustive ? "-w25" : "-w23"], "pan", allowFailure: true);
        return Parse(output);
    }

    /// <summary>Parses pan's report.</summary>
    public static SpinResult Parse(string output)
    {
        long Number(Regex regex, string what)
        {
            var match = regex.Match(output);
            return match.Success
                ? long.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture)
                : throw new InvalidOperationException($"pan's output has no '{what}':\n{output}");
        }

        var violation = ViolationLine().Match(output);
        var elapsed = ElapsedLine().Match(output);
        return new SpinResult(
            Number(ErrorsLine(), "errors:"),
            Number(StatesLine(), "states, stored"),
            Number(TransitionsLine(), "transitions"),
            !output.Contains("Search not completed", StringComparison.Ordinal),
            violation.Success ? violation.Value.Trim() : null,
            elapsed.Success ? double.Parse(elapsed.Groups[1].Value, CultureInfo.InvariantCulture) : double.NaN,
            output);
    }

    private static void RequireTool(string tool, string versionArg)
    {
        try
        {
            Run(Path.GetTempPath(), tool, [versionArg], tool);
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new InvalidOperationException(
                $"'{tool}' is not installed; the spin model check needs spin and gcc: apt-get install spin gcc (scripts/test.sh installs them as root).", ex);
        }
    }

    private static string Run(string workingDirectory, string file, string[] args, string what, bool allowFailure = false)
    {
        var start = new ProcessStartInfo(file)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {file}");
        var stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        string all = stdout + stderr.GetAwaiter().GetResult();
        if (process.ExitCode != 0 && !allowFailure)
        {
            throw new InvalidOperationException($"{what} failed (exit {process.ExitCode}):\n{all}");
        }

        return all;
    }

    [GeneratedRegex(@"errors:\s*(\d+)")]
    private static partial Regex ErrorsLine();

    [GeneratedRegex(@"(\d+)\s+states, stored")]
    private static partial Regex StatesLine();

    [GeneratedRegex(@"(\d+)\s+transitions \(")]
    private static partial Regex TransitionsLine();

    [GeneratedRegex(@"pan:1: .*")]
    private static partial Regex ViolationLine();

    [GeneratedRegex(@"elapsed time\s+([\d.e+]+)")]
    private static partial Regex ElapsedLine();
}
