using System.Net;
using System.Net.Sockets;

namespace RAllocator.Integration.Tests;

/// <summary><c>rallocator serve</c> as an operator runs it: a process, its log, its signals and its errors.</summary>
public sealed class ServeCommandTests
{
    [Fact]
    public async Task Serve_logs_reports_utilization_and_exits_cleanly_on_sigterm()
    {
        using var directory = new TempDirectory();
        var image = directory.File("blade.img");
        File.WriteAllText(directory.File("token"), "s\n");
        (await Built.RunCliAsync("format", image, "--size", "32MiB", "--slab-size", "256KiB")).ShouldBe(0);

        using var blade = Built.StartCli("blade", "serve", image, "--listen", "127.0.0.1:0", "--token-file", directory.File("token"), "--report-every", "0.2");
        await blade.WaitForLineAsync(l => l.StartsWith("listening 127.0.0.1:", StringComparison.Ordinal), TimeSpan.FromSeconds(60));
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!blade.Errors.Any(l => l.Contains("utilization")) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
        }

        blade.Terminate();
        (await blade.WaitForExitAsync(TimeSpan.FromSeconds(60))).ShouldBe(0, blade.Describe());
        blade.Errors.ShouldContain(l => l.Contains("serving blade image"));
        blade.Errors.ShouldContain(l => l.Contains("utilization"));
        blade.Errors.ShouldContain(l => l.Contains("SIGTERM received"));
        blade.Errors.ShouldContain(l => l.Contains("stopped cleanly; image persisted"));
        (await Built.RunCliAsync("check", image)).ShouldBe(0);
    }

    [Fact]
    public async Task A_port_in_use_a_bad_image_and_a_bad_token_file_are_clear_errors_that_leave_the_image_alone()
    {
        using var directory = new TempDirectory();
        var image = directory.File("blade.img");
        var token = directory.File("token");
        File.WriteAllText(token, "s\n");
        (await Built.RunCliAsync("format", image, "--size", "32MiB", "--slab-size", "256KiB")).ShouldBe(0);
        var before = File.ReadAllBytes(image);

        using var occupant = new TcpListener(IPAddress.Loopback, 0);
        occupant.Start();
        var port = ((IPEndPoint)occupant.LocalEndpoint).Port;
        var (portInUse, portError) = await RunServeAsync(image, "--listen", $"127.0.0.1:{port}", "--token-file", token);
        portInUse.ShouldBe(1);
        portError.ShouldContain("already in use");

        var (missingToken, tokenError) = await RunServeAsync(image, "--listen", "127.0.0.1:0", "--token-file", directory.File("absent"));
        missingToken.ShouldBe(1);
        tokenError.ShouldContain("token file");
        tokenError.ShouldContain("does not exist");

        File.WriteAllText(directory.File("empty"), "");
        var (emptyToken, emptyError) = await RunServeAsync(image, "--listen", "127.0.0.1:0", "--token-file", directory.File("empty"));
        emptyToken.ShouldBe(1);
        emptyError.ShouldContain("empty");

        var (badListen, listenError) = await RunServeAsync(image, "--listen", "127.0.0.1", "--token-file", token);
        badListen.ShouldBe(2);
        listenError.ShouldContain("host:port");

        var (verbs, verbsError) = await RunServeAsync(image, "--listen", "127.0.0.1:0", "--token-file", token, "--fabric", "verbs");
        verbs.ShouldBe(1);
        verbsError.ShouldContain("ibv_get_device_list");
        verbsError.ShouldContain("--fabric ucx");

        File.ReadAllBytes(image).ShouldBe(before, "no failed start may touch the image");

        var garbage = directory.File("garbage.img");
        File.WriteAllBytes(garbage, new byte[1 << 20]);
        var (badImage, imageError) = await RunServeAsync(garbage, "--listen", "127.0.0.1:0", "--token-file", token);
        badImage.ShouldBe(1);
        imageError.ShouldContain("not a usable blade image");
        File.ReadAllBytes(garbage).ShouldAllBe(b => b == 0);
    }

    private static async Task<(int Exit, string Error)> RunServeAsync(params string[] arguments)
    {
        using var process = Built.StartCli("serve", ["serve", .. arguments]);
        var exit = await process.WaitForExitAsync(TimeSpan.FromSeconds(60));
        return (exit, string.Join('\n', process.Errors));
    }
}
