using System.CommandLine;
using RAllocator.Blade;
using RAllocator.Cli.Reporting;
using RAllocator.Nvm;
using RAllocator.Protocol.Layout;

namespace RAllocator.Cli.Commands;

/// <summary><c>format PATH --size SIZE</c>: lays out a fresh blade image in a sparse file.</summary>
internal static class FormatCommand
{
    /// <summary>Default base slab size.</summary>
    public const ulong DefaultSlabSizeBytes = 1 << 20;

    public static Command Create(CliContext cli)
    {
        var path = CliOptions.ImagePath("The blade image file to create (a sparse file: blocks are allocated only when written).");
        var size = CliOptions.Size("--size", "Size of the blade's NVM region (the whole file).");
        var slabSize = CliOptions.Size("--slab-size", "Base slab size: a power of two from 64KiB to 1GiB (default 1MiB).", DefaultSlabSizeBytes)
            .CheckSize(CheckSlabSize);
        var maxNodes = new Option<uint>("--max-nodes")
        {
            Description = "Most working nodes the blade serves (node ids 0 to N-1).",
            HelpName = "N",
            DefaultValueFactory = _ => new BladeFormatOptions().MaxNodes,
        }.InRange(1u, BladeGeometry.MaxNodesLimit);
        var ring = new Option<uint?>("--ring")
        {
            Description = "Ring entries (slabs the agent keeps ready for one-sided acquisition); default: the slab count, at most 1024.",
            HelpName = "N",
        };
        ring.Validators.Add(result =>
        {
            if (result.Tokens.Count > 0 && result.GetValueOrDefault<uint?>() is 0u)
            {
                result.AddError("--ring 0 is invalid: the ring needs at least 1 entry.");
            }
        });
        var maxSpan = MaxSpanOption("Largest slab the blade hands out, in base slabs: a power of two from 1 to 64 (default 1: base slabs only). Above 1 the blade keeps one span ring per size (1, 2, 4 ... N base slabs).");
        var spanRing = new Option<uint>("--span-ring")
        {
            Description = "Entries of each span ring when --max-span is above 1 (default 4): every filled entry parks a whole span until a node takes it.",
            HelpName = "N",
            DefaultValueFactory = _ => new BladeFormatOptions().SpanRingCapacity,
        }.InRange(1u, MaxSpanRingCapacity);
        var force = new Option<bool>("--force", "-f") { Description = "Reformat PATH if it exists (destroys the blade image in it)." };

        var command = new Command("format", "Create a sparse file and format it as an empty blade image.")
        {
            path, size, slabSize, maxNodes, ring, maxSpan, spanRing, force,
        };
        command.Validators.Add(result =>
        {
            if (result.GetResult(spanRing) is { Tokens.Count: > 0 } && result.GetValue(maxSpan) <= 1)
            {
                result.AddError("--span-ring needs --max-span 2 or more: a blade with base slabs only has no span rings.");
            }
        });
        command.SetAction(parseResult => Run(
            cli,
            parseResult.GetValue(path)!,
            parseResult.GetValue(size),
            parseResult.GetValue(slabSize),
            new BladeFormatOptions
            {
                MaxNodes = parseResult.GetValue(maxNodes),
                RingCapacity = parseResult.GetValue(ring),
                MaxSlabSpan = parseResult.GetValue(maxSpan),
                SpanRingCapacity = parseResult.GetValue(spanRing),
            },
            parseResult.GetValue(force)));
        return command;
    }

    /// <summary>Most entries <c>--span-ring</c> accepts (each parks a whole span).</summary>
    public const uint MaxSpanRingCapacity = 1024;

    /// <summary>
    /// <c>--max-span N</c>: a power of two from 1 to <see cref="BladeGeometry.MaxSlabSpanLimit"/> (default 1), with an
    /// error naming the option otherwise.
    /// </summary>
    public static Option<uint> MaxSpanOption(string description)
    {
        var option = new Option<uint>("--max-span")
        {
            Description = description,
            HelpName = "N",
            DefaultValueFactory = _ => 1,
        };
        option.Validators.Add(result =>
        {
            if (result.Tokens.Count == 0)
            {
                return;
            }

            uint value;
            try
            {
                value = result.GetValueOrDefault<uint>();
            }
            catch (InvalidOperationException)
            {
                return; // not a number: the parser already named --max-span
            }

            if (CheckMaxSpan(value, result.Tokens[0].Value) is { } error)
            {
                result.AddError(error);
            }
        });
        return option;
    }

    /// <summary>Null when <paramref name="value"/> is a valid maximum span, else the error naming --max-span.</summary>
    public static string? CheckMaxSpan(uint value, string text) =>
        uint.IsPow2(value) && value <= BladeGeometry.MaxSlabSpanLimit
            ? null
            : $"--max-span {text} is invalid: it must be a power of two from 1 to {BladeGeometry.MaxSlabSpanLimit} (base slabs per slab: 1, 2, 4, 8, 16, 32 or 64).";

    /// <summary>Null when <paramref name="value"/> is a valid slab size, else the error naming --slab-size.</summary>
    public static string? CheckSlabSize(ulong value, string text) =>
        ulong.IsPow2(value) && value >= BladeGeometry.MinSlabSizeBytes && value <= BladeGeometry.MaxSlabSizeBytes
            ? null
            : $"--slab-size {text} ({value} bytes) is invalid: it must be a power of two between 64KiB and 1GiB.";

    private static int Run(CliContext cli, string path, ulong sizeBytes, ulong slabSizeBytes, BladeFormatOptions options, bool force)
    {
        if (sizeBytes > long.MaxValue)
        {
            throw new CliUsageException($"--size {sizeBytes} bytes is too large for a file.");
        }

        // Check the parameters before touching the file, so a bad --size never costs an existing image.
        try
        {
            BladeGeometry.ForRegion(sizeBytes, slabSizeBytes, options);
        }
        catch (BladeGeometryException ex)
        {
            throw new CliUsageException($"--size {ByteSize.Format(sizeBytes)} with --slab-size {ByteSize.Format(slabSizeBytes)}: {ex.Message}");
        }

        string fullPath = Path.GetFullPath(path);
        if (Directory.Exists(fullPath))
        {
            throw new CliFailureException($"{fullPath} is a directory; PATH must be a file.");
        }

        bool exists = File.Exists(fullPath);
        if (exists && !force)
        {
            throw new CliFailureException($"{fullPath} already exists; pass --force to reformat it (this destroys the blade image in it).");
        }

        MappedFileNvm region;
        string how;
        try
        {
            if (exists && new FileInfo(fullPath).Length == (long)sizeBytes)
            {
                region = MappedFileNvm.Open(fullPath, NvmAccess.ReadWrite);
                how = "reformatted in place";
            }
            else
            {
                if (exists)
                {
                    File.Delete(fullPath);
                }

                region = MappedFileNvm.Create(fullPath, (long)sizeBytes);
                how = exists ? "recreated at the new size and formatted" : "created and formatted";
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new CliFailureException($"{fullPath}: {ex.Message}", ex);
        }

        using (region)
        {
            var image = BladeImage.Format(region, slabSizeBytes, options);
            var g = image.Geometry;
            var output = cli.Out;
            output.WriteLine($"{fullPath}: {how} as a blade image");
            ImageReportWriter.Line(output, "  region", $"{ByteSize.Format(g.RegionSizeBytes)} ({g.RegionSizeBytes} bytes, sparse file)");
            ImageReportWriter.Line(output, "  slabs", $"{g.SlabCount} x {ByteSize.Format(g.SlabSizeBytes)}");
            ImageReportWriter.Line(output, "  max nodes", $"{g.MaxNodes}");
            ImageReportWriter.Line(output, "  ring", $"{g.RingCapacity} entries");
            ImageReportWriter.Line(output, "  slab spans", g.MaxSlabSpan == 1
                ? "1 (base slabs only; --max-span N for larger slabs)"
                : $"1 to {g.MaxSlabSpan} base slabs ({ByteSize.Format(g.SlabSizeBytes)} to {ByteSize.Format(g.SlabSizeBytes * g.MaxSlabSpan)}), "
                  + $"{g.SpanClassCount - 1} span ring{(g.SpanClassCount == 2 ? "" : "s")} of {g.SpanRingCapacity} entries");
            ImageReportWriter.Line(output, "  node areas", $"{g.AckSlotsPerNode} ack + {g.FreeSlotsPerNode} free slots per node");
            ImageReportWriter.Line(output, "  metadata", $"{ByteSize.Format(g.MetadataBytes)} ({g.MetadataBytes} bytes)");
            ImageReportWriter.Line(output, "  data offset", $"{g.DataOffset} (slab 0 starts here)");
            ImageReportWriter.Line(output, "  blade uid", $"0x{image.Superblock.BladeUid:x16}");
            WriteBackend(output, region);
        }

        return ExitCodes.Ok;
    }

    /// <summary>Prints which NVM backend a file region uses and, when libpmem is not used, why and what to do.</summary>
    public static void WriteBackend(TextWriter output, MappedFileNvm region)
    {
        ImageReportWriter.Line(output, "  nvm backend", $"{region.Backend} ({Persistence(region.PersistenceDomain)})");
        if (region.FallbackReason is { } reason)
        {
            ImageReportWriter.Line(output, "  fallback", reason);
            if (InstallHint(reason) is { } hint)
            {
                ImageReportWriter.Line(output, "  hint", hint);
            }
        }
    }

    /// <summary>One line: the backend, how it persists, and the fallback reason with the install hint if any.</summary>
    public static string DescribeBackend(MappedFileNvm region) =>
        $"{region.Backend} ({Persistence(region.PersistenceDomain)})"
        + (region.FallbackReason is { } reason ? $"; {reason}" + (InstallHint(reason) is { } hint ? $"; {hint}" : "") : "");

    private static string Persistence(NvmPersistenceDomain domain) => domain switch
    {
        NvmPersistenceDomain.PersistentMemory => "pmem_persist: real persistent memory",
        NvmPersistenceDomain.MappedFileMsync => "msync: a mapped file, not persistent memory",
        _ => domain.ToString(),
    };

    /// <summary>The libpmem install hint when libpmem is missing and the reason does not already say it.</summary>
    private static string? InstallHint(string reason) =>
        !NvmRegions.IsLibpmemAvailable && !reason.Contains("apt-get", StringComparison.Ordinal)
            ? "install libpmem with: apt-get install libpmem1"
            : null;
}
