using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using RAllocator.Blade;
using RAllocator.Cli.Reporting;
using RAllocator.Embedded;
using RAllocator.Fabric;
using RAllocator.Node;
using RAllocator.Nvm;
using RAllocator.Protocol;
using RAllocator.Protocol.Layout;

namespace RAllocator.Cli.Commands;

/// <summary>
/// <c>demo</c>: one blade on a 64 MiB mapped file and two working nodes in this process, narrated step by step:
/// one-sided slab acquisition (2 round trips per slab, 0 blade calls), durable ownership, epoch-based reclamation,
/// a node restart that gets exactly its slabs back, and a final inspection.
/// </summary>
/// <remarks>
/// The demo drives the blade agent one pass at a time (<see cref="BladeAgent.RunOnce"/>) instead of running it in
/// the background, so every line it prints is deterministic and each step shows exactly what the blade CPU did.
/// </remarks>
internal static class DemoCommand
{
    private const long RegionBytes = 64L << 20;
    private const ulong SlabBytes = 1UL << 20;
    private const uint RingEntries = 16;
    private const uint MaxSpan = 4;
    private const int LargeObjectBytes = 3 << 20;
    private const int MaxReclaimRounds = 10;

    public static Command Create(CliContext cli)
    {
        var path = new Option<string?>("--path")
        {
            Description = "Blade image file to create for the demo (default: a new file in the temp directory). It must not exist.",
            HelpName = "FILE",
        };
        var keep = new Option<bool>("--keep") { Description = "Keep the image file afterwards, to look at it with 'rallocator inspect FILE'." };
        var command = new Command("demo", "Walk through RAllocator on one in-process blade and two working nodes, explaining each step.")
        {
            path, keep,
        };
        command.SetAction((parseResult, cancellationToken) => RunAsync(cli, parseResult.GetValue(path), parseResult.GetValue(keep), cancellationToken));
        return command;
    }

    private static async Task<int> RunAsync(CliContext cli, string? path, bool keep, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        string file = Path.GetFullPath(path ?? Path.Combine(Path.GetTempPath(), $"rallocator-demo-{Environment.ProcessId}-{Guid.NewGuid():N}"[..40] + ".img"));
        if (File.Exists(file) || Directory.Exists(file))
        {
            throw new CliFailureException($"--path {file} already exists; the demo formats a new file. Remove it or choose another path.");
        }

        MappedFileNvm region;
        try
        {
            region = MappedFileNvm.Create(file, RegionBytes);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new CliFailureException($"--path {file}: {ex.Message}", ex);
        }

        var o = cli.Out;
        try
        {
            o.WriteLine("RAllocator demo: one blade and two working nodes in this process, over the loopback fabric.");
            o.WriteLine("Every number below is counted (fabric counters, blade agent counters, the blade's persistent metadata), not assumed.");
            o.WriteLine();

            // 1. Format.
            var blade = EmbeddedBlade.Format(0, region, SlabBytes,
                new BladeFormatOptions { MaxNodes = 4, RingCapacity = RingEntries, MaxSlabSpan = MaxSpan, SpanRingCapacity = 1 });
            var g = blade.Image.Geometry;
            o.WriteLine($"1. Formatted {file} as a blade: {ByteSize.Format(g.RegionSizeBytes)}, {g.SlabCount} slabs of {ByteSize.Format(g.SlabSizeBytes)}, "
                + $"a ring of {g.RingCapacity} entries, {ByteSize.Format(g.MetadataBytes)} of metadata, slab 0 at offset {g.DataOffset}.");
            o.WriteLine($"   Larger slabs of 2 and {MaxSpan} contiguous base slabs come from one span ring each ({g.SpanRingCapacity} entry per ring).");
            o.WriteLine($"   NVM backend: {FormatCommand.DescribeBackend(region)}.");

            // 2. The agent fills the ring, then stays out of the way.
            blade.Agent.RunOnce();
            var state = blade.Image.Scan();
            o.WriteLine($"2. The blade agent ran one pass and filled the ring: {Ready(state)} slabs wait for one-sided acquisition.");
            o.WriteLine("   The agent is now paused: until step 5 no code runs on the blade.");
            blade.Agent.Paused = true;

            // 3. Two working nodes.
            var options = new HeapOptions { EmptySlabThreshold = 0 };
            var node1 = await EmbeddedNode.OpenHeapAsync([blade], 1, options, cancellationToken: cancellationToken).ConfigureAwait(false);
            var node2 = await EmbeddedNode.OpenHeapAsync([blade], 2, options, cancellationToken: cancellationToken).ConfigureAwait(false);
            o.WriteLine($"3. Working nodes 1 and 2 connected and registered (incarnations {node1.Recoveries[0].Incarnation} and {node2.Recoveries[0].Incarnation}).");

            // 4. Allocations: slabs come from the pre-filled ring with two round trips each and no blade call.
            o.WriteLine("4. Allocations (object sizes are rounded up to a size class; each class carves its own slabs):");
            long callsBefore = blade.Agent.HandlerCalls;
            var objects1 = await AllocateAsync(o, node1, 1, [(64, 20_000), (1024, 300), (16 * 1024, 40)], cancellationToken).ConfigureAwait(false);
            var objects2 = await AllocateAsync(o, node2, 2, [(256, 5_000), (100 * 1024, 10)], cancellationToken).ConfigureAwait(false);
            await AllocateLargeAsync(o, node1, cancellationToken).ConfigureAwait(false);
            long criticalCalls = blade.Agent.HandlerCalls - callsBefore;
            o.WriteLine($"   Blade handler calls during all these acquisitions: {criticalCalls} (CPU bypass: the agent was paused, the ring was filled beforehand).");

            // 5. The agent applies the acknowledgements: ownership is now in the blade's table.
            blade.Agent.Paused = false;
            blade.Agent.RunOnce();
            state = blade.Image.Scan();
            o.WriteLine($"5. One agent pass applied the nodes' acknowledgements: owners {Owners(state)}; "
                + $"the ring is refilled ({Ready(state)} ready). Ownership was durable before this pass too: each acknowledgement was persisted by its node.");

            // 6. Free and epoch-based reclamation.
            o.WriteLine("6. Free and epoch-based reclamation:");
            var guard = node2.EnterEpoch();
            o.WriteLine("   Node 2 enters an epoch (as if it were traversing a structure that may point into node 1's objects).");
            var before = node1.OwnedSlabIndexes(0);
            var rttBefore = node1.Blades[0].Counters.Snapshot();
            foreach (var ptr in objects1[16 * 1024])
            {
                await node1.FreeAsync(ptr, cancellationToken).ConfigureAwait(false);
            }

            var freeCost = node1.Blades[0].Counters.Snapshot().Since(rttBefore);
            ulong freed = before.Except(node1.OwnedSlabIndexes(0)).Single();
            o.WriteLine($"   Node 1 frees its {objects1[16 * 1024].Count} objects of 16 KiB: slab {freed} is empty and goes back to the blade "
                + $"({freeCost.UnsignaledPosts} posted write, {freeCost.RoundTrips} round trips).");
            blade.Agent.RunOnce();
            var slab = blade.Image.Scan().Slabs[(int)freed];
            o.WriteLine($"   The agent drains the free request: slab {freed} is {slab.State}, freed in epoch {slab.FreedEpoch}; "
                + $"it may be reused only once every live node has published an epoch after {slab.FreedEpoch}.");
            for (int round = 1; round <= 3; round++)
            {
                await node1.PublishEpochsAsync(cancellationToken).ConfigureAwait(false);
                await node2.PublishEpochsAsync(cancellationToken).ConfigureAwait(false);
                blade.Agent.RunOnce();
            }

            state = blade.Image.Scan();
            o.WriteLine($"   After 3 rounds of (both nodes publish, agent pass): {Epochs(state)}: node 2's open epoch pins it, so slab {freed} stays {state.Slabs[(int)freed].State}.");
            guard.Dispose();
            o.WriteLine("   Node 2 leaves its epoch.");
            bool reclaimed = false;
            for (int round = 1; round <= MaxReclaimRounds && !reclaimed; round++)
            {
                await node1.PublishEpochsAsync(cancellationToken).ConfigureAwait(false);
                blade.Agent.RunOnce();
                state = blade.Image.Scan();
                o.WriteLine($"   Round {round}: node 1 publishes, agent pass: {Epochs(state)} -> slab {freed} {state.Slabs[(int)freed].State}.");
                await node2.PublishEpochsAsync(cancellationToken).ConfigureAwait(false);
                blade.Agent.RunOnce();
                state = blade.Image.Scan();
                reclaimed = state.Slabs[(int)freed].State is SlabState.Free or SlabState.Ringed;
                o.WriteLine($"            node 2 publishes, agent pass: {Epochs(state)} -> slab {freed} {state.Slabs[(int)freed].State}.");
            }

            o.WriteLine(reclaimed
                ? $"   Slab {freed} was reclaimed only after both nodes had published an epoch past {slab.FreedEpoch}; it can be handed out again (least worn first)."
                : $"   Slab {freed} was not reclaimed within {MaxReclaimRounds} rounds.");

            // 7. A node restart gets exactly its slabs back, from the blade's persistent metadata.
            var greeting = new byte[64];
            Encoding.UTF8.GetBytes("hello from node 2", greeting);
            var root = objects2[256][0];
            await node2.WriteAndPersistAsync(root, greeting, cancellationToken).ConfigureAwait(false);
            await node2.SetRootAsync(root, cancellationToken: cancellationToken).ConfigureAwait(false);
            var owned2 = node2.OwnedSlabIndexes(0);
            o.WriteLine($"7. Node 2 writes \"hello from node 2\" into object {root}, persists it and makes it its root; it owns slabs {List(owned2)}.");
            o.WriteLine("   Node 2 crashes (its heap is dropped with no shutdown) and restarts with the same node id:");
            node2 = await EmbeddedNode.OpenHeapAsync([blade], 2, options, cancellationToken: cancellationToken).ConfigureAwait(false);
            var recovered = node2.Recoveries[0].OwnedSlabs.Select(s => s.SlabIndex).ToArray();
            bool same = recovered.SequenceEqual(owned2);
            o.WriteLine($"   Registration (incarnation {node2.Recoveries[0].Incarnation}) gave back slabs {List(recovered)}: "
                + (same ? "exactly the slabs it owned." : "NOT the slabs it owned."));
            var text = new byte[greeting.Length];
            await node2.ReadBytesAsync(node2.GetRoot(), text, cancellationToken).ConfigureAwait(false);
            o.WriteLine($"   Its root {node2.GetRoot()} still holds \"{Encoding.UTF8.GetString(text).TrimEnd('\0')}\".");
            var live = objects2.Values.SelectMany(v => v).ToArray();
            await node2.CompleteRecoveryAsync(live, cancellationToken).ConfigureAwait(false);
            var stats2 = node2.GetStatistics();
            o.WriteLine($"   Recovery by reachability: the {live.Length} objects node 2 can still reach stay allocated ({stats2.LiveObjects} live in {stats2.SlabsOwned} slabs); "
                + "every other object of those slabs is free again.");

            // 8. Final state.
            blade.Agent.RunOnce();
            state = blade.Image.Scan();
            var agentStats = blade.Agent.Stats;
            o.WriteLine($"8. Blade agent totals: {agentStats.HandlerCalls} passes, {agentStats.SlabsRinged} slabs ringed, {agentStats.AcksApplied} acknowledgements applied, "
                + $"{agentStats.FreesDrained} free requests drained, {agentStats.SlabsReclaimed} slabs reclaimed, {agentStats.EpochAdvances} epoch advances.");
            o.WriteLine("   The blade now (what 'rallocator inspect' shows):");
            o.WriteLine();
            ImageReportWriter.Write(o, ImageReport.Build(file, region, blade.Image, state), includeNvm: false);
            blade.Image.MarkCleanShutdown();
            o.WriteLine();
            if (!state.IsConsistent || !same || !reclaimed || criticalCalls != 0)
            {
                throw new CliFailureException("the demo did not behave as described above (see the lines marked NOT, INCONSISTENT or not reclaimed).");
            }
        }
        finally
        {
            region.Dispose();
            if (!keep)
            {
                File.Delete(file);
            }
        }

        o.WriteLine(keep
            ? $"Done in {Seconds(clock)}. Kept {file}: try 'rallocator inspect {file}' or 'rallocator check {file}'."
            : $"Done in {Seconds(clock)}. Deleted {file} (pass --keep to keep it).");
        return ExitCodes.Ok;
    }

    /// <summary>Allocates <c>count</c> objects of each size and narrates the slab acquisitions they needed.</summary>
    private static async Task<Dictionary<int, List<RemotePtr>>> AllocateAsync(
        TextWriter o, WorkingNodeHeap heap, uint node, (int Size, int Count)[] workload, CancellationToken cancellationToken)
    {
        var counters = heap.Blades[0].Counters;
        var start = counters.Snapshot();
        var statsBefore = heap.GetStatistics();
        var slabsBefore = heap.OwnedSlabIndexes(0);
        var objects = new Dictionary<int, List<RemotePtr>>();
        foreach (var (size, count) in workload)
        {
            var list = new List<RemotePtr>(count);
            for (int i = 0; i < count; i++)
            {
                list.Add(await heap.AllocateAsync(size, cancellationToken).ConfigureAwait(false));
            }

            objects[size] = list;
        }

        FabricCounterSnapshot cost = counters.Snapshot().Since(start);
        long slabs = heap.GetStatistics().SlabsAcquired - statsBefore.SlabsAcquired;
        var newSlabs = heap.OwnedSlabIndexes(0).Except(slabsBefore).ToArray();
        string what = string.Join(", ", workload.Select(w => $"{w.Count} x {ByteSize.Format((ulong)w.Size)}"
            + (SizeClasses.Sizes[SizeClasses.ClassOf(w.Size)] == w.Size ? "" : $" (class {ByteSize.Format((ulong)SizeClasses.Sizes[SizeClasses.ClassOf(w.Size)])})")));
        o.WriteLine($"   Node {node}: {what}");
        o.WriteLine($"     -> {slabs} slabs acquired (slabs {List(newSlabs)}) with {cost.RoundTrips} round trips = "
            + $"{(slabs == 0 ? "n/a" : (cost.RoundTrips / (double)slabs).ToString("0.##", CultureInfo.InvariantCulture))} per slab "
            + $"({cost.FetchAdds} FETCH_AND_ADD on the sequencer + {cost.Reads} READ of a ring entry; "
            + $"{cost.UnsignaledPosts} writes posted without waiting: announce, claim, acknowledgement and slab header per slab).");
        o.WriteLine($"     -> the other {workload.Sum(w => w.Count) - slabs} allocations touched no network at all.");
        return objects;
    }

    /// <summary>One object larger than a base slab: it needs a span, which the blade coalesced before anyone asked.</summary>
    private static async Task AllocateLargeAsync(TextWriter o, WorkingNodeHeap heap, CancellationToken cancellationToken)
    {
        var start = heap.Blades[0].Counters.Snapshot();
        var spansBefore = heap.GetStatistics().SlabsBySpanClass!;
        var slabsBefore = heap.OwnedSlabIndexes(0);
        var ptr = await heap.AllocateAsync(LargeObjectBytes, cancellationToken).ConfigureAwait(false);
        var cost = heap.Blades[0].Counters.Snapshot().Since(start);
        var spansAfter = heap.GetStatistics().SlabsBySpanClass!;
        int spanClass = Enumerable.Range(0, spansAfter.Count).First(c => spansAfter[c] > spansBefore[c]);
        ulong head = heap.OwnedSlabIndexes(0).Except(slabsBefore).Single();
        ulong span = 1UL << spanClass;
        o.WriteLine($"   Node 1: 1 x {ByteSize.Format((ulong)LargeObjectBytes)} at {ptr}: more than a base slab, so it takes a slab of {span} contiguous base slabs "
            + $"(slabs {head} to {head + span - 1}), which the blade coalesced from free neighbours before anyone asked: "
            + $"{cost.FetchAdds} FETCH_AND_ADD on that span ring's sequencer + {cost.Reads} READ, {cost.RoundTrips} round trips, as for any slab.");
    }

    private static ulong Ready(BladeState state) => state.Rings[0].Waiting;

    private static string Owners(BladeState state) => state.OwnedByNode.Count == 0
        ? "none"
        : string.Join(", ", state.OwnedByNode.OrderBy(kv => kv.Key).Select(kv => $"node {kv.Key} -> {kv.Value.Count} slabs"));

    private static string Epochs(BladeState state) =>
        $"global epoch {state.GlobalEpoch}, node 1 published {state.Nodes[1].Header.PublishedEpoch}, node 2 published {state.Nodes[2].Header.PublishedEpoch}";

    private static string List(IEnumerable<ulong> slabs) => string.Join(", ", slabs);

    private static string Seconds(Stopwatch clock) => string.Create(CultureInfo.InvariantCulture, $"{clock.Elapsed.TotalSeconds:0.0} s");
}
