using System.CommandLine;
using System.Text.Json;
using RAllocator.Blade;
using RAllocator.Cli.Reporting;
using RAllocator.Nvm;
using RAllocator.Protocol.Layout;

namespace RAllocator.Cli.Commands;

/// <summary>
/// <c>inspect PATH</c> and <c>check PATH</c>: read a blade image through a read-only mapping (PROT_READ, so nothing
/// can be written, not even the replay of an interrupted update) and report its state or its consistency.
/// </summary>
internal static class InspectCommand
{
    public static Command CreateInspect(CliContext cli)
    {
        var path = CliOptions.ImagePath("The blade image file (opened read-only; never written).");
        var json = new Option<bool>("--json") { Description = "Print one JSON object (snake_case keys) and nothing else on stdout." };
        var command = new Command("inspect", "Show a blade image: geometry, superblocks, utilization, owners, node areas, wear, epochs, problems.")
        {
            path, json,
        };
        command.SetAction(parseResult => Inspect(cli, parseResult.GetValue(path)!, parseResult.GetValue(json)));
        return command;
    }

    public static Command CreateCheck(CliContext cli)
    {
        var path = CliOptions.ImagePath("The blade image file (opened read-only; never written).");
        var json = new Option<bool>("--json") { Description = "Print one JSON object (snake_case keys) and nothing else on stdout." };
        var command = new Command("check", "Check a blade image's consistency: exit 0 when consistent, 1 otherwise, listing every problem.")
        {
            path, json,
        };
        command.SetAction(parseResult => Check(cli, parseResult.GetValue(path)!, parseResult.GetValue(json)));
        return command;
    }

    private static int Inspect(CliContext cli, string path, bool json)
    {
        string fullPath = Path.GetFullPath(path);
        using var region = OpenReadOnly(fullPath);
        BladeImage image;
        try
        {
            image = BladeImage.Open(region, BladeOpenMode.ReadOnly);
        }
        catch (BladeImageException ex)
        {
            throw new CliFailureException($"{fullPath} is not a usable blade image: {ex.Error}: {ex.Message}", ex);
        }

        var report = ImageReport.Build(fullPath, region, image, image.Scan());
        if (json)
        {
            cli.Out.WriteLine(JsonSerializer.Serialize(report, CliJsonContext.Output.ImageReport));
        }
        else
        {
            ImageReportWriter.Write(cli.Out, report);
        }

        return ExitCodes.Ok;
    }

    private static int Check(CliContext cli, string path, bool json)
    {
        string fullPath = Path.GetFullPath(path);
        using var region = OpenReadOnly(fullPath);
        CheckReport report;
        try
        {
            var image = BladeImage.Open(region, BladeOpenMode.ReadOnly);
            var state = image.Scan();
            report = new CheckReport(fullPath, state.IsConsistent, state.IsConsistent ? null : nameof(BladeImageError.InconsistentMetadata), null, state.Problems);
        }
        catch (BladeImageException ex)
        {
            report = new CheckReport(fullPath, false, ex.Error.ToString(), ex.Message, []);
        }

        if (json)
        {
            cli.Out.WriteLine(JsonSerializer.Serialize(report, CliJsonContext.Output.CheckReport));
        }
        else if (report.Consistent)
        {
            cli.Out.WriteLine($"{fullPath}: consistent");
        }
        else if (report.Message is not null)
        {
            cli.Out.WriteLine($"{fullPath}: not a valid blade image: {report.Error}: {report.Message}");
        }
        else
        {
            cli.Out.WriteLine($"{fullPath}: {report.Error}: {report.Problems.Count} problem{(report.Problems.Count == 1 ? "" : "s")}");
            foreach (string problem in report.Problems)
            {
                cli.Out.WriteLine($"  - {problem}");
            }
        }

        if (!report.Consistent && !json)
        {
            cli.Error.WriteLine($"error: {fullPath} failed the check ({report.Error}).");
        }

        return report.Consistent ? ExitCodes.Ok : ExitCodes.Failed;
    }

    /// <summary>Maps <paramref name="fullPath"/> read-only; a missing or unreadable file is a failure naming it.</summary>
    internal static MappedFileNvm OpenReadOnly(string fullPath)
    {
        if (Directory.Exists(fullPath))
        {
            throw new CliFailureException($"{fullPath} is a directory; PATH must be a blade image file.");
        }

        if (!File.Exists(fullPath))
        {
            throw new CliFailureException($"{fullPath} does not exist; PATH must be a blade image file (create one with 'rallocator format').");
        }

        try
        {
            return MappedFileNvm.Open(fullPath, NvmAccess.ReadOnly);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new CliFailureException($"{fullPath}: {ex.Message}", ex);
        }
    }
}
