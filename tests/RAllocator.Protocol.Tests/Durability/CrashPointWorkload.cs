using System.Buffers.Binary;

namespace RAllocator.Protocol.Tests.Durability;

/// <summary>How a crash point's power failure treats the stores that were not persisted yet.</summary>
public enum LostStores
{
    /// <summary>Every unpersisted store is lost (<see cref="SimulatedNvm.CrashKeepingNone"/>).</summary>
    All,

    /// <summary>Every unpersisted store happens to reach NVM (<see cref="SimulatedNvm.CrashKeepingAll"/>).</summary>
    None,

    /// <summary>Each unpersisted store survives with probability 1/2 (<see cref="SimulatedNvm.Crash(int)"/>).</summary>
    RandomSubset,
}

/// <summary>
/// A scripted workload of two working nodes on one blade, run until the blade's power fails at persist point
/// <c>k</c> (<see cref="SimulatedNvm.BeforePersist"/> throws <see cref="SimulatedPowerFailure"/>), then
/// recovered: the blade restarts on what its NVM kept, both nodes reopen their heaps, and every promise of
/// spec/durability.md is checked against a journal of what had completed before the failure.
/// </summary>
/// <remarks>
/// The journal is updated only after a call returns, so at the failure it holds exactly what had completed;
/// the call that was interrupted is remembered as in flight, and the contract allows it either outcome.
/// Node 0 returns a slab as soon as it is empty (threshold 0); node 1 keeps one empty slab per class.
/// </remarks>
internal sealed class CrashPointWorkload
{
    // 2 MiB (about 30 slabs of 64 KiB) is room enough for the workload's 16 slabs, and half the cost per crash
    // point of the model test's 4 MiB: every point formats a fresh region and restarts the blade on it.
    public const long RegionBytes = 2 << 20;
    public const ulong SlabSizeBytes = 64 * 1024;
    private const int NodeCount = 2;

    private readonly SimulatedNvm _nvm;
    private readonly EmbeddedBlade _blade;
    private readonly ProtocolOptions _protocol;
    private readonly NodeJournal[] _nodes;
    private readonly PlantedCrashFaults _faults;
    private InFlight? _inFlight;

    private CrashPointWorkload(PlantedCrashFaults faults)
    {
        _faults = faults;
        _nvm = new SimulatedNvm(RegionBytes);
        _blade = EmbeddedBlade.Format(0, _nvm, SlabSizeBytes, HeapModel.HeapModelRun.FormatOptions);
        _protocol = new ProtocolOptions
        {
            Backoff = (_, _) =>
            {
                _blade.Agent.RunOnce();
                return Task.CompletedTask;
            },
        };
        _nodes = Enumerable.Range(0, NodeCount).Select(i => new NodeJournal((uint)i)).ToArray();
        PlantFaults();
    }

    /// <summary>Persist points of the whole workload when no failure interrupts it.</summary>
    public static int CountPersistPoints()
    {
        var run = new CrashPointWorkload(PlantedCrashFaults.None);
        long start = run._nvm.PersistCount;
        Task.Run(run.RunScriptAsync).GetAwaiter().GetResult();
        return (int)(run._nvm.PersistCount - start);
    }

    /// <summary>
    /// Runs the workload with a power failure before persist point <paramref name="k"/> (counted from the end of
    /// format; <paramref name="k"/> past the last point fails after the workload), recovers and checks.
    /// Throws <see cref="InvariantViolation"/> naming the broken promise.
    /// </summary>
    public static void CrashAndRecover(int k, LostStores lost, int seed, PlantedCrashFaults? faults = null) =>
        Task.Run(() => CrashAndRecoverAsync(k, lost, seed, faults ?? PlantedCrashFaults.None)).GetAwaiter().GetResult();

    private static async Task CrashAndRecoverAsync(int k, LostStores lost, int seed, PlantedCrashFaults faults)
    {
        var run = new CrashPointWorkload(faults);
        long target = run._nvm.PersistCount + k;
        run._nvm.BeforePersist = index =>
        {
            if (index == target)
            {
                throw new SimulatedPowerFailure(index);
            }
        };

        try
        {
            await run.RunScriptAsync();
            run._inFlight = null;
        }
        catch (SimulatedPowerFailure)
        {
            // The journal holds what completed; _inFlight is the call the failure interrupted.
        }

        run._nvm.BeforePersist = null;
        await run.RecoverAndCheckAsync(lost, seed);
    }

    /// <summary>
    /// The scripted workload: registration, allocations in several classes (one-object slabs among them, more
    /// acquisitions than the ring holds so refills run inside backoffs), persisted values, roots, frees that
    /// return slabs, epoch publications and agent passes that drain, reclaim and refill.
    /// </summary>
    private async Task RunScriptAsync()
    {
        await OpenAsync(0);
        await OpenAsync(1);
        await AgentPassAsync();

        await AllocateAsync(0, "a", 64);
        await WriteAndPersistAsync(0, "a", 1);
        await SetRootAsync(0, "a");
        await AllocateAsync(0, "b", 40_000);
        await WriteAndPersistAsync(0, "b", 2);
        await AllocateAsync(1, "c", 100);
        await WriteAndPersistAsync(1, "c", 3);
        await SetRootAsync(1, "c");
        for (int i = 0; i < 3; i++)
        {
            await AllocateAsync(0, $"d{i}", 2000);
            await WriteAndPersistAsync(0, $"d{i}", (byte)(10 + i));
        }

        await FreeAsync(0, "b");
        for (int round = 0; round < 3; round++)
        {
            await PublishAsync(0);
            await PublishAsync(1);
            await AgentPassAsync();
        }

        for (int i = 0; i < 6; i++)
        {
            await AllocateAsync(0, $"e{i}", 45_000);
            await WriteAndPersistAsync(0, $"e{i}", (byte)(20 + i));
        }

        await SetRootAsync(0, "e5");
        await AllocateAsync(1, "f0", 50_000);
        await WriteAndPersistAsync(1, "f0", 30);
        await FreeAsync(0, "e0");
        await FreeAsync(0, "e2");
        await AllocateAsync(1, "f1", 50_000);
        await WriteAndPersistAsync(1, "f1", 31);
        await AgentPassAsync();
        await FreeAsync(0, "e4");
        await FreeAsync(0, "a");
        await FreeAsync(1, "f0");
        await SetRootAsync(1, "f1");
        await WriteAndPersistAsync(0, "d1", 40);
        await PublishAsync(0);
        await PublishAsync(1);
        await AgentPassAsync();
    }

    private async Task OpenAsync(int node)
    {
        _inFlight = new InFlight(InFlightKind.Register, node);
        _nodes[node].Heap = await EmbeddedNode.OpenHeapAsync([_blade], (uint)node, HeapOptionsFor(node), _protocol);
        PlantFaults();
        _inFlight = null;
    }

    private async Task AllocateAsync(int node, string name, int sizeBytes)
    {
        var journal = _nodes[node];
        _inFlight = new InFlight(InFlightKind.Allocate, node);
        var ptr = await journal.Heap!.AllocateAsync(sizeBytes);
        journal.Objects[name] = new JournalObject(name, ptr, SlabIndexOf(ptr), SizeClasses.Sizes[SizeClasses.ClassOf(sizeBytes)]);
        journal.Slabs = [.. journal.Heap.OwnedSlabIndexes(0)];
        _inFlight = null;
    }

    private async Task WriteAndPersistAsync(int node, string name, byte salt)
    {
        var journal = _nodes[node];
        var o = journal.Objects[name];
        var value = HeapModel.HeapModelRun.Pattern(o.CheckedBytes, salt, step: 0);
        _inFlight = new InFlight(InFlightKind.WriteAndPersist, node, o, value);
        await journal.Heap!.WriteAndPersistAsync(o.Ptr, value);
        o.Persisted = value;
        _inFlight = null;
    }

    private async Task SetRootAsync(int node, string name)
    {
        var journal = _nodes[node];
        var root = journal.Objects[name].Ptr;
        _inFlight = new InFlight(InFlightKind.SetRoot, node, Root: root);
        await journal.Heap!.SetRootAsync(root);
        journal.Root = root;
        _inFlight = null;
    }

    private async Task FreeAsync(int node, string name)
    {
        var journal = _nodes[node];
        var o = journal.Objects[name];
        _inFlight = new InFlight(InFlightKind.Free, node, o);
        await journal.Heap!.FreeAsync(o.Ptr);
        journal.Objects.Remove(name);
        journal.Slabs = [.. journal.Heap.OwnedSlabIndexes(0)];
        _inFlight = null;
    }

    private async Task PublishAsync(int node)
    {
        _inFlight = new InFlight(InFlightKind.Publish, node);
        await _nodes[node].Heap!.PublishEpochsAsync();
        _inFlight = null;
    }

    private Task AgentPassAsync()
    {
        _inFlight = new InFlight(InFlightKind.AgentPass, -1);
        _blade.Agent.RunOnce();
        _inFlight = null;
        return Task.CompletedTask;
    }

    /// <summary>Power failure, blade restart, node restarts, then every promise of spec/durability.md.</summary>
    private async Task RecoverAndCheckAsync(LostStores lost, int seed)
    {
        try
        {
            _blade.Restart(region =>
            {
                var nvm = (SimulatedNvm)region;
                switch (lost)
                {
                    case LostStores.All: nvm.CrashKeepingNone(); break;
                    case LostStores.None: nvm.CrashKeepingAll(); break;
                    default: nvm.Crash(seed); break;
                }
            });
        }
        catch (Exception ex)
        {
            throw Violation(Invariants.ConsistentImage, "the blade did not restart", ex);
        }

        PlantFaults();
        var state = _blade.Image.Scan();
        if (!state.IsConsistent)
        {
            throw Violation(Invariants.ConsistentImage, string.Join("; ", state.Problems.Take(5)));
        }

        var recovered = new WorkingNodeHeap[NodeCount];
        for (int n = 0; n < NodeCount; n++)
        {
            recovered[n] = await ReopenAndCheckNodeAsync(_nodes[n]);
        }

        var both = recovered[0].OwnedSlabIndexes(0).Intersect(recovered[1].OwnedSlabIndexes(0)).ToList();
        if (both.Count > 0)
        {
            throw Violation(Invariants.NoDoubleAllocation, $"both nodes recovered slabs {string.Join(", ", both)}");
        }

        await CheckNewAllocationsAvoidLiveObjectsAsync(recovered);
        await SettleAndCheckNoLeakAsync(recovered);
    }

    private async Task<WorkingNodeHeap> ReopenAndCheckNodeAsync(NodeJournal journal)
    {
        WorkingNodeHeap heap;
        try
        {
            heap = await EmbeddedNode.OpenHeapAsync([_blade], journal.Id, HeapOptionsFor((int)journal.Id), _protocol);
        }
        catch (Exception ex)
        {
            throw Violation(Invariants.DurableOwnership, $"node {journal.Id} could not reopen its heap", ex);
        }

        var inFlight = _inFlight is { } f && f.Node == journal.Id ? f : null;

        // Exactly the slabs whose acknowledgement was persisted and not returned; the in-flight call's slab either way.
        var got = heap.Recoveries[0].OwnedSlabs.Select(s => s.SlabIndex).ToHashSet();
        var had = journal.Slabs;
        bool ownershipHolds = inFlight?.Kind switch
        {
            InFlightKind.Allocate => had.IsSubsetOf(got) && got.Except(had).Count() <= 1,
            InFlightKind.Free => got.IsSubsetOf(had) && had.Except(got).All(s => s == inFlight.Object!.Slab),
            _ => got.SetEquals(had),
        };
        if (!ownershipHolds)
        {
            throw Violation(Invariants.DurableOwnership,
                $"node {journal.Id} recovered slabs {Show(got)}; it had {Show(had)} when the power failed{(inFlight is null ? "" : $" during {inFlight.Kind}")}");
        }

        // The last persisted root; the in-flight one either way.
        var root = heap.GetRoot();
        if (root != journal.Root && !(inFlight is { Kind: InFlightKind.SetRoot } && root == inFlight.Root))
        {
            throw Violation(Invariants.ObjectDurability, $"node {journal.Id} recovered root {root}; it last persisted {journal.Root}");
        }

        // Recovery by reachability: the objects the application can reach (the journal's; not one being freed).
        var live = journal.Objects.Values.Where(o => !(inFlight is { Kind: InFlightKind.Free } && inFlight.Object == o)).ToList();
        try
        {
            await heap.CompleteRecoveryAsync(live.Select(o => o.Ptr));
        }
        catch (Exception ex)
        {
            throw Violation(Invariants.DurableOwnership, $"node {journal.Id} could not complete recovery with its {live.Count} live objects", ex);
        }

        foreach (var o in live)
        {
            var actual = new byte[o.CheckedBytes];
            await heap.ReadBytesAsync(o.Ptr, actual);
            bool writeInFlight = inFlight is { Kind: InFlightKind.WriteAndPersist } && inFlight.Object == o;
            CheckValue(journal, o, actual, writeInFlight ? inFlight!.Value : null);
            if (o.Persisted is not null || writeInFlight)
            {
                // After the restart the image is durable: what the object holds now is its persisted value.
                o.Persisted = actual;
            }
        }

        journal.Objects.Clear();
        foreach (var o in live)
        {
            journal.Objects[o.Name] = o;
        }

        journal.Heap = heap;
        return heap;
    }

    /// <summary>Every word whose WriteAndPersistAsync returned holds its value; a write in flight may have landed or not, word by word.</summary>
    private void CheckValue(NodeJournal journal, JournalObject o, byte[] actual, byte[]? inFlightValue)
    {
        if (o.Persisted is not { } persisted)
        {
            return;
        }

        for (int w = 0; w < actual.Length; w += 8)
        {
            ulong got = Word(actual, w);
            if (got != Word(persisted, w) && (inFlightValue is null || got != Word(inFlightValue, w)))
            {
                throw Violation(Invariants.ObjectDurability,
                    $"word {w / 8} of {o.Name} at {o.Ptr} (node {journal.Id}) is {got:x16}; its persisted value is {Word(persisted, w):x16}");
            }
        }
    }

    /// <summary>After recovery both nodes allocate again: nothing they get may overlap an object still live.</summary>
    private async Task CheckNewAllocationsAvoidLiveObjectsAsync(WorkingNodeHeap[] heaps)
    {
        foreach (int size in new[] { 64, 2000, 45_000, 100 })
        {
            for (int n = 0; n < NodeCount; n++)
            {
                var ptr = await heaps[n].AllocateAsync(size);
                int objectSize = SizeClasses.Sizes[SizeClasses.ClassOf(size)];
                var clash = _nodes.SelectMany(j => j.Objects.Values)
                    .FirstOrDefault(o => ptr.Offset < o.Ptr.Offset + o.ObjectSize && o.Ptr.Offset < ptr.Offset + objectSize);
                if (clash is not null)
                {
                    throw Violation(Invariants.NoDoubleAllocation, $"after recovery node {n} was given {ptr}, which overlaps live object {clash.Name} at {clash.Ptr}");
                }

                var name = $"new{size}";
                var o = new JournalObject(name, ptr, SlabIndexOf(ptr), objectSize);
                var value = HeapModel.HeapModelRun.Pattern(o.CheckedBytes, 99, step: n);
                await heaps[n].WriteAndPersistAsync(ptr, value);
                o.Persisted = value;
                _nodes[n].Objects[name] = o;
            }
        }

        for (int n = 0; n < NodeCount; n++)
        {
            foreach (var o in _nodes[n].Objects.Values)
            {
                var actual = new byte[o.CheckedBytes];
                await heaps[n].ReadBytesAsync(o.Ptr, actual);
                CheckValue(_nodes[n], o, actual, null);
            }
        }
    }

    /// <summary>Epochs pass everywhere; then every slab is free, in the ring, or owned by the node that holds it.</summary>
    private async Task SettleAndCheckNoLeakAsync(WorkingNodeHeap[] heaps)
    {
        for (int round = 0; round < 4; round++)
        {
            foreach (var heap in heaps)
            {
                await heap.PublishEpochsAsync();
            }

            _blade.Agent.RunOnce();
        }

        var state = _blade.Image.Scan();
        if (!state.IsConsistent)
        {
            throw Violation(Invariants.ConsistentImage, string.Join("; ", state.Problems.Take(5)));
        }

        var ringed = state.Ring.Where(r => r.Entry.Kind == RingEntryKind.Slab).Select(r => (ulong)r.Entry.SlabIndex).ToHashSet();
        var held = heaps.Select(h => h.OwnedSlabIndexes(0).ToHashSet()).ToArray();
        foreach (var slab in state.Slabs)
        {
            bool explained = slab.State switch
            {
                SlabState.Free => true,
                SlabState.Ringed => ringed.Contains(slab.Index),
                SlabState.Owned => slab.Node < NodeCount && held[slab.Node].Contains(slab.Index),
                _ => false,
            };
            if (!explained)
            {
                throw Violation(Invariants.NoPermanentLeak,
                    $"after recovery and every epoch passing, slab {slab.Index} is {slab.State} (node {slab.Node}) and no node holds it");
            }
        }

        for (uint n = 0; n < NodeCount; n++)
        {
            if (!state.DurablyOwnedBy(n).ToHashSet().SetEquals(held[n]))
            {
                throw Violation(Invariants.DurableOwnership,
                    $"the blade records node {n} as owning {Show(state.DurablyOwnedBy(n))}; its heap holds {Show(held[n])}");
            }
        }
    }

    private void PlantFaults()
    {
        if (_faults.Client is { } client)
        {
            foreach (var heap in _nodes.Select(n => n.Heap).OfType<WorkingNodeHeap>())
            {
                heap.Blades[0].Faults = client;
            }
        }

        if (_faults.Image is { } image)
        {
            _blade.Image.Faults = image;
        }
    }

    private static HeapOptions HeapOptionsFor(int node) => new() { EmptySlabThreshold = node };

    private ulong SlabIndexOf(RemotePtr ptr) => (ulong)(ptr.Offset - _blade.Image.Geometry.DataOffset) / SlabSizeBytes;

    private static ulong Word(byte[] bytes, int offset) => BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(offset));

    private static string Show(IEnumerable<ulong> slabs) => "{" + string.Join(", ", slabs.Order()) + "}";

    private InvariantViolation Violation(string invariant, string detail, Exception? inner = null)
    {
        string where = _inFlight is null ? "power failed after the workload" : $"power failed during {_inFlight.Kind} on node {_inFlight.Node}";
        return inner is null ? new InvariantViolation(invariant, $"{where}: {detail}") : new InvariantViolation(invariant, $"{where}: {detail}", inner);
    }

    private enum InFlightKind
    {
        Register,
        Allocate,
        WriteAndPersist,
        SetRoot,
        Free,
        Publish,
        AgentPass,
    }

    private sealed record InFlight(InFlightKind Kind, int Node, JournalObject? Object = null, byte[]? Value = null, RemotePtr Root = default);

    private sealed class NodeJournal(uint id)
    {
        public uint Id { get; } = id;

        public WorkingNodeHeap? Heap { get; set; }

        /// <summary>The slabs the node held after its last completed call.</summary>
        public HashSet<ulong> Slabs { get; set; } = [];

        public Dictionary<string, JournalObject> Objects { get; } = [];

        public RemotePtr Root { get; set; }
    }

    private sealed class JournalObject(string name, RemotePtr ptr, ulong slab, int objectSize)
    {
        public string Name { get; } = name;

        public RemotePtr Ptr { get; } = ptr;

        public ulong Slab { get; } = slab;

        public int ObjectSize { get; } = objectSize;

        public int CheckedBytes => Math.Min(ObjectSize, 64);

        /// <summary>The value whose WriteAndPersistAsync returned, or null if none did.</summary>
        public byte[]? Persisted { get; set; }
    }
}

/// <summary>Seeded bugs for the crash-point checks (null: the correct code).</summary>
internal sealed record PlantedCrashFaults(BladeClientFaults? Client = null, BladeMetadataFaults? Image = null)
{
    public static readonly PlantedCrashFaults None = new();
}
