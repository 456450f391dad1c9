using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using RAllocator.Cli.Commands;
using RAllocator.Hosting;

namespace RAllocator.Cli.Tests;

public sealed class CoordinatorCommandTests
{
    [Theory]
    [InlineData("'--blade' is required", "--token-file", "t")]
    [InlineData("'--token-file' is required", "--blade", "127.0.0.1:7070")]
    [InlineData("'nope' is not host:port", "--blade", "nope", "--token-file", "t")]
    [InlineData("named twice", "--blade", "127.0.0.1:7070", "--blade", "127.0.0.1:7070", "--token-file", "t")]
    [InlineData("--high-water 0 is out of range", "--blade", "127.0.0.1:7070", "--token-file", "t", "--high-water", "0")]
    [InlineData("--high-water 1.5 is out of range", "--blade", "127.0.0.1:7070", "--token-file", "t", "--high-water", "1.5")]
    [InlineData("--high-water", "--blade", "127.0.0.1:7070", "--token-file", "t", "--high-water", "lots")]
    [InlineData("--interval 0 is out of range", "--blade", "127.0.0.1:7070", "--token-file", "t", "--interval", "0")]
    [InlineData("--listen", "--blade", "127.0.0.1:7070", "--token-file", "t", "--listen", "127.0.0.1")]
    [InlineData("give an IP address", "--blade", "127.0.0.1:7070", "--token-file", "t", "--listen", "coordinator.example:7171")]
    [InlineData("--duration -1 is out of range", "--blade", "127.0.0.1:7070", "--token-file", "t", "--duration", "-1")]
    [InlineData("--fabric 'verbs' is not one of", "--blade", "127.0.0.1:7070", "--token-file", "t", "--fabric", "verbs")]
    public async Task A_wrong_command_line_is_a_usage_error_naming_the_option(string expected, params string[] args)
    {
        var run = await Cli.RunAsync(["coordinator", .. args]);

        run.ExitCode.ShouldBe(ExitCodes.Usage, run.ToString());
        run.Error.ShouldContain(expected);
        run.Error.ShouldContain("rallocator coordinator --help");
        run.Out.ShouldBeEmpty();
    }

    [Fact]
    public async Task A_missing_token_file_is_named()
    {
        using var directory = new TempDirectory();
        var run = await Cli.RunAsync("coordinator", "--blade", "127.0.0.1:7070", "--token-file", directory.File("nothing"));

        run.ExitCode.ShouldBe(ExitCodes.Failed, run.ToString());
        run.Error.ShouldContain("does not exist");
    }

    [Fact(Timeout = 120_000)]
    public async Task An_unreachable_blade_is_named_by_blade_id_and_address()
    {
        await using var blades = await TestBlades.StartAsync(1);
        var closed = FreePort();

        var run = await Cli.RunAsync("coordinator", "--blade", blades.Endpoints[0], "--blade", $"127.0.0.1:{closed}", "--token-file", blades.TokenFile, "--duration", "5");

        run.ExitCode.ShouldBe(ExitCodes.Failed, run.ToString());
        run.Error.ShouldContain($"blade 1 (--blade 127.0.0.1:{closed})");
        run.Error.ShouldContain("refused");
        // The session opened to blade 0 was closed on the way out; the blade notices when its socket ends.
        while (blades.Servers[0].ConnectedObservers > 0)
        {
            await Task.Delay(5, TestContext.Current.CancellationToken);
        }
    }

    [Fact]
    public async Task A_wrong_token_is_reported_as_the_blades_refusal()
    {
        await using var blades = await TestBlades.StartAsync(1);
        using var directory = new TempDirectory();
        File.WriteAllText(directory.File("wrong"), "not the token");

        var run = await Cli.RunAsync("coordinator", "--blade", blades.Endpoints[0], "--token-file", directory.File("wrong"), "--duration", "5");

        run.ExitCode.ShouldBe(ExitCodes.Failed, run.ToString());
        run.Error.ShouldContain("blade 0");
        run.Error.ShouldContain("token");
    }

    [Fact]
    public async Task A_hint_port_in_use_fails_before_any_blade_is_touched()
    {
        await using var blades = await TestBlades.StartAsync(1);
        using var occupant = new TcpListener(IPAddress.Loopback, 0);
        occupant.Start();
        var port = ((IPEndPoint)occupant.LocalEndpoint).Port;

        var run = await Cli.RunAsync("coordinator", "--blade", blades.Endpoints[0], "--token-file", blades.TokenFile, "--listen", $"127.0.0.1:{port}");

        run.ExitCode.ShouldBe(ExitCodes.Failed, run.ToString());
        run.Error.ShouldContain("already in use");
        blades.Servers[0].HandshakesAnswered.ShouldBe(0);
    }

    [Fact(Timeout = 120_000)]
    public async Task Json_lines_report_every_blade_per_refresh_and_the_hint_address()
    {
        await using var blades = await TestBlades.StartAsync(2);

        var run = await Cli.RunAsync("coordinator", "--blade", blades.Endpoints[0], "--blade", blades.Endpoints[1], "--token-file", blades.TokenFile,
            "--listen", "127.0.0.1:0", "--interval", "20", "--duration", "0.3", "--json");

        run.ExitCode.ShouldBe(ExitCodes.Ok, run.ToString());
        var lines = run.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => JsonDocument.Parse(line).RootElement).ToList();
        lines.Count.ShouldBeGreaterThanOrEqualTo(2, run.ToString());
        lines[0].GetProperty("event").GetString().ShouldBe("listening");
        lines[0].GetProperty("endpoint").GetString()!.ShouldStartWith("127.0.0.1:");
        long lastVersion = 0;
        foreach (var refresh in lines.Skip(1))
        {
            refresh.GetProperty("event").GetString().ShouldBe("refresh");
            refresh.GetProperty("version").GetInt64().ShouldBeGreaterThan(lastVersion);
            lastVersion = refresh.GetProperty("version").GetInt64();
            refresh.GetProperty("high_water_mark").GetDouble().ShouldBe(0.85);
            refresh.GetProperty("hint_requests").GetInt64().ShouldBe(0);
            var perBlade = refresh.GetProperty("blades").EnumerateArray().ToList();
            perBlade.Count.ShouldBe(2);
            for (int b = 0; b < 2; b++)
            {
                perBlade[b].GetProperty("blade").GetInt32().ShouldBe(b);
                perBlade[b].GetProperty("endpoint").GetString().ShouldBe(blades.Endpoints[b]);
                perBlade[b].GetProperty("reachable").GetBoolean().ShouldBeTrue();
                perBlade[b].GetProperty("shed").GetBoolean().ShouldBeFalse();
                perBlade[b].GetProperty("utilization").GetDouble().ShouldBe(0);
                perBlade[b].GetProperty("weight").GetUInt64().ShouldBeGreaterThan(0UL);
                perBlade[b].GetProperty("reads").GetInt64().ShouldBeGreaterThanOrEqualTo(3);
                perBlade[b].GetProperty("bytes_read").GetInt64().ShouldBeGreaterThan(0);
                perBlade[b].GetProperty("error").ValueKind.ShouldBe(JsonValueKind.Null);
            }
        }

        run.Error.ShouldContain("read-only observer");
        run.Error.ShouldContain("--duration 0.3 s elapsed");
        foreach (var server in blades.Servers)
        {
            while (server.ConnectedObservers > 0)
            {
                await Task.Delay(5, TestContext.Current.CancellationToken);
            }

            server.ConnectedNodes.ShouldBeEmpty();
        }
    }

    [Fact]
    public async Task Text_lines_show_utilization_weight_shedding_and_reads_per_blade()
    {
        await using var blades = await TestBlades.StartAsync(1);

        var run = await Cli.RunAsync("coordinator", "--blade", blades.Endpoints[0], "--token-file", blades.TokenFile, "--interval", "20", "--duration", "0.2");

        run.ExitCode.ShouldBe(ExitCodes.Ok, run.ToString());
        var first = run.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries)[0];
        first.ShouldContain($"blade 0 {blades.Endpoints[0]}: 0.0% used");
        first.ShouldContain("weight ");
        first.ShouldContain("shed no");
        first.ShouldContain("3 reads");
        first.ShouldNotContain("hint requests", customMessage: "no --listen, no hint service");
    }

    [Fact(Timeout = 120_000)]
    public async Task A_working_nodes_hint_source_gets_the_commands_hints_until_it_stops()
    {
        await using var blades = await TestBlades.StartAsync(2);
        var port = FreePort();
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        using var stop = new CancellationTokenSource();
        var settings = new CoordinatorSettings(
            [BladeEndpoint.Parse(blades.Endpoints[0]), BladeEndpoint.Parse(blades.Endpoints[1])], blades.TokenFile, "shm", null,
            new BladeEndpoint("127.0.0.1", port), TimeSpan.FromMilliseconds(20), 0.85, Json: true, Duration: null);
        var running = CoordinatorCommand.RunAsync(new CliContext(TextWriter.Synchronized(stdout), TextWriter.Synchronized(stderr)), settings, stop.Token);

        var placement = new Coordinator.CoordinatedPlacement();
        await using var source = new Coordinator.RemoteHintSource(new IPEndPoint(IPAddress.Loopback, port), placement);
        while (!await source.PollOnceAsync())
        {
            running.IsCompleted.ShouldBeFalse(stderr.ToString());
            await Task.Delay(10, TestContext.Current.CancellationToken);
        }

        placement.Hints!.Blades.Count.ShouldBe(2);
        placement.Hints.Blades.ShouldAllBe(h => h.Reachable && !h.Shed && h.Weight > 0);

        await stop.CancelAsync();
        (await running).ShouldBe(ExitCodes.Ok, stderr.ToString());
        (await source.PollOnceAsync()).ShouldBeFalse();
        placement.Hints.Blades.Count.ShouldBe(2, "the node keeps the last hints once the coordinator is gone");
        stderr.ToString().ShouldContain("cancellation: stopping");
    }

    [Fact(Timeout = 120_000)]
    public async Task A_blade_that_stops_is_reported_unreachable_and_watched_again_once_it_is_back()
    {
        await using var blades = await TestBlades.StartAsync(1);
        // The command writes from its own tasks; a synchronized writer locks on itself, so reads take that lock too.
        using var stdoutText = new StringWriter();
        using var stderrText = new StringWriter();
        var stdout = TextWriter.Synchronized(stdoutText);
        var stderr = TextWriter.Synchronized(stderrText);
        string Read(TextWriter writer)
        {
            lock (writer)
            {
                return (ReferenceEquals(writer, stdout) ? stdoutText : stderrText).ToString();
            }
        }

        using var stop = new CancellationTokenSource();
        var settings = new CoordinatorSettings([BladeEndpoint.Parse(blades.Endpoints[0])], blades.TokenFile, "shm", null, null, TimeSpan.FromMilliseconds(10), 0.85, Json: false, Duration: null);
        var running = CoordinatorCommand.RunAsync(new CliContext(stdout, stderr), settings, stop.Token);
        async Task WaitForAsync(TextWriter writer, string text, int after = 0)
        {
            while (Read(writer).IndexOf(text, after, StringComparison.Ordinal) < 0)
            {
                running.IsCompleted.ShouldBeFalse(Read(stderr));
                await Task.Delay(5, TestContext.Current.CancellationToken);
            }
        }

        await WaitForAsync(stdout, "0.0% used");
        await blades.Servers[0].StopAsync();
        await WaitForAsync(stdout, "unreachable (");
        await WaitForAsync(stderr, "blade 0 (" + blades.Endpoints[0] + ") lost");

        blades.Restart(0);
        await WaitForAsync(stderr, "reconnected");
        int mark = Read(stdout).Length;
        await WaitForAsync(stdout, "0.0% used", after: mark);
        blades.Servers[0].ConnectedObservers.ShouldBe(1);

        await stop.CancelAsync();
        (await running).ShouldBe(ExitCodes.Ok, Read(stderr));
    }

    private static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }

    /// <summary>Blade servers on fresh images in this process, and the token file a coordinator reads.</summary>
    private sealed class TestBlades : IAsyncDisposable
    {
        private readonly TempDirectory _directory = new();

        private TestBlades(int count)
        {
            TokenFile = _directory.File("blade.token");
            File.WriteAllText(TokenFile, "cli coordinator tests\n");
            var token = AccessToken.ReadFile(TokenFile);
            Servers = new BladeServer[count];
            for (int i = 0; i < count; i++)
            {
                var image = _directory.File($"blade{i}.img");
                using (var region = Nvm.MappedFileNvm.Create(image, 64L << 20))
                {
                    Blade.BladeImage.Format(region, 1 << 20, new Protocol.Layout.BladeFormatOptions { MaxNodes = 4 });
                }

                Servers[i] = BladeServer.Start(image, new BladeServerOptions { Listen = new IPEndPoint(IPAddress.Loopback, 0), Token = token, UtilizationReportInterval = TimeSpan.Zero });
            }

            Endpoints = Servers.Select(s => $"127.0.0.1:{s.LocalEndPoint.Port}").ToArray();
        }

        /// <summary>Starts blade <paramref name="index"/> again, on its image and port, after it was stopped.</summary>
        public void Restart(int index) =>
            Servers[index] = BladeServer.Start(Servers[index].ImagePath, new BladeServerOptions
            {
                Listen = Servers[index].LocalEndPoint,
                Token = AccessToken.ReadFile(TokenFile),
                UtilizationReportInterval = TimeSpan.Zero,
            });

        public string TokenFile { get; }

        public BladeServer[] Servers { get; }

        public string[] Endpoints { get; }

        public static Task<TestBlades> StartAsync(int count) => Task.FromResult(new TestBlades(count));

        public async ValueTask DisposeAsync()
        {
            foreach (var server in Servers)
            {
                await server.StopAsync();
            }

            _directory.Dispose();
        }
    }
}
