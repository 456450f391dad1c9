using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Runtime.InteropServices;
using System.Text.Json;
using RAllocator.Cli.Reporting;
using RAllocator.Coordinator;
using RAllocator.Fabric;
using RAllocator.Hosting;

namespace RAllocator.Cli.Commands;

/// <summary>What <c>coordinator</c> was asked to run.</summary>
internal sealed record CoordinatorSettings(
    IReadOnlyList<BladeEndpoint> Blades,
    string TokenFile,
    string Fabric,
    string? UcxTransports,
    BladeEndpoint? Listen,
    TimeSpan Interval,
    double HighWaterMark,
    bool Json,
    TimeSpan? Duration);

/// <summary>
/// <c>coordinator</c>: reads every blade's load one-sided through read-only observer sessions, prints a status line
/// per refresh, and (with <c>--listen</c>) serves placement hints to working nodes until SIGTERM, SIGINT or
/// <c>--duration</c>. Soft state only: stopping it costs the nodes nothing but fresh hints.
/// </summary>
internal static class CoordinatorCommand
{
    public static Command Create(CliContext cli)
    {
        var blades = CliOptions.Blades("A blade server to watch, host:port; repeat for each blade (any order: hints name blades by their superblock uid).",
            required: true, rejectDuplicates: true);
        var tokenFile = new Option<string>("--token-file")
        {
            Description = "The blade servers' access token file.",
            HelpName = "FILE",
            Required = true,
        };
        var fabric = new Option<string>("--fabric")
        {
            Description = "How to read the blades: shm (same host: the image mapped read-only) or ucx (any host). Default: shm.",
            HelpName = "shm|ucx",
            DefaultValueFactory = _ => "shm",
        };
        fabric.OneOf("shm", "ucx");
        var ucxTls = FabricAvailability.UcxTransportsOption();
        var listen = new Option<string>("--listen")
        {
            Description = "Serve placement hints to working nodes on this address, host:port (port 0 picks a free port and prints it). Without it, the coordinator only reports.",
            HelpName = "HOST:PORT",
        };
        listen.Validators.Add(result =>
        {
            if (result.Tokens.Count == 0)
            {
                return;
            }

            var text = result.Tokens[0].Value;
            try
            {
                var endpoint = BladeEndpoint.Parse(text, allowPortZero: true);
                if (!IPAddress.TryParse(endpoint.Host, out _) && endpoint.Host != "localhost")
                {
                    result.AddError($"--listen {text}: give an IP address to listen on (for example 0.0.0.0:7171 for every interface).");
                }
            }
            catch (FormatException ex)
            {
                result.AddError($"--listen {ex.Message}");
            }
        });
        var interval = new Option<int>("--interval")
        {
            Description = "Milliseconds between refreshes (one 64-byte READ per blade each).",
            HelpName = "MS",
            DefaultValueFactory = _ => 1000,
        }.InRange(10, 3_600_000);
        var highWater = new Option<double>("--high-water")
        {
            Description = "Utilization (above 0, at most 1) at or above which a blade sheds new slab requests to the others.",
            HelpName = "FRACTION",
            DefaultValueFactory = _ => 0.85,
        };
        highWater.Validators.Add(result =>
        {
            if (result.Tokens.Count == 0)
            {
                return;
            }

            if (!double.TryParse(result.Tokens[0].Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || !(value > 0 && value <= 1))
            {
                result.AddError($"--high-water {result.Tokens[0].Value} is out of range: it must be above 0 and at most 1 (for example 0.85).");
            }
        });
        var json = new Option<bool>("--json") { Description = "Print one JSON object per line (snake_case keys) instead of text." };
        var duration = new Option<double?>("--duration")
        {
            Description = "Stop after this many seconds (default: run until SIGTERM or SIGINT).",
            HelpName = "SECONDS",
        };
        duration.Validators.Add(result =>
        {
            if (result.Tokens.Count > 0 && double.TryParse(result.Tokens[0].Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && !(value > 0 && value <= 31_536_000))
            {
                result.AddError($"--duration {result.Tokens[0].Value} is out of range: it must be above 0 and at most a year (31536000).");
            }
        });

        var command = new Command("coordinator", "Watch blade servers' utilization one-sided (read-only observer sessions, no blade CPU) and serve placement hints to working nodes.")
        {
            blades, tokenFile, fabric, ucxTls, listen, interval, highWater, json, duration,
        };
        command.SetAction((parseResult, cancellationToken) => RunAsync(
            cli,
            new CoordinatorSettings(
                [.. parseResult.GetValue(blades)!.Select(b => BladeEndpoint.Parse(b))],
                parseResult.GetValue(tokenFile)!,
                parseResult.GetValue(fabric)!,
                parseResult.GetValue(ucxTls),
                parseResult.GetValue(listen) is { } address ? BladeEndpoint.Parse(address, allowPortZero: true) : null,
                TimeSpan.FromMilliseconds(parseResult.GetValue(interval)),
                parseResult.GetValue(highWater),
                parseResult.GetValue(json),
                parseResult.GetValue(duration) is { } seconds ? TimeSpan.FromSeconds(seconds) : null),
            cancellationToken));
        return command;
    }

    internal static async Task<int> RunAsync(CliContext cli, CoordinatorSettings settings, CancellationToken cancellationToken)
    {
        AccessToken token;
        try
        {
            token = AccessToken.ReadFile(settings.TokenFile);
        }
        catch (AccessTokenException ex)
        {
            throw new CliFailureException(ex.Message, ex);
        }

        var connector = FabricAvailability.ConnectorFor(settings.Fabric, FabricAvailability.UcxOptionsFor(settings.UcxTransports));
        var logGate = new object();
        void Log(string line)
        {
            lock (logGate)
            {
                cli.Error.WriteLine($"{DateTime.Now:yyyy-MM-dd HH:mm:ss.fff} {line}");
                cli.Error.Flush();
            }
        }

        // Stop requests are wired first, so a signal during the blade connections is not lost.
        var stop = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context => { context.Cancel = true; stop.TrySetResult("SIGTERM"); });
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, context => { context.Cancel = true; stop.TrySetResult("SIGINT"); });
        using var cancelled = cancellationToken.Register(() => stop.TrySetResult("cancellation"));
        using var deadline = settings.Duration is { } duration ? new CancellationTokenSource(duration) : new CancellationTokenSource();
        using var expired = deadline.Token.Register(() => stop.TrySetResult($"--duration {settings.Duration!.Value.TotalSeconds.ToString(CultureInfo.InvariantCulture)} s elapsed"));

        var observed = new List<ObservedBlade>();
        HintServer? service = null;
        try
        {
            // The listener first: a port in use fails before any blade session is opened.
            var coordinatorOptions = new CoordinatorOptions { HighWaterMark = settings.HighWaterMark, RefreshInterval = settings.Interval };
            PlacementCoordinator? coordinator = null;
            if (settings.Listen is { } listen)
            {
                var address = listen.Host == "localhost" ? IPAddress.Loopback : IPAddress.Parse(listen.Host);
                try
                {
                    service = HintServer.Start(() => coordinator?.Current, new HintServerOptions { Listen = new IPEndPoint(address, listen.Port), Log = Log });
                }
                catch (HintServerException ex)
                {
                    throw new CliFailureException(ex.Message, ex);
                }
            }

            for (int bladeId = 0; bladeId < settings.Blades.Count; bladeId++)
            {
                var endpoint = settings.Blades[bladeId];
                try
                {
                    observed.Add(await ObservedBlade.ConnectAsync(endpoint, bladeId, token, connector, Log, cancellationToken).ConfigureAwait(false));
                }
                catch (Exception ex) when (ex is FabricException or BladeRefusedException)
                {
                    throw new CliFailureException($"blade {bladeId} (--blade {endpoint}): {ex.Message}", ex);
                }
            }

            coordinator = new PlacementCoordinator(observed, coordinatorOptions);
            Log($"watching {observed.Count} blade(s) over {settings.Fabric} as a read-only observer, high-water mark {settings.HighWaterMark.ToString("0.###", CultureInfo.InvariantCulture)}, refresh every {settings.Interval.TotalMilliseconds:0} ms");
            if (service is not null)
            {
                var endpoint = Describe(service.LocalEndPoint);
                Log($"serving placement hints on {endpoint}");
                cli.Out.WriteLine(settings.Json
                    ? JsonSerializer.Serialize(new CoordinatorListeningLine("listening", endpoint), CliJsonContext.Lines.CoordinatorListeningLine)
                    : $"listening {endpoint}");
                cli.Out.Flush();
            }

            while (!stop.Task.IsCompleted)
            {
                var hints = await coordinator.RefreshAsync(CancellationToken.None).ConfigureAwait(false);
                WriteStatus(cli.Out, settings, coordinator, hints, observed, service);
                await Task.WhenAny(stop.Task, Task.Delay(settings.Interval, CancellationToken.None)).ConfigureAwait(false);
            }

            Log($"{await stop.Task.ConfigureAwait(false)}: stopping (working nodes keep their last hints)");
            return ExitCodes.Ok;
        }
        finally
        {
            if (service is not null)
            {
                await service.StopAsync().ConfigureAwait(false);
            }

            foreach (var blade in observed)
            {
                await blade.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    private static void WriteStatus(TextWriter output, CoordinatorSettings settings, PlacementCoordinator coordinator, PlacementHints hints, IReadOnlyList<ObservedBlade> observed, HintServer? service)
    {
        var loads = coordinator.Loads;
        var blades = new CoordinatorBladeLine[observed.Count];
        for (int i = 0; i < blades.Length; i++)
        {
            var load = loads[i];
            var hint = hints.Blades[i];
            var cost = observed[i].Counters.Snapshot();
            blades[i] = new CoordinatorBladeLine(
                Blade: i,
                Endpoint: observed[i].Endpoint.ToString(),
                Reachable: load.Reachable,
                Utilization: Math.Round(load.Utilization, 4),
                UsedSlabs: load.UsedSlabs,
                SlabCount: load.SlabCount,
                FreeBytes: load.FreeBytes,
                Weight: hint.Weight,
                Shed: hint.Shed,
                Reads: cost.Reads,
                BytesRead: cost.BytesFromBlade,
                Error: load.Reachable ? null : observed[i].LastError ?? "the last read failed");
        }

        var line = new CoordinatorRefreshLine("refresh", DateTimeOffset.Now, hints.Version, hints.HighWaterMark, service?.RequestsAnswered, blades);
        if (settings.Json)
        {
            output.WriteLine(JsonSerializer.Serialize(line, CliJsonContext.Lines.CoordinatorRefreshLine));
        }
        else
        {
            output.WriteLine(Text(line));
        }

        output.Flush();
    }

    internal static string Text(CoordinatorRefreshLine line)
    {
        var text = new System.Text.StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"{line.Time:yyyy-MM-dd HH:mm:ss.fff} v{line.Version}");
        foreach (var blade in line.Blades)
        {
            text.Append(CultureInfo.InvariantCulture, $" | blade {blade.Blade} {blade.Endpoint}: ");
            text.Append(blade.Reachable
                ? string.Create(CultureInfo.InvariantCulture, $"{blade.Utilization * 100:0.0}% used ({blade.UsedSlabs}/{blade.SlabCount} slabs), weight {ByteSize.Format(blade.Weight)}, shed {(blade.Shed ? "yes" : "no")}")
                : $"unreachable ({blade.Error})");
            text.Append(CultureInfo.InvariantCulture, $", {blade.Reads} reads, {ByteSize.Format(blade.BytesRead)} read");
        }

        if (line.HintRequests is { } requests)
        {
            text.Append(CultureInfo.InvariantCulture, $" | {requests} hint requests answered");
        }

        return text.ToString();
    }

    private static string Describe(IPEndPoint endPoint) =>
        endPoint.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{endPoint.Address}]:{endPoint.Port}" : $"{endPoint.Address}:{endPoint.Port}";
}

/// <summary>The first <c>coordinator --json</c> line with <c>--listen</c>: where the hints are served.</summary>
internal sealed record CoordinatorListeningLine(string Event, string Endpoint);

/// <summary>One <c>coordinator --json</c> line per refresh.</summary>
internal sealed record CoordinatorRefreshLine(string Event, DateTimeOffset Time, long Version, double HighWaterMark, long? HintRequests, IReadOnlyList<CoordinatorBladeLine> Blades);

/// <summary>One blade in a refresh line: its load as read, its hint, and what reading it has cost so far.</summary>
internal sealed record CoordinatorBladeLine(
    int Blade,
    string Endpoint,
    bool Reachable,
    double Utilization,
    ulong UsedSlabs,
    ulong SlabCount,
    ulong FreeBytes,
    ulong Weight,
    bool Shed,
    long Reads,
    long BytesRead,
    string? Error);
