using System.Globalization;

namespace RAllocator.Cli.Reporting;

/// <summary>Prints an <see cref="ImageReport"/> as aligned plain lines (the text form of <c>inspect</c>).</summary>
internal static class ImageReportWriter
{
    private const int KeyWidth = 18;

    public static void Write(TextWriter output, ImageReport report, bool includeNvm = true)
    {
        var g = report.Geometry;
        var sb = report.Superblock;
        var u = report.Utilization;

        output.WriteLine($"blade image {report.Path}");
        if (includeNvm)
        {
            Line(output, "nvm", report.Nvm.FallbackReason is null ? report.Nvm.Backend : $"{report.Nvm.Backend} ({report.Nvm.FallbackReason})");
        }

        output.WriteLine("geometry");
        Line(output, "  region", $"{ByteSize.Format(g.RegionSizeBytes)} ({g.RegionSizeBytes} bytes)");
        Line(output, "  slabs", $"{g.SlabCount} x {ByteSize.Format(g.SlabSizeBytes)}, data at offset {g.DataOffset} (metadata {ByteSize.Format(g.MetadataBytes)})");
        Line(output, "  nodes", $"up to {g.MaxNodes}, {g.AckSlotsPerNode} ack + {g.FreeSlotsPerNode} free slots each, lease {g.NodeLeaseTicks} agent ticks");
        Line(output, "  ring", g.MaxSlabSpan == 1
            ? $"{g.RingCapacity} entries, max slab span 1"
            : $"{g.RingCapacity} entries, max slab span {g.MaxSlabSpan} ({ByteSize.Format(g.SlabSizeBytes * g.MaxSlabSpan)}): "
              + $"span rings of {Plural(report.Rings.Skip(1).Select(r => r.Capacity).FirstOrDefault(), "entry", "entries")} for spans {string.Join(", ", report.Rings.Skip(1).Select(r => r.Span))}");

        output.WriteLine("superblock");
        Line(output, "  current", $"copy {sb.CurrentCopy}, generation {sb.Generation}, format v{sb.FormatVersion}");
        foreach (var copy in sb.Copies)
        {
            Line(output, $"  copy {copy.Copy}", copy.Valid ? $"valid, generation {copy.Generation}" : $"INVALID: {copy.Error}: {copy.Problem}");
        }

        Line(output, "  incarnation", $"{sb.BladeIncarnation} (blade uid {sb.BladeUid})");
        Line(output, "  clean shutdown", sb.CleanShutdown ? "yes" : "no (the blade is serving it, or crashed)");

        Line(output, "utilization", string.Create(CultureInfo.InvariantCulture,
            $"{u.Slabs - u.Free} of {u.Slabs} slabs in use ({u.Percent:0.##}%): {u.Free} free, {u.Ringed} ringed, {u.Owned} owned, {u.Freeing} freeing"));
        Line(output, "", $"{ByteSize.Format(u.InUseBytes)} in use, {ByteSize.Format(u.FreeBytes)} free; owned slabs by size: "
            + string.Join(", ", u.OwnedBySpan.Select(c => $"{ByteSize.Format(c.SlabBytes)} x {c.Slabs}")));
        Line(output, "owners", report.Owners.Count == 0
            ? "none"
            : string.Join(", ", report.Owners.Select(o => $"node {o.Node}: {Plural(o.Slabs, "slab")}")));
        foreach (var owner in report.Owners)
        {
            Line(output, $"  node {owner.Node}", $"{Plural(owner.Slabs, "slab")} = {Plural(owner.BaseSlabs, "base slab")}: {DescribeSlabs(owner.OwnedSlabs)}");
        }

        if (report.Nodes.Count == 0)
        {
            Line(output, "nodes", "none registered");
        }
        else
        {
            output.WriteLine("nodes");
            foreach (var n in report.Nodes)
            {
                Line(output, $"  node {n.Node}",
                    $"incarnation {n.Incarnation}, published epoch {n.PublishedEpoch}, heartbeat {n.Heartbeat}, "
                    + $"pending acks {n.PendingAcks}, pending frees {n.PendingFrees}, durably owns {n.DurablyOwnedSlabs} slab{(n.DurablyOwnedSlabs == 1 ? "" : "s")}"
                    + (n.AcquisitionInFlight ? ", acquisition in flight" : "") + $", root {n.Root}");
            }
        }

        Line(output, "wear", string.Create(CultureInfo.InvariantCulture,
            $"hand-outs per slab: min {report.Wear.Min}, mean {report.Wear.Mean:0.###}, max {report.Wear.Max}, max/mean ")
            + (report.Wear.MaxOverMean is { } ratio ? ratio.ToString("0.###", CultureInfo.InvariantCulture) : "n/a (nothing handed out yet)"));
        Line(output, "rings", report.Rings.Count == 1
            ? "one (base slabs only)"
            : $"{report.Rings.Count}, one per slab size (tickets below counted from each ring's first ticket, span class x 2^36)");
        foreach (var ring in report.Rings)
        {
            Line(output, $"  span {ring.Span}",
                $"{ByteSize.Format(ring.SlabBytes)} slabs, {Plural(ring.Capacity, "entry", "entries")}: sequencer {ring.TicketsTaken}, "
                + $"filled through {ring.FillMark - ring.FirstTicket} ({ring.Waiting} waiting); "
                + (ring.Span == 1 ? $"{Plural(ring.FreeAlignedRuns, "free slab")}" : $"{Plural(ring.FreeAlignedRuns, "free aligned run")} (could be coalesced now)"));
        }

        Line(output, "global epoch", report.GlobalEpoch.ToString(CultureInfo.InvariantCulture));
        Line(output, "pending intent", report.PendingIntent ?? "none");
        WriteProblems(output, report.Problems);
    }

    public static void WriteProblems(TextWriter output, IReadOnlyList<string> problems)
    {
        if (problems.Count == 0)
        {
            Line(output, "consistency", "consistent");
            return;
        }

        Line(output, "consistency", $"INCONSISTENT: {problems.Count} problem{(problems.Count == 1 ? "" : "s")}");
        foreach (string problem in problems)
        {
            output.WriteLine($"  - {problem}");
        }
    }

    public static void Line(TextWriter output, string key, string value) => output.WriteLine($"{key.PadRight(KeyWidth)}{value}");

    /// <summary>Most owned slabs listed per node in the text form (the JSON lists them all).</summary>
    private const int SlabsListed = 32;

    private static string Plural(long count, string singular, string? plural = null) =>
        $"{count} {(count == 1 ? singular : plural ?? singular + "s")}";

    /// <summary>"0, 1, 4-7 (4), ...": base slab indexes, a span as its range with its span in parentheses.</summary>
    private static string DescribeSlabs(IReadOnlyList<OwnedSlabReport> slabs)
    {
        var shown = slabs.Take(SlabsListed).Select(s => s.Span == 1 ? $"{s.Index}" : $"{s.Index}-{s.Index + s.Span - 1} ({s.Span})");
        return string.Join(", ", shown) + (slabs.Count > SlabsListed ? $", ... ({slabs.Count - SlabsListed} more)" : "");
    }
}
