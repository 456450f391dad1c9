using System.CommandLine;
using System.Net;
using System.Runtime.InteropServices;
using RAllocator.Fabric.Handshake;
using RAllocator.Hosting;
using RAllocator.Protocol.Layout;

namespace RAllocator.Cli.Commands;

/// <summary>
/// <c>serve</c>: runs a blade server on an image until SIGTERM or SIGINT, then persists and exits cleanly.
/// </summary>
internal static class ServeCommand
{
    public static Command Create(CliContext cli)
    {
        var path = CliOptions.ImagePath("The blade image to serve (made by 'rallocator format').");
        var listen = new Option<string>("--listen")
        {
            Description = "Address and port to accept working nodes on, host:port (port 0 picks a free port and logs it).",
            HelpName = "HOST:PORT",
            DefaultValueFactory = _ => "127.0.0.1:7070",
        };
        listen.Validators.Add(result =>
        {
            var text = result.Tokens.Count == 0 ? "127.0.0.1:7070" : result.Tokens[0].Value;
            try
            {
                var endpoint = BladeEndpoint.Parse(text, allowPortZero: true);
                if (!IPAddress.TryParse(endpoint.Host, out _) && endpoint.Host != "localhost")
                {
                    result.AddError($"--listen {text}: give an IP address to listen on (for example 0.0.0.0:7070 for every interface).");
                }
            }
            catch (FormatException ex)
            {
                result.AddError($"--listen {ex.Message}");
            }
        });
        var tokenFile = new Option<string>("--token-file")
        {
            Description = "File holding the access token working nodes must present (keep it readable only by the blade's and nodes' users).",
            HelpName = "FILE",
            Required = true,
        };
        var fabric = new Option<string[]>("--fabric")
        {
            Description = "Fabrics to offer: shm (same-host nodes map the image), ucx (UCX: shared memory, TCP, InfiniBand, RoCE), verbs (libibverbs). Default: shm and ucx.",
            HelpName = "shm|ucx|verbs",
            AllowMultipleArgumentsPerToken = true,
            DefaultValueFactory = _ => ["shm", "ucx"],
        };
        fabric.Validators.Add(result =>
        {
            foreach (var token in result.Tokens)
            {
                if (token.Value is not ("shm" or "ucx" or "verbs"))
                {
                    result.AddError($"--fabric '{token.Value}' is not one of: shm, ucx, verbs.");
                }
            }
        });
        var reportEvery = new Option<double>("--report-every")
        {
            Description = "Seconds between utilization lines in the log (0: never).",
            HelpName = "SECONDS",
            DefaultValueFactory = _ => 10,
        }.InRange(0.0, 86_400.0);
        var ucxTls = FabricAvailability.UcxTransportsOption();
        var fence = new Option<bool>("--fence-expired-nodes")
        {
            Description = "End the session of a node whose lease expires, revoking its registrations.",
        };

        var command = new Command("serve", "Run a blade server: serve an image to working nodes until SIGTERM or SIGINT, then persist and exit.")
        {
            path, listen, tokenFile, fabric, reportEvery, fence, ucxTls,
        };
        command.SetAction((parseResult, cancellationToken) => RunAsync(
            cli,
            parseResult.GetValue(path)!,
            BladeEndpoint.Parse(parseResult.GetValue(listen)!, allowPortZero: true),
            parseResult.GetValue(tokenFile)!,
            parseResult.GetValue(fabric)!,
            TimeSpan.FromSeconds(parseResult.GetValue(reportEvery)),
            parseResult.GetValue(fence),
            FabricAvailability.UcxOptionsFor(parseResult.GetValue(ucxTls)),
            cancellationToken));
        return command;
    }

    private static async Task<int> RunAsync(CliContext cli, string path, BladeEndpoint listen, string tokenFile, string[] fabrics, TimeSpan reportEvery, bool fence, RAllocator.Fabric.Ucx.UcxOptions ucx, CancellationToken cancellationToken)
    {
        AccessToken token;
        try
        {
            token = AccessToken.ReadFile(tokenFile);
        }
        catch (AccessTokenException ex)
        {
            throw new CliFailureException(ex.Message, ex);
        }

        var offered = fabrics.Distinct().ToArray();
        if (offered.Contains("verbs"))
        {
            throw new CliFailureException(FabricAvailability.VerbsUnavailableMessage());
        }

        var log = new object();
        void Log(string line)
        {
            lock (log)
            {
                cli.Error.WriteLine($"{DateTime.Now:yyyy-MM-dd HH:mm:ss.fff} {line}");
                cli.Error.Flush();
            }
        }

        if (!File.Exists(path))
        {
            throw new CliFailureException($"'{path}' does not exist. Create a blade image with 'rallocator format {path} --size SIZE'.");
        }

        var address = listen.Host == "localhost" ? IPAddress.Loopback : IPAddress.Parse(listen.Host);
        var options = new BladeServerOptions
        {
            Listen = new IPEndPoint(address, listen.Port),
            Token = token,
            UtilizationReportInterval = reportEvery,
            FenceOnLeaseExpiry = fence,
            Log = Log,
        };

        BladeServer server;
        try
        {
            server = BladeServer.Start(path, options, region => FabricAvailability.BladeExports(region, offered, ucx, Log));
        }
        catch (BladeServerException ex)
        {
            throw new CliFailureException(ex.Message, ex);
        }
        catch (BladeImageException ex)
        {
            throw new CliFailureException($"'{path}' is not a usable blade image ({ex.Error}): {ex.Message} The image was not modified; 'rallocator check {path}' says more.", ex);
        }

        // The listening line on stdout is for scripts and tests that start a server on port 0.
        cli.Out.WriteLine($"listening {server.LocalEndPoint}");
        cli.Out.Flush();

        var stop = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context => { context.Cancel = true; stop.TrySetResult("SIGTERM"); });
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, context => { context.Cancel = true; stop.TrySetResult("SIGINT"); });
        using var cancelled = cancellationToken.Register(() => stop.TrySetResult("cancellation"));
        var finished = await Task.WhenAny(stop.Task, server.AgentStopped).ConfigureAwait(false);
        if (finished == stop.Task)
        {
            Log($"{await stop.Task.ConfigureAwait(false)} received");
        }

        await server.StopAsync().ConfigureAwait(false);
        if (server.AgentStopped.IsFaulted)
        {
            throw new CliFailureException($"the blade agent failed: {server.AgentStopped.Exception!.InnerException!.Message}");
        }

        return ExitCodes.Ok;
    }
}
