using System.Diagnostics;
using System.Text;
using Microsoft.Coyote;
using Microsoft.Coyote.SystematicTesting;

namespace RAllocator.Coyote.Tests;

/// <summary>
/// Runs a Coyote test body for many iterations and reports what happened: the seed, the bugs, and the reproducible
/// trace of the first bug, written to a file and printed, so any failure can be replayed exactly.
/// </summary>
/// <remarks>
/// Iterations default to <see cref="DefaultIterations"/>; the environment variable <c>RALLOCATOR_COYOTE_ITERATIONS</c>
/// overrides it (for example 100000 in a nightly run) and <c>RALLOCATOR_COYOTE_SEED</c> overrides every test's seed.
/// Only verbs, agent persists and explicit yields are scheduling points: locks and Interlocked calls are not
/// (race checking for them is off), because every shared protocol word lives in the simulated NVM and is reached
/// through a verb, and a scheduling point at each of the NVM's hundreds of lock acquisitions per agent pass would
/// multiply the schedule length without adding protocol interleavings. Volatile reads and writes stay scheduling
/// points (the node-side sequence counters use them).
/// </remarks>
internal static class CoyoteHarness
{
    public const string IterationsVariable = "RALLOCATOR_COYOTE_ITERATIONS";
    public const string SeedVariable = "RALLOCATOR_COYOTE_SEED";
    public const uint DefaultIterations = 1000;

    /// <summary>Steps of one iteration, far above what a scenario takes (a few thousand), so no iteration is cut short.</summary>
    public const uint MaxSchedulingSteps = 200_000;

    public static uint Iterations =>
        uint.TryParse(Environment.GetEnvironmentVariable(IterationsVariable), out uint n) && n > 0 ? n : DefaultIterations;

    /// <summary>The seed: <c>RALLOCATOR_COYOTE_SEED</c> if set, else a stable value derived from the test's name.</summary>
    public static uint SeedFor(string testName)
    {
        if (uint.TryParse(Environment.GetEnvironmentVariable(SeedVariable), out uint seed))
        {
            return seed;
        }

        uint hash = 2166136261;
        foreach (char c in testName)
        {
            hash = (hash ^ c) * 16777619;
        }

        return hash;
    }

    public static Configuration Configure(uint iterations, uint seed) =>
        Configuration.Create()
            .WithTestingIterations(iterations)
            .WithRandomGeneratorSeed(seed)
            .WithRandomStrategy()
            .WithMaxSchedulingSteps(MaxSchedulingSteps)
            .WithLockAccessRaceCheckingEnabled(false)
            .WithAtomicOperationRaceCheckingEnabled(false)
            .WithTelemetryEnabled(false)
            .WithConsoleLoggingEnabled(Environment.GetEnvironmentVariable("RALLOCATOR_COYOTE_VERBOSE") == "1")
            .WithVerbosityEnabled(Environment.GetEnvironmentVariable("RALLOCATOR_COYOTE_VERBOSE") == "1" ? Microsoft.Coyote.Logging.VerbosityLevel.Info : Microsoft.Coyote.Logging.VerbosityLevel.None);

    /// <summary>Explores <paramref name="test"/>; stops at the first bug (Coyote's default).</summary>
    public static CoyoteOutcome Explore(string testName, Func<Task> test, ITestOutputHelper output, uint? iterations = null)
    {
        uint seed = SeedFor(testName);
        uint count = iterations ?? Iterations;
        return Execute(testName, test, output, Configure(count, seed), seed, count);
    }

    /// <summary>
    /// Hunts for a violation of <paramref name="invariant"/> planted by a seeded bug: explores in chunks of
    /// <paramref name="chunk"/> iterations, each under the next seed and stopping at its first bug, until a bug report
    /// names the invariant or the iteration budget is spent. A seeded bug can break more than one invariant; the
    /// others it breaks on the way are reported too.
    /// </summary>
    public static CoyoteOutcome Hunt(string testName, string invariant, Func<Task> test, ITestOutputHelper output, uint chunk = 100)
    {
        uint budget = Iterations;
        uint seed = SeedFor(testName);
        var reports = new List<string>();
        CoyoteOutcome? outcome = null;
        for (uint done = 0; done < budget; done += chunk, seed++)
        {
            uint count = Math.Min(chunk, budget - done);
            outcome = Execute(testName, test, output, Configure(count, seed), seed, count);
            reports.AddRange(outcome.BugReports);
            if (outcome.BugReports.Any(b => b.Contains(invariant + " violated")))
            {
                return outcome with { BugReports = reports };
            }
        }

        return outcome! with { BugReports = reports };
    }

    /// <summary>Replays <paramref name="reproducibleTrace"/> (from <see cref="CoyoteOutcome.ReproducibleTrace"/>) once.</summary>
    public static CoyoteOutcome Replay(string testName, Func<Task> test, ITestOutputHelper output, string reproducibleTrace, uint seed) =>
        Execute(testName + ".replay", test, output, Configure(1, seed).WithReproducibleTrace(reproducibleTrace), seed, 1);

    private static CoyoteOutcome Execute(string testName, Func<Task> test, ITestOutputHelper output, Configuration configuration, uint seed, uint iterations)
    {
        var clock = Stopwatch.StartNew();
        using var engine = TestingEngine.Create(configuration, test);
        engine.Run();
        clock.Stop();
        var report = engine.TestReport;
        string? trace = report.NumOfFoundBugs > 0 ? engine.ReproducibleTrace : null;
        string? traceFile = null;
        if (trace is not null)
        {
            string directory = Path.Combine(AppContext.BaseDirectory, "coyote-traces");
            Directory.CreateDirectory(directory);
            traceFile = Path.Combine(directory, $"{testName}.seed{seed}.trace.json");
            File.WriteAllText(traceFile, trace);
            File.WriteAllText(Path.ChangeExtension(traceFile, ".readable.txt"), engine.ReadableTrace);
        }

        var outcome = new CoyoteOutcome(testName, seed, iterations, report.NumOfFoundBugs, [.. report.BugReports], trace, traceFile,
            clock.Elapsed, report.MaxExploredFairSteps, report.MaxFairStepsHitInFairTests + report.MaxUnfairStepsHitInUnfairTests);
        output.WriteLine(outcome.Describe());
        output.WriteLine($"average scheduling steps per iteration: {(double)report.TotalExploredFairSteps / Math.Max(1, report.NumOfExploredFairPaths):F0}, controlled operations {report.TotalControlledOperations}");
        foreach (string invocation in report.UncontrolledInvocations)
        {
            output.WriteLine("UNCONTROLLED: " + invocation);
        }

        return outcome;
    }
}

/// <summary>What one exploration found.</summary>
internal sealed record CoyoteOutcome(
    string TestName,
    uint Seed,
    uint Iterations,
    int BugsFound,
    IReadOnlyList<string> BugReports,
    string? ReproducibleTrace,
    string? TraceFile,
    TimeSpan Elapsed,
    int MaxSteps,
    int IterationsCutAtStepBound)
{
    public string Describe()
    {
        var text = new StringBuilder()
            .Append($"{TestName}: seed {Seed} ({CoyoteHarness.SeedVariable}), {Iterations} iteration(s) ({CoyoteHarness.IterationsVariable}), ")
            .Append($"{Elapsed.TotalSeconds:F1} s, at most {MaxSteps} scheduling steps per iteration, {BugsFound} bug(s).");
        foreach (string bug in BugReports)
        {
            text.AppendLine().Append("BUG: ").Append(bug);
        }

        if (TraceFile is not null)
        {
            text.AppendLine().Append($"Reproducible trace: {TraceFile} (replay: Configuration.WithReproducibleTrace(File.ReadAllText(path)), same seed).");
        }

        return text.ToString();
    }

    /// <summary>Asserts the real protocol survived every explored schedule, with the seed and trace if not.</summary>
    public void ShouldFindNoBug()
    {
        BugsFound.ShouldBe(0, Describe());
        IterationsCutAtStepBound.ShouldBe(0, $"iterations were cut short at the step bound, so their final checks never ran. {Describe()}");
    }

    /// <summary>Asserts Coyote found the seeded bug and that its report names <paramref name="invariant"/>.</summary>
    public void ShouldHaveFoundViolationOf(string invariant)
    {
        BugsFound.ShouldBeGreaterThan(0, $"the seeded bug was not found. {Describe()}");
        BugReports.ShouldContain(b => b.Contains(invariant + " violated"), $"expected a violation of '{invariant}'. {Describe()}");
    }
}
