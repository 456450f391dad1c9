using System.CommandLine;
using System.CommandLine.Invocation;
using System.CommandLine.Parsing;
using RAllocator.Cli.Commands;

namespace RAllocator.Cli;

/// <summary>
/// The <c>rallocator</c> command line: <c>format</c>, <c>inspect</c>, <c>check</c>, <c>demo</c>, <c>bench</c>,
/// <c>serve</c>, <c>coordinator</c> and <c>ycsb</c>.
/// Exit codes are <see cref="ExitCodes"/>: 0 ok, 1 the command failed, 2 the command line is wrong.
/// </summary>
public static class Program
{
    /// <summary>The process entry point.</summary>
    public static Task<int> Main(string[] args) => RunAsync(args, Console.Out, Console.Error);

    /// <summary>
    /// Runs one command line in-process, writing results to <paramref name="stdout"/> and diagnostics to
    /// <paramref name="stderr"/>, and returns the exit code. Never prints a stack trace unless <c>--verbose</c>.
    /// </summary>
    public static async Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(stdout);
        ArgumentNullException.ThrowIfNull(stderr);

        var cli = new CliContext(stdout, stderr);
        var root = BuildRootCommand(cli);
        ParseResult parseResult;
        try
        {
            parseResult = root.Parse(args);
        }
        catch (Exception ex)
        {
            await stderr.WriteLineAsync($"error: the command line could not be parsed: {ex.Message}").ConfigureAwait(false);
            return ExitCodes.Usage;
        }

        if (parseResult.Action is ParseErrorAction)
        {
            foreach (var error in parseResult.Errors)
            {
                await stderr.WriteLineAsync($"error: {Describe(error)}").ConfigureAwait(false);
            }

            await stderr.WriteLineAsync($"Run '{CommandPath(parseResult)} --help' for usage.").ConfigureAwait(false);
            return ExitCodes.Usage;
        }

        bool verbose = parseResult.GetValue(cli.Verbose);
        try
        {
            return await parseResult.InvokeAsync(new InvocationConfiguration
            {
                Output = stdout,
                Error = stderr,
                EnableDefaultExceptionHandler = false,
            }).ConfigureAwait(false);
        }
        catch (CliUsageException ex)
        {
            await stderr.WriteLineAsync($"error: {ex.Message}").ConfigureAwait(false);
            await stderr.WriteLineAsync($"Run '{CommandPath(parseResult)} --help' for usage.").ConfigureAwait(false);
            WriteDetails(stderr, ex, verbose);
            return ExitCodes.Usage;
        }
        catch (CliFailureException ex)
        {
            await stderr.WriteLineAsync($"error: {ex.Message}").ConfigureAwait(false);
            WriteDetails(stderr, ex, verbose);
            return ExitCodes.Failed;
        }
        catch (OperationCanceledException ex)
        {
            await stderr.WriteLineAsync("error: cancelled.").ConfigureAwait(false);
            WriteDetails(stderr, ex, verbose);
            return ExitCodes.Failed;
        }
        catch (Exception ex)
        {
            // Anything else is a bug or an environment failure: say what it was, in one line, and how to see more.
            await stderr.WriteLineAsync($"error: {ex.GetType().Name}: {ex.Message}").ConfigureAwait(false);
            if (!verbose)
            {
                await stderr.WriteLineAsync("(run again with --verbose for the stack trace)").ConfigureAwait(false);
            }

            WriteDetails(stderr, ex, verbose);
            return ExitCodes.Failed;
        }
    }

    internal static RootCommand BuildRootCommand(CliContext cli)
    {
        var root = new RootCommand(
            "rallocator: format, inspect and check RAllocator blade images, serve them, coordinate placement across blades, run the in-process demo, and benchmark the allocator.")
        {
            cli.Verbose,
        };
        // --version names this tool's version, also when RunAsync is hosted by another entry assembly (the tests).
        foreach (var version in root.Options.OfType<VersionOption>())
        {
            version.Action = new PrintVersionAction(cli.Out);
        }

        root.Subcommands.Add(FormatCommand.Create(cli));
        root.Subcommands.Add(InspectCommand.CreateInspect(cli));
        root.Subcommands.Add(InspectCommand.CreateCheck(cli));
        root.Subcommands.Add(DemoCommand.Create(cli));
        root.Subcommands.Add(BenchCommand.Create(cli));
        root.Subcommands.Add(ServeCommand.Create(cli));
        root.Subcommands.Add(CoordinatorCommand.Create(cli));
        root.Subcommands.Add(YcsbCommand.Create(cli));
        return root;
    }

    /// <summary>The parser's message, except that a missing argument is named (the stock text names only the command).</summary>
    private static string Describe(ParseError error) =>
        error.SymbolResult is ArgumentResult { Tokens.Count: 0 } missing && missing.Argument.Arity.MinimumNumberOfValues > 0
            ? $"missing argument {missing.Argument.Name}: {missing.Argument.Description}"
            : error.Message;

    private static string CommandPath(ParseResult parseResult)
    {
        var names = new List<string>();
        for (var result = parseResult.CommandResult; result is not null; result = result.Parent as CommandResult)
        {
            names.Add(result.Command is RootCommand ? "rallocator" : result.Command.Name);
        }

        names.Reverse();
        return string.Join(' ', names);
    }

    private static void WriteDetails(TextWriter stderr, Exception ex, bool verbose)
    {
        if (verbose)
        {
            stderr.WriteLine(ex.ToString());
        }
    }
}

/// <summary>Prints the informational version of the rallocator assembly.</summary>
internal sealed class PrintVersionAction(TextWriter output) : SynchronousCommandLineAction
{
    public static string Version =>
        typeof(Program).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyInformationalVersionAttribute), false)
            .OfType<System.Reflection.AssemblyInformationalVersionAttribute>().FirstOrDefault()?.InformationalVersion
        ?? typeof(Program).Assembly.GetName().Version?.ToString()
        ?? "unknown";

    public override int Invoke(ParseResult parseResult)
    {
        output.WriteLine(Version);
        return ExitCodes.Ok;
    }
}

/// <summary>What every command shares: the output writers and the global options.</summary>
internal sealed class CliContext(TextWriter stdout, TextWriter stderr)
{
    public TextWriter Out { get; } = stdout;

    public TextWriter Error { get; } = stderr;

    /// <summary><c>--verbose</c>: print stack traces with errors.</summary>
    public Option<bool> Verbose { get; } = new("--verbose", "-v")
    {
        Description = "Print the stack trace with an error.",
        Recursive = true,
    };
}
