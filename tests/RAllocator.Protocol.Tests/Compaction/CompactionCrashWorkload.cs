using System.Buffers.Binary;
using RAllocator.Fabric;
using RAllocator.Protocol.Tests.Durability;

namespace RAllocator.Protocol.Tests.Compaction;

/// <summary>
/// One compaction (or migration) scenario: the application of <see cref="PointerTableApp"/> fills a heap with objects
/// of a few size classes and frees a random part of them, so slabs go sparse; then <see cref="WorkingNodeHeap.CompactAsync"/>
/// runs (evacuating blade 1 of 2 in the migration variant), followed by the epoch publications and agent passes that
/// drain and reclaim what it returned.
/// </summary>
/// <param name="Seed">Drives sizes, which objects are freed, and the random subset of stores a power failure keeps.</param>
/// <param name="Objects">Objects allocated before the frees (at most <see cref="PointerTableApp.Slots"/>).</param>
/// <param name="FreePercent">Share of them freed, in percent.</param>
/// <param name="Migrate">Evacuate blade 1 of 2 instead of compacting one blade.</param>
/// <param name="EmptySlabThreshold">The heap's empty-slab threshold while the application runs.</param>
/// <param name="Spans">Blades offer slabs of 1, 2 and 4 base slabs and the heap sizes its slabs adaptively; objects of
/// 100 KB, larger than a base slab, join the mix.</param>
public sealed record CompactionScenario(int Seed, int Objects, int FreePercent, bool Migrate, int EmptySlabThreshold, bool Spans = false)
{
    /// <summary>Requested sizes: 3, 4, 8 and 12 KiB classes (20, 15, 7 and 5 objects per 64 KiB slab).</summary>
    public static readonly int[] Sizes = [3000, 4096, 8000, 12288];

    /// <summary>With spans, also objects of a 112 KiB class, two per 256 KiB span.</summary>
    public static readonly int[] SpanSizes = [3000, 4096, 8000, 12288, 100_000];

    public int[] SizesInUse => Spans ? SpanSizes : Sizes;

    public override string ToString() =>
        $"{(Migrate ? "migration" : "compaction")}(seed {Seed}, {Objects} objects, {FreePercent}% freed, empty-slab threshold {EmptySlabThreshold}{(Spans ? ", spans" : "")})";
}

/// <summary>Where a crash-point run fails: nowhere, a node crash before a fabric operation, or a blade power failure at a persist.</summary>
public enum CrashKind
{
    /// <summary>No crash during the workload; the node and blades restart after it (a clean check of the end state).</summary>
    None,

    /// <summary>The node's process dies before its k-th fabric operation; the blades keep running and keep every store.</summary>
    Node,

    /// <summary>The blade being persisted loses power at the k-th persist of any blade; the node restarts with it.</summary>
    Power,
}

/// <summary>A crash point: the kind, the index k (counted from the start of compaction), and what a power failure keeps.</summary>
public sealed record CompactionCrash(CrashKind Kind, long At, LostStores Lost = LostStores.All)
{
    public static readonly CompactionCrash None = new(CrashKind.None, -1);

    public override string ToString() => Kind switch
    {
        CrashKind.None => "no crash",
        CrashKind.Node => $"node crash before operation {At}",
        _ => $"power failure at persist {At} (unpersisted stores lost: {Lost})",
    };
}

/// <summary>
/// Runs a <see cref="CompactionScenario"/> up to a <see cref="CompactionCrash"/>, recovers (the failed blade restarts on
/// what its NVM kept, the node reopens its heap and recovers by reachability from the table), and checks the
/// application's data and the heap: every referenced object has its exact content; no two references share an object;
/// every referenced object is in a slab the node owns; no slab is leaked (the node holds no slab without a reachable
/// object beyond one spare, and after every epoch passes every slab is free, in the ring, or owned by the node and held
/// by its heap); the images are consistent; new allocations overlap nothing reachable. A broken promise throws
/// <see cref="InvariantViolation"/>.
/// </summary>
internal sealed class CompactionCrashWorkload
{
    public const long RegionBytes = 2 << 20;
    // 112 KiB objects take a 256 KiB span per two: room for 80 objects even when most are of that size.
    public const long SpanRegionBytes = 8 << 20;
    public const ulong SlabSizeBytes = 64 * 1024;
    private const uint NodeId = 0;

    private readonly CompactionScenario _scenario;
    private readonly CompactionCrash _crash;
    private readonly CompactionFaults _faults;
    private readonly SimulatedNvm[] _nvms;
    private readonly EmbeddedBlade[] _blades;
    private readonly CrashSwitch _switch;
    private readonly ProtocolOptions _protocol;
    private PointerTableApp? _app;
    private bool[] _live = [];
    private CompactionReport? _report;

    private CompactionCrashWorkload(CompactionScenario scenario, CompactionCrash crash, CompactionFaults faults)
    {
        _scenario = scenario;
        _crash = crash;
        _faults = faults;
        _switch = new CrashSwitch
        {
            NodeCrashAt = crash.Kind == CrashKind.Node ? crash.At : -1,
            PowerFailureAt = crash.Kind == CrashKind.Power ? crash.At : -1,
        };
        int blades = scenario.Migrate ? 2 : 1;
        var format = scenario.Spans ? HeapModel.HeapModelRun.FormatOptions with { MaxSlabSpan = 4, SpanRingCapacity = 2 } : HeapModel.HeapModelRun.FormatOptions;
        _nvms = Enumerable.Range(0, blades).Select(_ => new SimulatedNvm(scenario.Spans ? SpanRegionBytes : RegionBytes)).ToArray();
        _blades = Enumerable.Range(0, blades).Select(b => EmbeddedBlade.Format(b, _nvms[b], SlabSizeBytes, format)).ToArray();
        for (int b = 0; b < blades; b++)
        {
            int bladeId = b;
            _nvms[b].BeforePersist = index => _switch.BeforePersist(bladeId, index);
        }

        _protocol = new ProtocolOptions
        {
            Backoff = (_, _) =>
            {
                foreach (var blade in _blades)
                {
                    blade.Agent.RunOnce();
                }

                return Task.CompletedTask;
            },
        };
    }

    /// <summary>Fabric operations of the node and persists of every blade from the start of compaction to the end of the workload.</summary>
    public static (long Operations, long Persists, CompactionReport Report) CountCrashPoints(CompactionScenario scenario, CompactionFaults? faults = null)
    {
        var run = new CompactionCrashWorkload(scenario, CompactionCrash.None, faults ?? CompactionFaults.None);
        Task.Run(run.RunAsync).GetAwaiter().GetResult();
        return (run._switch.Operations, run._switch.Persists, run._report!);
    }

    /// <summary>Runs to the crash, recovers and checks; throws <see cref="InvariantViolation"/> naming the broken promise.</summary>
    public static void CrashAndRecover(CompactionScenario scenario, CompactionCrash crash, CompactionFaults? faults = null) =>
        Task.Run(() => CrashAndRecoverAsync(scenario, crash, faults ?? CompactionFaults.None)).GetAwaiter().GetResult();

    private static async Task CrashAndRecoverAsync(CompactionScenario scenario, CompactionCrash crash, CompactionFaults faults)
    {
        var run = new CompactionCrashWorkload(scenario, crash, faults);
        try
        {
            await run.RunAsync();
        }
        catch (Exception ex) when (run._switch.Dead && ex is FabricException or SimulatedPowerFailure or RelocationFailedException)
        {
            // The crash struck; what the blades hold is what recovery gets.
        }

        run._switch.Disarm();
        await run.RecoverAndCheckAsync();
    }

    /// <summary>Fragmentation (not crashed), then compaction and the passes after it (crash points counted from here).</summary>
    private async Task RunAsync()
    {
        var heap = await OpenNodeAsync();
        _app = await PointerTableApp.CreateAsync(heap);
        var random = new Random(_scenario.Seed);
        int objects = Math.Min(_scenario.Objects, PointerTableApp.Slots);
        _live = new bool[PointerTableApp.Slots];
        for (int slot = 0; slot < objects; slot++)
        {
            await _app.AddAsync(slot, _scenario.SizesInUse[random.Next(_scenario.SizesInUse.Length)]);
            _live[slot] = true;
        }

        foreach (int slot in Enumerable.Range(0, objects).OrderBy(_ => random.Next()).Take(objects * _scenario.FreePercent / 100).ToArray())
        {
            await _app.RemoveAsync(slot);
            _live[slot] = false;
        }

        await SettleAsync(heap, rounds: 2);

        _switch.Arm();
        heap.CompactionFaults = _faults;
        var options = _scenario.Migrate ? new CompactionOptions { EvacuateBlade = 1 } : new CompactionOptions();
        _report = await heap.CompactAsync(_app.RelocateAsync, options);
        if (_scenario.Migrate && heap.OwnedSlabIndexes(1).Count > 0)
        {
            throw Violation(Invariants.HeapAgreesWithModel, $"after evacuating blade 1 the node still holds its slabs {Show(heap.OwnedSlabIndexes(1))}");
        }

        await SettleAsync(heap, rounds: 3);
    }

    private async Task<WorkingNodeHeap> OpenNodeAsync()
    {
        var clients = new List<BladeClient>();
        foreach (var blade in _blades)
        {
            clients.Add(await BladeClient.ConnectAsync(new CrashingConnection(blade.Connect(NodeId), _switch), NodeId, _protocol));
        }

        return await WorkingNodeHeap.OpenAsync(clients, HeapOptions(_scenario.EmptySlabThreshold));
    }

    private async Task SettleAsync(WorkingNodeHeap heap, int rounds)
    {
        for (int round = 0; round < rounds; round++)
        {
            await heap.PublishEpochsAsync();
            foreach (var blade in _blades)
            {
                blade.Agent.RunOnce();
            }
        }
    }

    private async Task RecoverAndCheckAsync()
    {
        // The blade that lost power restarts on what its NVM kept; the others keep running.
        for (int b = 0; b < _blades.Length; b++)
        {
            _nvms[b].BeforePersist = null;
            if ((_crash.Kind == CrashKind.Power && _switch.FailedBlade == b) || _crash.Kind == CrashKind.None)
            {
                RestartBlade(b);
            }
        }

        foreach (var blade in _blades)
        {
            CheckConsistent(blade, "after the restart");
        }

        // The node restarts (after a node crash, or because its connections died with the blade).
        WorkingNodeHeap heap;
        try
        {
            heap = await EmbeddedNode.OpenHeapAsync(_blades, NodeId, HeapOptions(0), _protocol);
        }
        catch (Exception ex)
        {
            throw Violation(Invariants.DurableOwnership, "the node could not reopen its heap", ex);
        }

        var reachable = await CheckApplicationDataAsync(heap);
        try
        {
            await heap.CompleteRecoveryAsync(reachable.Select(r => r.Ptr));
        }
        catch (Exception ex)
        {
            throw Violation(Invariants.DurableOwnership, $"CompleteRecoveryAsync refused the {reachable.Count} objects the table reaches", ex);
        }

        CheckNoUnreachableSlab(heap, reachable);
        CheckReachableAllocated(heap, reachable);
        await CheckNewAllocationsAvoidReachableAsync(heap, reachable);
        await SettleAndCheckNoLeakAsync(heap);
    }

    private void RestartBlade(int b)
    {
        try
        {
            _blades[b].Restart(region =>
            {
                var nvm = (SimulatedNvm)region;
                switch (_crash.Lost)
                {
                    case LostStores.All: nvm.CrashKeepingNone(); break;
                    case LostStores.None: nvm.CrashKeepingAll(); break;
                    default: nvm.Crash(unchecked((_scenario.Seed * 1_000_003) + (int)_crash.At)); break;
                }
            });
        }
        catch (Exception ex)
        {
            throw Violation(Invariants.ConsistentImage, $"blade {b} did not restart", ex);
        }
    }

    /// <summary>
    /// The root is a table the node owns; each slot the application had filled reaches an object in a slab the node owns,
    /// holding exactly that object's content; every other slot is empty; no two references share an object.
    /// </summary>
    private async Task<List<(RemotePtr Ptr, int Size, string What)>> CheckApplicationDataAsync(WorkingNodeHeap heap)
    {
        var table = heap.GetRoot(0);
        if (table.IsNull)
        {
            throw Violation(Invariants.ObjectDurability, "the recovered root is null; the application persisted its table as the root");
        }

        CheckOwned(heap, table, "the table");
        var slots = await PointerTableApp.ReadTableAsync(heap, table);
        var reachable = new List<(RemotePtr Ptr, int Size, string What)> { (table, PointerTableApp.ObjectSize(PointerTableApp.TableBytes), "the table") };
        for (int slot = 0; slot < PointerTableApp.Slots; slot++)
        {
            var ptr = slots[slot];
            if (!_live[slot])
            {
                if (!ptr.IsNull)
                {
                    throw Violation(Invariants.ObjectDurability, $"slot {slot} of the table holds {ptr}; the application emptied it durably before compacting");
                }

                continue;
            }

            if (ptr.IsNull)
            {
                throw Violation(Invariants.ObjectDurability, $"slot {slot} of the table is empty; it referenced a live object that compaction was to keep");
            }

            string what = $"object {slot}";
            CheckOwned(heap, ptr, what);
            int size = PointerTableApp.ObjectSize(_app!.Sizes[slot]);
            var expected = PointerTableApp.Content(slot, size);
            var actual = new byte[size];
            await heap.ReadBytesAsync(ptr, actual);
            if (!actual.AsSpan().SequenceEqual(expected))
            {
                int word = Enumerable.Range(0, size / 8).First(w => Word(actual, w * 8) != Word(expected, w * 8));
                throw Violation(Invariants.ObjectDurability,
                    $"{what} at {ptr} does not hold its content: word {word} is {Word(actual, word * 8):x16}, expected {Word(expected, word * 8):x16} " +
                    $"(checksum {(PointerTableApp.Checksum(actual.AsSpan(0, size - 8)) == Word(actual, size - 8) ? "consistent" : "broken")})");
            }

            reachable.Add((ptr, size, what));
        }

        for (int i = 0; i < reachable.Count; i++)
        {
            for (int j = i + 1; j < reachable.Count; j++)
            {
                var (a, b) = (reachable[i], reachable[j]);
                if (a.Ptr.BladeId == b.Ptr.BladeId && a.Ptr.Offset < b.Ptr.Offset + b.Size && b.Ptr.Offset < a.Ptr.Offset + a.Size)
                {
                    throw Violation(Invariants.NoDoubleAllocation, $"{a.What} at {a.Ptr} and {b.What} at {b.Ptr} share bytes");
                }
            }
        }

        return reachable;
    }

    private void CheckOwned(WorkingNodeHeap heap, RemotePtr ptr, string what)
    {
        if ((uint)ptr.BladeId >= (uint)_blades.Length)
        {
            throw Violation(Invariants.DurableOwnership, $"{what} is at {ptr}, on no blade of the node");
        }

        ulong slab = SlabIndexOf(ptr);
        if (HeadOf(heap, ptr) is null)
        {
            throw Violation(Invariants.DurableOwnership,
                $"{what} is at {ptr}, in slab {slab} of blade {ptr.BladeId}, which the node does not own after recovery (it owns {Show(heap.Recoveries[ptr.BladeId].OwnedSlabs.Select(s => s.SlabIndex))})");
        }
    }

    /// <summary>
    /// After recovery (empty slabs returned), every slab the node holds has a reachable object, except at most one spare
    /// per blade: a slab acquired for a destination whose header the crash cut off.
    /// </summary>
    private void CheckNoUnreachableSlab(WorkingNodeHeap heap, List<(RemotePtr Ptr, int Size, string What)> reachable)
    {
        for (int b = 0; b < _blades.Length; b++)
        {
            var used = reachable.Where(r => r.Ptr.BladeId == b).Select(r => HeadOf(heap, r.Ptr)!.Value).ToHashSet();
            var idle = heap.OwnedSlabIndexes(b).Where(s => !used.Contains(s)).ToList();
            int allowed = _crash.Kind == CrashKind.None ? 0 : 1;
            if (idle.Count > allowed)
            {
                throw Violation(Invariants.NoPermanentLeak, $"after recovery the node holds slabs {Show(idle)} of blade {b}, and nothing reachable is in them");
            }
        }

        if (_scenario.Migrate && _crash.Kind == CrashKind.None && heap.OwnedSlabIndexes(1).Count > 0)
        {
            throw Violation(Invariants.DurableOwnership, $"after a completed evacuation of blade 1 the restarted node owns its slabs {Show(heap.OwnedSlabIndexes(1))}");
        }
    }

    private static void CheckReachableAllocated(WorkingNodeHeap heap, List<(RemotePtr Ptr, int Size, string What)> reachable)
    {
        foreach (var (ptr, _, what) in reachable)
        {
            if (!heap.IsAllocated(ptr))
            {
                throw Violation(Invariants.HeapAgreesWithModel, $"{what} at {ptr} is reachable but not allocated after CompleteRecoveryAsync");
            }
        }
    }

    private async Task CheckNewAllocationsAvoidReachableAsync(WorkingNodeHeap heap, List<(RemotePtr Ptr, int Size, string What)> reachable)
    {
        foreach (int size in _scenario.SizesInUse.Append(PointerTableApp.TableBytes))
        {
            for (int i = 0; i < 3; i++)
            {
                var ptr = await heap.AllocateAsync(size);
                int objectSize = PointerTableApp.ObjectSize(size);
                var clash = reachable.FirstOrDefault(r => r.Ptr.BladeId == ptr.BladeId && ptr.Offset < r.Ptr.Offset + r.Size && r.Ptr.Offset < ptr.Offset + objectSize);
                if (clash.What is not null)
                {
                    throw Violation(Invariants.NoDoubleAllocation, $"after recovery the node was given {ptr}, which overlaps {clash.What} at {clash.Ptr}");
                }

                await heap.WriteAndPersistAsync(ptr, new byte[objectSize]);
            }
        }

        foreach (var (ptr, size, what) in reachable.Skip(1))
        {
            var actual = new byte[size];
            await heap.ReadBytesAsync(ptr, actual);
            if (PointerTableApp.Checksum(actual.AsSpan(0, size - 8)) != Word(actual, size - 8))
            {
                throw Violation(Invariants.NoDoubleAllocation, $"{what} at {ptr} was overwritten by a new allocation after recovery");
            }
        }
    }

    /// <summary>Epochs pass on every blade; then every slab is free, in the ring, or owned by the node and held by its heap.</summary>
    private async Task SettleAndCheckNoLeakAsync(WorkingNodeHeap heap)
    {
        for (int round = 0; round < 4; round++)
        {
            await heap.PublishEpochsAsync();
            foreach (var blade in _blades)
            {
                blade.Agent.RunOnce();
            }
        }

        for (int b = 0; b < _blades.Length; b++)
        {
            var state = CheckConsistent(_blades[b], "after recovery and every epoch passing");
            var ringed = state.Rings.SelectMany(r => r.Slots).Where(r => r.Entry.Kind == RingEntryKind.Slab).Select(r => (ulong)r.Entry.SlabIndex).ToHashSet();
            var held = heap.OwnedSlabIndexes(b).ToHashSet();
            foreach (var slab in state.Slabs)
            {
                bool explained = slab.State switch
                {
                    SlabState.Free => true,
                    SlabState.Ringed => ringed.Contains(slab.Index - slab.SpanHeadDistance),
                    SlabState.Owned => slab.Node == NodeId && held.Contains(slab.Index - slab.SpanHeadDistance),
                    _ => false,
                };
                if (!explained)
                {
                    throw Violation(Invariants.NoPermanentLeak,
                        $"after recovery and every epoch passing, slab {slab.Index} of blade {b} is {slab.State} (node {slab.Node}) and the node does not hold it");
                }
            }

            if (!state.DurablyOwnedBy(NodeId).ToHashSet().SetEquals(held))
            {
                throw Violation(Invariants.DurableOwnership, $"blade {b} records the node as owning {Show(state.DurablyOwnedBy(NodeId))}; its heap holds {Show(held)}");
            }
        }
    }

    private BladeState CheckConsistent(EmbeddedBlade blade, string when)
    {
        var state = blade.Image.Scan();
        if (!state.IsConsistent)
        {
            throw Violation(Invariants.ConsistentImage, $"blade {blade.BladeId} {when}: {string.Join("; ", state.Problems.Take(5))}");
        }

        return state;
    }

    /// <summary>The head of the slab (a span's first base slab) the node owns that holds <paramref name="ptr"/>, if any.</summary>
    private ulong? HeadOf(WorkingNodeHeap heap, RemotePtr ptr)
    {
        ulong index = SlabIndexOf(ptr);
        var owner = heap.Recoveries[ptr.BladeId].OwnedSlabs.FirstOrDefault(s => s.SlabIndex <= index && index < s.SlabIndex + s.Span);
        return owner.Span == 0 ? null : owner.SlabIndex;
    }

    private HeapOptions HeapOptions(int emptySlabThreshold) => new()
    {
        EmptySlabThreshold = emptySlabThreshold,
        SlabSizing = _scenario.Spans ? new AdaptiveSlabSizing() : new FixedSlabSizing(),
    };

    private ulong SlabIndexOf(RemotePtr ptr) => (ulong)(ptr.Offset - _blades[ptr.BladeId].Image.Geometry.DataOffset) / SlabSizeBytes;

    private static ulong Word(byte[] bytes, int offset) => BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(offset));

    private static string Show(IEnumerable<ulong> slabs) => "{" + string.Join(", ", slabs.Order()) + "}";

    private static InvariantViolation Violation(string invariant, string detail, Exception? inner = null) =>
        inner is null ? new InvariantViolation(invariant, detail) : new InvariantViolation(invariant, detail, inner);
}
