using System.Globalization;
using System.Text.Json;

namespace RAllocator.Integration.Tests;

/// <summary>
/// The persistent KV store across real processes: a 'rallocator serve' blade and a KV worker doing puts and deletes
/// with a journal. The worker is killed with SIGKILL mid-run and restarted, then the blade is killed with SIGKILL
/// and restarted on the same port while the worker runs. At every (re)open the worker verifies the store against
/// its journal: every acknowledged put present with exactly its value, deleted keys absent, the one unacknowledged
/// operation all or nothing, no torn value, no unknown key. The image checks consistent at the end.
/// </summary>
public sealed class KvStoreProcessTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Startup = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task The_store_survives_kill_9_of_its_worker_and_of_the_blade_with_every_acknowledged_operation()
    {
        using var directory = new TempDirectory();
        var image = directory.File("kv.img");
        var tokenFile = directory.File("token");
        var journal = directory.File("kv.journal");
        var stopFile = directory.File("stop");
        File.WriteAllText(tokenFile, "kv-integration-secret\n");
        (await Built.RunCliAsync("format", image, "--size", "64MiB", "--slab-size", "256KiB", "--max-nodes", "4")).ShouldBe(0);

        using var blade = Built.StartCli("blade", "serve", image, "--listen", "127.0.0.1:0", "--token-file", tokenFile);
        var port = PortOf(await blade.WaitForLineAsync(l => l.StartsWith("listening ", StringComparison.Ordinal), Startup));
        ChildProcess StartWorker(string name) => BuiltKv.StartKvWorker(
            name, "--blade", $"127.0.0.1:{port}", "--token-file", tokenFile, "--node-id", "2", "--fabric", "shm",
            "--journal", journal, "--stop-file", stopFile, "--seconds", "120", "--keys", "300");

        // 1. A fresh store; kill -9 the worker once it has acknowledged operations (and is in the middle of more).
        using (var first = StartWorker("kv worker"))
        {
            var opened = Json(await first.WaitForLineAsync(l => l.StartsWith("VERIFIED", StringComparison.Ordinal), Startup));
            opened.GetProperty("recovery").GetProperty("Created").GetBoolean().ShouldBeTrue(first.Describe());
            await WaitForAsync(first, o => AckedAfterLast(o, "VERIFIED") >= 300, "300 acknowledged operations");
            first.Kill9();
            NoViolations(first);
            Log(first);
        }

        // 2. Restart: it must verify the journal against the recovered store, then keep going.
        using var second = StartWorker("kv worker (restarted)");
        var reopened = Json(await second.WaitForLineAsync(l => l.StartsWith("VERIFIED", StringComparison.Ordinal), Startup));
        reopened.GetProperty("acknowledged").GetInt64().ShouldBeGreaterThanOrEqualTo(300, second.Describe());
        reopened.GetProperty("keys").GetInt32().ShouldBeGreaterThan(0, second.Describe());
        reopened.GetProperty("recovery").GetProperty("Created").GetBoolean().ShouldBeFalse(second.Describe());
        reopened.GetProperty("recovery").GetProperty("Entries").GetInt64().ShouldBe(reopened.GetProperty("keys").GetInt32(), second.Describe());
        await WaitForAsync(second, o => AckedAfterLast(o, "VERIFIED") >= 200, "200 acknowledged operations after the restart");

        // 3. Kill -9 the blade mid-run and restart it on the same port from its image: the worker loses the blade,
        //    reconnects, reopens the store and verifies again, then keeps going.
        blade.Kill9();
        using var restartedBlade = Built.StartCli("blade (restarted)", "serve", image, "--listen", $"127.0.0.1:{port}", "--token-file", tokenFile);
        await restartedBlade.WaitForLineAsync(l => l.StartsWith("listening ", StringComparison.Ordinal), Startup);
        await WaitForAsync(second, o => o.Count(l => l.StartsWith("VERIFIED", StringComparison.Ordinal)) >= 2 && AckedAfterLast(o, "VERIFIED") >= 100,
            "a verified reopen after the blade's restart and 100 acknowledged operations after it");

        // 4. Stop cleanly: the worker verifies once more, disconnects and exits 0; so does the blade.
        File.WriteAllText(stopFile, "stop\n");
        (await second.WaitForExitAsync(TimeSpan.FromSeconds(120))).ShouldBe(0, second.Describe());
        NoViolations(second);
        Log(second);
        var lines = second.Output.ToArray();
        var lost = Array.FindIndex(lines, l => l.StartsWith("BLADE-LOST", StringComparison.Ordinal));
        lost.ShouldBeGreaterThan(0, $"the worker should have seen the blade die\n{second.Describe()}");
        Array.FindIndex(lines, lost, l => l.StartsWith("VERIFIED", StringComparison.Ordinal)).ShouldBeGreaterThan(lost, $"no verified reopen after the blade died\n{second.Describe()}");
        var final = Json(lines.Single(l => l.StartsWith("FINAL", StringComparison.Ordinal)));
        final.GetProperty("entries").GetInt64().ShouldBe(final.GetProperty("keys").GetInt32());
        final.GetProperty("opens").GetInt32().ShouldBeGreaterThanOrEqualTo(2);

        restartedBlade.Terminate();
        (await restartedBlade.WaitForExitAsync(TimeSpan.FromSeconds(60))).ShouldBe(0, restartedBlade.Describe());
        (await Built.RunCliAsync("check", image)).ShouldBe(0);
    }

    private void Log(ChildProcess process)
    {
        foreach (var line in process.Output.Where(l => !l.StartsWith("ACKED", StringComparison.Ordinal)))
        {
            output.WriteLine($"{process.Name}: {line}");
        }
    }

    private static int PortOf(string listeningLine) => int.Parse(listeningLine[(listeningLine.LastIndexOf(':') + 1)..], CultureInfo.InvariantCulture);

    private static JsonElement Json(string line)
    {
        using var json = JsonDocument.Parse(line[(line.IndexOf(' ', StringComparison.Ordinal) + 1)..]);
        return json.RootElement.Clone();
    }

    /// <summary>
    /// At least how many operations the worker acknowledged since its last line starting with <paramref name="marker"/>:
    /// it prints an ACKED line after every 100th.
    /// </summary>
    private static long AckedAfterLast(IReadOnlyList<string> lines, string marker)
    {
        var start = -1;
        for (var i = 0; i < lines.Count; i++)
        {
            if (lines[i].StartsWith(marker, StringComparison.Ordinal))
            {
                start = i;
            }
        }

        return start < 0 ? 0 : lines.Skip(start + 1).Count(l => l.StartsWith("ACKED", StringComparison.Ordinal)) * 100L;
    }

    private static async Task WaitForAsync(ChildProcess process, Func<IReadOnlyList<string>, bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(90);
        while (DateTime.UtcNow < deadline)
        {
            if (condition(process.Output.ToArray()))
            {
                return;
            }

            if (process.HasExited)
            {
                throw new InvalidOperationException($"{process.Name} exited with {process.ExitCode} before {what}.\n{process.Describe()}");
            }

            NoViolations(process);
            await Task.Delay(50);
        }

        throw new TimeoutException($"{process.Name}: no {what} within 90 s.\n{process.Describe()}");
    }

    private static void NoViolations(ChildProcess process) =>
        process.Output.ShouldNotContain(l => l.StartsWith("VIOLATION", StringComparison.Ordinal), process.Describe());
}
