using System.Buffers.Binary;

namespace RAllocator.Protocol.Tests.HeapModel;

/// <summary>Seeded bugs to plant in every agent and client a run creates (null: the correct code).</summary>
internal sealed record PlantedFaults(BladeAgentFaults? Agent = null, BladeClientFaults? Client = null)
{
    public static readonly PlantedFaults None = new();
}

/// <summary>
/// Runs one <see cref="HeapScenario"/> against the real system (one embedded blade on a 4 MiB
/// <see cref="SimulatedNvm"/>, 2 or 3 <see cref="WorkingNodeHeap"/>s over the loopback fabric) and, after every
/// command, checks it against a reference model: which node holds which slabs and objects, which slabs were
/// returned and when, which bytes and roots are durable. A broken rule throws <see cref="InvariantViolation"/>
/// naming the invariant, the step and the command.
/// </summary>
/// <remarks>
/// The loopback fabric executes every verb on the caller's thread, so each command has finished on the blade
/// before the next starts: the model needs no notion of an operation in flight (the crash-point tests cover that).
/// The model predicts what it can (which slabs a node holds, which objects are live) and judges what it cannot
/// (which slab or address the heap picks) against the invariants, so it does not depend on placement details.
/// </remarks>
internal sealed class HeapModelRun
{
    public const long RegionBytes = 4 << 20;
    public const ulong SlabSizeBytes = 64 * 1024;

    /// <summary>Bytes of an object the model writes and checks (its whole size up to this).</summary>
    private const int CheckedPrefixBytes = 64;

    /// <summary>Bytes at the start of every carved slab reserved for its header.</summary>
    private const int CarvedSlabHeaderBytes = CarvedSlab.HeaderBytes;

    private const int MaxOpenGuardsPerNode = 2;

    public static readonly BladeFormatOptions FormatOptions = new() { MaxNodes = 3, RingCapacity = 4, AckSlotsPerNode = 8, FreeSlotsPerNode = 8, NodeLeaseTicks = 1000 };

    private readonly PlantedFaults _faults;
    private readonly EmbeddedBlade _blade;
    private readonly ProtocolOptions _protocol;
    private readonly ModelNode[] _nodes;

    // Slabs returned to the blade and not acquired again since: the step of their return, and the generation
    // (ticket) they were owned under, which tells a slab still Ringed under its unapplied acknowledgement from
    // one the blade has ringed again.
    private readonly Dictionary<ulong, (int Step, ulong Generation)> _returnedAtStep = [];

    // Nodes whose lease the current agent let expire: they no longer hold reclamation back (protocol.md, epochs).
    private readonly HashSet<uint> _leaseExpired = [];
    private long _backoffPasses;
    private int _step = -1;
    private HeapCommand? _command;

    private HeapModelRun(int nodeCount, PlantedFaults faults)
    {
        _faults = faults;
        _blade = EmbeddedBlade.Format(0, new SimulatedNvm(RegionBytes), SlabSizeBytes, FormatOptions);
        StartWatchingAgent();
        _protocol = new ProtocolOptions
        {
            // Acquisitions never stall: a retry runs one agent pass, which fills the ring and drains the areas.
            Backoff = (_, _) =>
            {
                _backoffPasses++;
                _blade.Agent.RunOnce();
                return Task.CompletedTask;
            },
        };
        _nodes = Enumerable.Range(0, nodeCount).Select(i => new ModelNode((uint)i)).ToArray();
    }

    private BladeGeometry Geometry => _blade.Image.Geometry;

    /// <summary>Counts over all runs of this process, so a test can show what the scenarios exercised.</summary>
    public static RunStatistics Totals { get; } = new();

    /// <summary>Runs <paramref name="scenario"/>; throws <see cref="InvariantViolation"/> at the first broken rule.</summary>
    public static void Execute(HeapScenario scenario, PlantedFaults? faults = null) =>
        // Off any synchronization context: the loopback fabric completes synchronously, so this never blocks long.
        Task.Run(() => ExecuteAsync(scenario, faults ?? PlantedFaults.None)).GetAwaiter().GetResult();

    private static async Task ExecuteAsync(HeapScenario scenario, PlantedFaults faults)
    {
        var run = new HeapModelRun(scenario.NodeCount, faults);
        Interlocked.Increment(ref Totals.Scenarios);
        run._blade.Agent.RunOnce();
        foreach (var node in run._nodes)
        {
            await run.OpenAsync(node, expectRecovery: false);
        }

        for (int i = 0; i < scenario.Commands.Length; i++)
        {
            run._step = i;
            run._command = scenario.Commands[i];
            await run.RunCommandAsync(scenario.Commands[i]);
            await run.CheckEverythingAsync();
        }

        run._step = scenario.Commands.Length;
        run._command = null;
        await run.SettleAndCheckNoLeakAsync();
    }

    private async Task RunCommandAsync(HeapCommand command)
    {
        var node = command.Node >= 0 && command.Node < _nodes.Length ? _nodes[command.Node] : null;
        if (command.Node >= 0 && node is null)
        {
            return;
        }

        var agent = _blade.Agent;
        long agentCalls = agent.HandlerCalls;
        long backoffs = _backoffPasses;
        try
        {
            switch (command)
            {
                case HeapCommand.Allocate a when node!.Heap is not null:
                    await AllocateAsync(node, a);
                    break;
                case HeapCommand.Free f when node!.Heap is not null && node.Objects.Count > 0:
                    await FreeAsync(node, node.Objects[f.Pick % node.Objects.Count]);
                    break;
                case HeapCommand.Write w when node!.Heap is not null && node.Objects.Count > 0:
                    await WriteAsync(node, node.Objects[w.Pick % node.Objects.Count], w.Persist, w.Salt);
                    break;
                case HeapCommand.SetRoot r when node!.Heap is not null:
                    await SetRootAsync(node, node.Objects.Count == 0 ? RemotePtr.Null : node.Objects[r.Pick % node.Objects.Count].Ptr);
                    break;
                case HeapCommand.PublishEpochs when node!.Heap is not null:
                    await node.Heap.PublishEpochsAsync();
                    node.LastPublishStep = _step;
                    break;
                case HeapCommand.EnterEpoch when node!.Heap is not null && node.Guards.Count(g => g.ExitedAt is null) < MaxOpenGuardsPerNode:
                    node.Guards.Add(new GuardRecord(node.Heap.EnterEpoch(), _step));
                    break;
                case HeapCommand.ExitEpoch when node!.Heap is not null && node.Guards.Any(g => g.ExitedAt is null):
                    var oldest = node.Guards.First(g => g.ExitedAt is null);
                    oldest.Guard.Dispose();
                    oldest.ExitedAt = _step;
                    break;
                case HeapCommand.AgentPass:
                    _blade.Agent.RunOnce();
                    return;
                case HeapCommand.CrashNode when node!.Heap is not null:
                    Crash(node);
                    break;
                case HeapCommand.RestartNode:
                    Crash(node!);
                    await OpenAsync(node!, expectRecovery: true);
                    break;
                case HeapCommand.CrashBlade b:
                    await CrashBladeAsync(b.Seed);
                    return;
            }
        }
        catch (InvariantViolation)
        {
            throw;
        }
        catch (Exception ex)
        {
            throw Violation(Invariants.HeapAgreesWithModel, "the command threw unexpectedly", ex);
        }

        // Everything but an explicit agent pass or blade restart: the blade CPU ran only for the backoffs.
        if (ReferenceEquals(agent, _blade.Agent) && agent.HandlerCalls - agentCalls != _backoffPasses - backoffs)
        {
            throw Violation(Invariants.CpuBypass,
                $"the blade handler ran {agent.HandlerCalls - agentCalls} times during the command but only {_backoffPasses - backoffs} backoffs asked for a pass");
        }
    }

    private async Task AllocateAsync(ModelNode node, HeapCommand.Allocate command)
    {
        var heap = node.Heap!;
        int objectSize = SizeClasses.Sizes[SizeClasses.ClassOf(command.SizeBytes)];
        bool fits = (ulong)objectSize <= SlabSizeBytes - CarvedSlabHeaderBytes;
        for (int i = 0; i < command.Count; i++)
        {
            RemotePtr ptr;
            try
            {
                ptr = await heap.AllocateAsync(command.SizeBytes);
            }
            catch (ArgumentOutOfRangeException) when (!fits)
            {
                // Documented refusal: no slab may have been taken for it.
                ApplySlabChanges(node, maxGained: 0, maxLost: 0, "an allocation too large for a slab");
                Interlocked.Increment(ref Totals.OversizeRefused);
                return;
            }
            catch (BladeOutOfMemoryException ex)
            {
                CheckOutOfMemoryIsJustified(ex);
                ApplySlabChanges(node, maxGained: 0, maxLost: 0, "an allocation that ran out of memory");
                Interlocked.Increment(ref Totals.OutOfMemory);
                return;
            }

            if (!fits)
            {
                throw Violation(Invariants.HeapAgreesWithModel,
                    $"node {node.Id} allocated {ptr} for {command.SizeBytes} bytes (objects of {objectSize} bytes), which no {SlabSizeBytes}-byte slab can hold; the heap must refuse it");
            }

            ApplySlabChanges(node, maxGained: 1, maxLost: 0, "an allocation");
            CheckNewObject(node, ptr, objectSize);
            node.Objects.Add(new ModelObject(ptr, objectSize, SlabIndexOf(ptr)));
            Interlocked.Increment(ref Totals.Allocations);
        }
    }

    private void CheckOutOfMemoryIsJustified(BladeOutOfMemoryException ex)
    {
        // When the refill found no free slab, every slab was Owned (held, or returned and not drained), Freeing
        // (returned) or Ringed (at most one ring of them).
        long held = _nodes.Sum(n => n.Slabs.Count);
        long bound = held + _returnedAtStep.Count + Geometry.RingCapacity;
        if (bound < (long)Geometry.SlabCount)
        {
            throw Violation(Invariants.NoPermanentLeak,
                $"the blade answered out of memory ({ex.Message}) but nodes hold {held} slabs, {_returnedAtStep.Count} were returned and the ring has {Geometry.RingCapacity} entries, out of {Geometry.SlabCount}");
        }
    }

    private void CheckNewObject(ModelNode node, RemotePtr ptr, int objectSize)
    {
        ulong slab = SlabIndexOf(ptr);
        long slabStart = Geometry.SlabOffset(slab);
        if (ptr.BladeId != 0 || ptr.Offset % SizeClasses.MinSizeBytes != 0 || !node.Slabs.Contains(slab)
            || ptr.Offset < slabStart + CarvedSlabHeaderBytes || ptr.Offset + objectSize > slabStart + (long)SlabSizeBytes)
        {
            throw Violation(Invariants.NoDoubleAllocation,
                $"node {node.Id} got {ptr} ({objectSize} bytes), which is not an aligned object inside the data of a slab it holds ({Show(node.Slabs)})");
        }

        foreach (var other in _nodes)
        {
            foreach (var live in other.Objects)
            {
                if (ptr.Offset < live.Ptr.Offset + live.ObjectSize && live.Ptr.Offset < ptr.Offset + objectSize)
                {
                    throw Violation(Invariants.NoDoubleAllocation,
                        $"node {node.Id} got {ptr} ({objectSize} bytes), which overlaps {live.Ptr} ({live.ObjectSize} bytes), live on node {other.Id}");
                }
            }
        }
    }

    private async Task FreeAsync(ModelNode node, ModelObject victim)
    {
        await node.Heap!.FreeAsync(victim.Ptr);
        node.Objects.Remove(victim);
        if (node.Heap.IsAllocated(victim.Ptr))
        {
            throw Violation(Invariants.HeapAgreesWithModel, $"node {node.Id} still reports {victim.Ptr} allocated after freeing it");
        }

        var lost = ApplySlabChanges(node, maxGained: 0, maxLost: 1, "a free");
        if (lost.Count == 1 && lost[0] != victim.Slab)
        {
            throw Violation(Invariants.HeapAgreesWithModel, $"freeing {victim.Ptr} (slab {victim.Slab}) returned slab {lost[0]}");
        }

        Interlocked.Increment(ref Totals.Frees);
    }

    private async Task WriteAsync(ModelNode node, ModelObject target, bool persist, byte salt)
    {
        var bytes = Pattern(target.CheckedBytes, salt, _step);
        if (persist)
        {
            await node.Heap!.WriteAndPersistAsync(target.Ptr, bytes);
            target.Durable = bytes;
            target.Unpersisted.Clear();
        }
        else
        {
            await node.Heap!.Blades[0].Connection.WriteAsync(target.Ptr.Offset, bytes);
            target.Unpersisted.Add(bytes);
        }

        target.Visible = bytes;
    }

    private async Task SetRootAsync(ModelNode node, RemotePtr root)
    {
        await node.Heap!.SetRootAsync(root);
        node.Root = root;
    }

    private void Crash(ModelNode node)
    {
        // The process dies: its heap and its view of the blade are gone. What it posted is on the blade already
        // (the loopback fabric executes each verb before the call returns), including the epoch it last published,
        // which its guards of that time pinned: the model keeps them until the node registers again.
        node.Heap = null;
    }

    private async Task OpenAsync(ModelNode node, bool expectRecovery)
    {
        WorkingNodeHeap heap;
        try
        {
            heap = await EmbeddedNode.OpenHeapAsync([_blade], node.Id, new HeapOptions { EmptySlabThreshold = node.EmptySlabThreshold }, _protocol);
        }
        catch (Exception ex)
        {
            throw Violation(Invariants.DurableOwnership, $"node {node.Id} could not reopen its heap", ex);
        }

        if (_faults.Client is { } clientFaults)
        {
            heap.Blades[0].Faults = clientFaults;
        }

        node.Heap = heap;
        node.Guards.Clear();
        node.LastPublishStep = _step;
        _leaseExpired.Remove(node.Id);
        if (!expectRecovery)
        {
            return;
        }

        Interlocked.Increment(ref Totals.NodeRecoveries);
        var recovered = heap.Recoveries[0].OwnedSlabs.Select(s => s.SlabIndex).ToHashSet();
        if (!recovered.SetEquals(node.Slabs))
        {
            throw Violation(Invariants.DurableOwnership,
                $"node {node.Id} recovered slabs {Show(recovered)} but it owned {Show(node.Slabs)} (missing {Show(node.Slabs.Except(recovered))}, extra {Show(recovered.Except(node.Slabs))})");
        }

        if (heap.GetRoot() != node.Root)
        {
            throw Violation(Invariants.ObjectDurability, $"node {node.Id} recovered root {heap.GetRoot()} but last persisted {node.Root}");
        }

        try
        {
            await heap.CompleteRecoveryAsync(node.Objects.Select(o => o.Ptr));
        }
        catch (Exception ex)
        {
            throw Violation(Invariants.DurableOwnership, $"node {node.Id} could not complete recovery with its {node.Objects.Count} live objects", ex);
        }

        ApplySlabChanges(node, maxGained: 0, maxLost: int.MaxValue, "recovery (empty slabs beyond the threshold go back)");
    }

    private async Task CrashBladeAsync(int seed)
    {
        var wereUp = _nodes.Where(n => n.Heap is not null).ToArray();
        try
        {
            _blade.Restart(region => ((SimulatedNvm)region).Crash(seed));
        }
        catch (Exception ex)
        {
            throw Violation(Invariants.ConsistentImage, $"the blade did not restart after a power failure (Crash({seed}))", ex);
        }

        StartWatchingAgent();
        Interlocked.Increment(ref Totals.BladeCrashes);
        foreach (var node in _nodes)
        {
            // Every connection died with the blade: the nodes that were up restart too (below: new incarnation,
            // guards gone); the bytes of every object, up or down, are whatever the crash kept.
            Crash(node);
            foreach (var o in node.Objects)
            {
                CheckSurvivedPowerFailure(node, o, ReadFromRegion(o));
            }
        }

        foreach (var node in wereUp)
        {
            await OpenAsync(node, expectRecovery: true);
        }
    }

    private void CheckSurvivedPowerFailure(ModelNode node, ModelObject o, byte[] actual)
    {
        // Each 8-byte word is its persisted value, or any later unpersisted one (8-byte stores are atomic).
        if (o.Durable is { } durable)
        {
            for (int w = 0; w < actual.Length; w += 8)
            {
                ulong got = Word(actual, w);
                if (got != Word(durable, w) && !o.Unpersisted.Any(version => got == Word(version, w)))
                {
                    throw Violation(Invariants.ObjectDurability,
                        $"after the blade's power failure, word {w / 8} of {o.Ptr} on node {node.Id} is {got:x16}; it was persisted as {Word(durable, w):x16}");
                }
            }
        }

        // The image is durable again: what is there now is what the next crash keeps.
        o.Durable = actual;
        o.Visible = actual;
        o.Unpersisted.Clear();
    }

    /// <summary>Every check that holds between commands.</summary>
    private async Task CheckEverythingAsync()
    {
        var state = _blade.Image.Scan();
        if (!state.IsConsistent)
        {
            throw Violation(Invariants.ConsistentImage, string.Join("; ", state.Problems.Take(5)));
        }

        foreach (var node in _nodes)
        {
            if (node.Heap is { } heap)
            {
                var owned = heap.OwnedSlabIndexes(0);
                if (!owned.ToHashSet().SetEquals(node.Slabs))
                {
                    throw Violation(Invariants.HeapAgreesWithModel, $"node {node.Id} holds slabs {Show(owned)}, the model says {Show(node.Slabs)}");
                }

                long live = heap.GetStatistics().LiveObjects;
                if (live != node.Objects.Count || node.Objects.Any(o => !heap.IsAllocated(o.Ptr)))
                {
                    throw Violation(Invariants.HeapAgreesWithModel,
                        $"node {node.Id} has {live} live objects, the model {node.Objects.Count}; not allocated: {string.Join(", ", node.Objects.Where(o => !heap.IsAllocated(o.Ptr)).Select(o => o.Ptr))}");
                }
            }

            // Durable ownership as the blade records it: Owned, or acknowledged and not yet applied, minus returns.
            var pendingFrees = state.Nodes[(int)node.Id].PendingFrees.Select(f => (ulong)f.SlabIndex).ToHashSet();
            var durable = state.DurablyOwnedBy(node.Id).Where(s => !pendingFrees.Contains(s)).ToHashSet();
            if (!durable.SetEquals(node.Slabs))
            {
                throw Violation(Invariants.DurableOwnership,
                    $"the blade records node {node.Id} as owning {Show(durable)}; it holds {Show(node.Slabs)}");
            }

            foreach (var o in node.Objects)
            {
                var actual = node.Heap is { } h ? await ReadAsync(h, o) : ReadFromRegion(o);
                if (o.Visible is { } expected && !actual.AsSpan().SequenceEqual(expected))
                {
                    throw Violation(Invariants.NoDoubleAllocation,
                        $"{o.Ptr} on node {node.Id} reads {Convert.ToHexString(actual)}, but its owner last wrote {Convert.ToHexString(expected)}: someone else wrote into it");
                }
            }
        }

        // A returned slab is back in the free set (or the ring) only once its epoch can have passed everywhere.
        foreach (var (slabIndex, returned) in _returnedAtStep)
        {
            var slab = state.Slabs[(int)slabIndex];
            bool reclaimed = slab.State == SlabState.Free || (slab.State == SlabState.Ringed && slab.Generation != returned.Generation);
            if (reclaimed && WhyNotReusable(returned.Step) is { } why)
            {
                throw Violation(Invariants.SafeReuse, $"slab {slabIndex}, returned at step {returned.Step}, is {slab.State} again, but {why}");
            }
        }

        // Nothing on the blade is owned or freeing without a reason the model knows.
        foreach (var slab in state.Slabs)
        {
            if (slab.State is SlabState.Owned or SlabState.Freeing
                && !_nodes.Any(n => n.Slabs.Contains(slab.Index)) && !_returnedAtStep.ContainsKey(slab.Index))
            {
                throw Violation(Invariants.NoPermanentLeak,
                    $"slab {slab.Index} is {slab.State} by node {slab.Node} on the blade, but no node holds it and none returned it");
            }
        }
    }

    /// <summary>
    /// At the end: every node up, every guard closed, three rounds of publish and agent pass (enough for any
    /// freed slab's epoch to pass), then every slab must be owned by the node the model says, in the ring, or free.
    /// </summary>
    private async Task SettleAndCheckNoLeakAsync()
    {
        // Settling takes steps of its own after the last command, so the model orders its exits and publications.
        foreach (var node in _nodes.Where(n => n.Heap is null))
        {
            await OpenAsync(node, expectRecovery: true);
        }

        foreach (var guard in _nodes.SelectMany(n => n.Guards).Where(g => g.ExitedAt is null))
        {
            guard.Guard.Dispose();
            guard.ExitedAt = _step;
        }

        for (int round = 0; round < 4; round++)
        {
            _step++;
            foreach (var node in _nodes)
            {
                await node.Heap!.PublishEpochsAsync();
                node.LastPublishStep = _step;
            }

            _blade.Agent.RunOnce();
        }

        await CheckEverythingAsync();
        var state = _blade.Image.Scan();
        var ringed = state.Ring.Where(r => r.Entry.Kind == RingEntryKind.Slab).Select(r => (ulong)r.Entry.SlabIndex).ToHashSet();
        foreach (var slab in state.Slabs)
        {
            bool explained = slab.State switch
            {
                SlabState.Free => true,
                SlabState.Ringed => ringed.Contains(slab.Index),
                SlabState.Owned => _nodes.Any(n => n.Id == slab.Node && n.Slabs.Contains(slab.Index)),
                _ => false,
            };
            if (!explained)
            {
                throw Violation(Invariants.NoPermanentLeak,
                    $"after every node restarted and passed every epoch, slab {slab.Index} is still {slab.State} (node {slab.Node}, freed in epoch {slab.FreedEpoch}, global epoch {state.GlobalEpoch})");
            }
        }
    }

    /// <summary>
    /// Brings the model's slab set of <paramref name="node"/> in line with the heap's, checking every change:
    /// a gained slab is held by no other node and, if it was returned before, its epoch has passed for every node
    /// that could still reference it; a lost slab holds no live object.
    /// </summary>
    private List<ulong> ApplySlabChanges(ModelNode node, int maxGained, int maxLost, string during)
    {
        var now = node.Heap!.OwnedSlabIndexes(0);
        var gained = now.Where(s => !node.Slabs.Contains(s)).ToList();
        var lost = node.Slabs.Where(s => !now.Contains(s)).ToList();
        if (gained.Count > maxGained || lost.Count > maxLost)
        {
            throw Violation(Invariants.HeapAgreesWithModel,
                $"node {node.Id} gained slabs {Show(gained)} and lost {Show(lost)} during {during} (at most {maxGained} and {maxLost} expected)");
        }

        foreach (ulong slab in gained)
        {
            var holder = _nodes.FirstOrDefault(n => n != node && n.Slabs.Contains(slab));
            if (holder is not null)
            {
                throw Violation(Invariants.NoDoubleAllocation, $"node {node.Id} acquired slab {slab}, which node {holder.Id} holds");
            }

            if (_returnedAtStep.Remove(slab, out var returned))
            {
                if (WhyNotReusable(returned.Step) is { } why)
                {
                    throw Violation(Invariants.SafeReuse, $"node {node.Id} was handed slab {slab}, returned at step {returned.Step}, but {why}");
                }

                Interlocked.Increment(ref Totals.SlabReuses);
            }

            node.Slabs.Add(slab);
            Interlocked.Increment(ref Totals.SlabsAcquired);
        }

        var generations = lost.Count > 0 ? _blade.Image.Scan().Slabs : null;
        foreach (ulong slab in lost)
        {
            var live = node.Objects.FirstOrDefault(o => o.Slab == slab);
            if (live is not null)
            {
                throw Violation(Invariants.NoDoubleAllocation, $"node {node.Id} returned slab {slab} while {live.Ptr} in it is live");
            }

            node.Slabs.Remove(slab);
            _returnedAtStep[slab] = (_step, generations![(int)slab].Generation);
            Interlocked.Increment(ref Totals.SlabsReturned);
        }

        return lost;
    }

    /// <summary>
    /// Why a slab returned at step <paramref name="returnedAt"/> may not be reused yet, or null. Every node whose
    /// lease holds (up, or crashed and not yet expired) must have published an epoch, or registered, since the
    /// return, and that publication must not have been pinned by a guard the node entered before the return.
    /// These conditions are necessary, not sufficient: a publication carries the epoch the node read (or its
    /// oldest guard's), and the slab's drain epoch is at least the epoch of its return.
    /// </summary>
    private string? WhyNotReusable(int returnedAt)
    {
        foreach (var node in _nodes.Where(n => !_leaseExpired.Contains(n.Id)))
        {
            string state = node.Heap is null ? "crashed " : "";
            if (node.LastPublishStep <= returnedAt)
            {
                return $"{state}node {node.Id} has not published an epoch since (last at step {node.LastPublishStep})";
            }

            var pinning = node.Guards.FirstOrDefault(g => g.EnteredAt <= returnedAt && (g.ExitedAt is null || g.ExitedAt >= node.LastPublishStep));
            if (pinning is not null)
            {
                return $"{state}node {node.Id} last published at step {node.LastPublishStep} under the epoch guard it entered at step {pinning.EnteredAt}"
                    + (pinning.ExitedAt is null ? " and still holds" : $" and closed at step {pinning.ExitedAt}");
            }
        }

        return null;
    }

    private void StartWatchingAgent()
    {
        // A new agent starts every lease afresh.
        _leaseExpired.Clear();
        _blade.Agent.NodeLeaseExpired += node => _leaseExpired.Add(node);
        if (_faults.Agent is { } agentFaults)
        {
            _blade.Agent.Faults = agentFaults;
        }
    }

    private static async Task<byte[]> ReadAsync(WorkingNodeHeap heap, ModelObject o)
    {
        var bytes = new byte[o.CheckedBytes];
        await heap.ReadBytesAsync(o.Ptr, bytes);
        return bytes;
    }

    private byte[] ReadFromRegion(ModelObject o)
    {
        var bytes = new byte[o.CheckedBytes];
        _blade.Region.Read(o.Ptr.Offset, bytes);
        return bytes;
    }

    private ulong SlabIndexOf(RemotePtr ptr) => (ulong)(ptr.Offset - Geometry.DataOffset) / SlabSizeBytes;

    internal static byte[] Pattern(int length, byte salt, int step)
    {
        var bytes = new byte[length];
        for (int i = 0; i < length; i++)
        {
            bytes[i] = (byte)(salt + (i * 31) + (step * 7) + 1);
        }

        return bytes;
    }

    private static ulong Word(byte[] bytes, int offset) => BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(offset));

    private static string Show(IEnumerable<ulong> slabs) => "{" + string.Join(", ", slabs.Order()) + "}";

    private InvariantViolation Violation(string invariant, string detail, Exception? inner = null)
    {
        string where = _command is null ? $"while settling after the last command (step {_step})" : $"step {_step} ({_command})";
        return inner is null ? new InvariantViolation(invariant, $"{where}: {detail}") : new InvariantViolation(invariant, $"{where}: {detail}", inner);
    }

    private sealed class ModelNode(uint id)
    {
        public uint Id { get; } = id;

        /// <summary>Even nodes return a slab as soon as it is empty; odd ones keep one empty slab per class.</summary>
        public int EmptySlabThreshold => (int)(Id % 2);

        public WorkingNodeHeap? Heap { get; set; }

        public SortedSet<ulong> Slabs { get; } = [];

        public List<ModelObject> Objects { get; } = [];

        public RemotePtr Root { get; set; }

        public List<GuardRecord> Guards { get; } = [];

        /// <summary>The last step at which this node published an epoch or registered (-1: at the start).</summary>
        public int LastPublishStep { get; set; } = -1;
    }

    private sealed class ModelObject(RemotePtr ptr, int objectSize, ulong slab)
    {
        public RemotePtr Ptr { get; } = ptr;

        public int ObjectSize { get; } = objectSize;

        public ulong Slab { get; } = slab;

        public int CheckedBytes => Math.Min(ObjectSize, CheckedPrefixBytes);

        /// <summary>The bytes last persisted, or null if unknown (never written since the last blade restart).</summary>
        public byte[]? Durable { get; set; }

        /// <summary>The bytes last written, persisted or not, or null if unknown.</summary>
        public byte[]? Visible { get; set; }

        /// <summary>
        /// Every version written since the last persist: a write-back cache may have evicted any of them before the
        /// power failure, so each 8-byte word may come back as any one of these (found by the model with a seed
        /// that wrote twice without persisting: the first version survived, the second did not).
        /// </summary>
        public List<byte[]> Unpersisted { get; } = [];
    }

    private sealed class GuardRecord(EpochGuard guard, int enteredAt)
    {
        public EpochGuard Guard { get; } = guard;

        public int EnteredAt { get; } = enteredAt;

        public int? ExitedAt { get; set; }
    }
}

/// <summary>What the model runs exercised (fields, for Interlocked).</summary>
internal sealed class RunStatistics
{
    public long Scenarios;
    public long Allocations;
    public long Frees;
    public long SlabsAcquired;
    public long SlabsReturned;
    public long SlabReuses;
    public long OutOfMemory;
    public long OversizeRefused;
    public long NodeRecoveries;
    public long BladeCrashes;

    public override string ToString() =>
        $"{Scenarios} scenarios: {Allocations} allocations, {Frees} frees, {SlabsAcquired} slabs acquired, {SlabsReturned} returned, "
        + $"{SlabReuses} reused, {OutOfMemory} out-of-memory answers, {OversizeRefused} oversize refusals, {NodeRecoveries} node recoveries, {BladeCrashes} blade crashes";
}
