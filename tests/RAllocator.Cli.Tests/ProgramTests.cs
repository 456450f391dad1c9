namespace RAllocator.Cli.Tests;

public sealed class ProgramTests
{
    [Fact]
    public async Task HelpListsEveryCommand()
    {
        var run = await Cli.RunAsync("--help");

        run.ExitCode.ShouldBe(ExitCodes.Ok, run.ToString());
        foreach (string command in new[] { "format", "inspect", "check", "demo", "bench", "serve", "coordinator" })
        {
            run.Out.ShouldContain(command);
        }
    }

    [Fact]
    public async Task VersionPrintsTheAssemblyVersion()
    {
        var run = await Cli.RunAsync("--version");

        run.ExitCode.ShouldBe(ExitCodes.Ok, run.ToString());
        run.Out.Trim().ShouldBe(PrintVersionAction.Version, "the tool's own version, not the host's");
    }

    [Fact]
    public async Task NoCommandIsAUsageError()
    {
        var run = await Cli.RunAsync();

        run.ExitCode.ShouldBe(ExitCodes.Usage, run.ToString());
        run.Error.ShouldContain("--help");
    }

    [Fact]
    public async Task AnUnknownCommandIsAUsageErrorNamingIt()
    {
        var run = await Cli.RunAsync("frobnicate");

        run.ExitCode.ShouldBe(ExitCodes.Usage, run.ToString());
        run.Error.ShouldContain("frobnicate");
    }

    [Fact]
    public async Task ErrorsCarryNoStackTraceUnlessVerbose()
    {
        using var dir = new TempDirectory();
        string missing = dir.File("missing.img");

        var quiet = await Cli.RunAsync("inspect", missing);
        var verbose = await Cli.RunAsync("inspect", missing, "--verbose");

        quiet.ExitCode.ShouldBe(ExitCodes.Failed, quiet.ToString());
        quiet.Error.ShouldNotContain("   at ");
        verbose.ExitCode.ShouldBe(ExitCodes.Failed, verbose.ToString());
        verbose.Error.ShouldContain("   at ", customMessage: "--verbose prints the stack trace");
    }
}
