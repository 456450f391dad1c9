using System.Buffers.Binary;
using Microsoft.Coyote.Random;
using Microsoft.Coyote.Runtime;
using RAllocator.Fabric.Loopback;

namespace RAllocator.Coyote.Tests.Simulation;

/// <summary>What one compaction iteration runs (every bound here, so iterations stay short).</summary>
internal sealed record CompactionScenario
{
    /// <summary>Objects the application allocates before fragmenting (at most <see cref="CompactionCluster.Slots"/>).</summary>
    public int Objects { get; init; } = 14;

    /// <summary>Of which this many percent are freed, so slabs go sparse.</summary>
    public int FreePercent { get; init; } = 60;

    /// <summary>Requested sizes: 5 and 3 objects per 64 KiB slab, so few objects make sparse slabs.</summary>
    public IReadOnlyList<int> ObjectSizes { get; init; } = [20_000, 12_288];

    /// <summary>Allocations, frees and epoch publications of the worker task (on objects of its own, in the same classes).</summary>
    public int WorkerOperations { get; init; } = 4;

    /// <summary>Rounds of the reader: under an epoch guard, take an application object's current pointer and read it across agent passes.</summary>
    public int ReaderRounds { get; init; } = 2;

    /// <summary>Evacuate blade 1 of 2 instead of compacting one blade.</summary>
    public bool Migrate { get; init; }

    /// <summary>Simulated NVM per blade: 12 slabs of 64 KiB after the metadata, few enough that returned slabs are soon reused.</summary>
    public long RegionBytes { get; init; } = (24 + (12 * 64)) * 1024;

    public int MaxAgentPasses { get; init; } = 400;

    /// <summary>Seeded compaction bugs; None for the real code.</summary>
    public CompactionFaults Faults { get; init; } = CompactionFaults.None;
}

/// <summary>
/// One Coyote iteration of compaction under concurrency: an application keeps a table of pointers to its objects
/// (<see cref="Slots"/> slots, the table itself a heap object) on one node; it fragments the heap, then compacts it (or
/// evacuates blade 1) while, on other tasks, a worker allocates, writes and frees objects of its own in the same size
/// classes, a reader reads the application's objects under epoch guards held across agent passes, and the blade agents
/// run. Every verb is a scheduling point. Checked: the <see cref="AllocatorOracle"/> invariants at every step (no slab or
/// object held twice, safe reuse of returned slabs under guards) with the relocation callback reporting each move as a
/// free of the old object and an allocation of the new; after the run, every live object is reachable exactly once and
/// holds its content; after a restart of the node, durable ownership and the content again; after everything is freed
/// and returned, no permanent leak.
/// </summary>
internal sealed class CompactionCluster
{
    public const int Slots = 16;
    private const uint Node = 0;
    private const int TableBytes = Slots * 8;
    private const int ContentBytes = 64;

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<long, byte[]> s_formattedImages = new();

    private readonly CompactionScenario _scenario;
    private readonly CompactionStats _stats;
    private readonly EmbeddedBlade[] _blades;
    private readonly AllocatorOracle[] _oracles;
    private readonly Generator _random = Generator.Create();
    private readonly ProtocolOptions _protocol;
    private readonly RemotePtr[] _objects = new RemotePtr[Slots];
    private readonly List<RemotePtr> _workerObjects = [];
    private RemotePtr _table;
    private WorkingNodeHeap? _heap;
    private int _life;
    private bool _agentRunning;
    private bool _stopAgent;
    private bool _sourcesChosen;
    private bool _compactionDone;
    private long _passes;

    private CompactionCluster(CompactionScenario scenario, CompactionStats stats)
    {
        _scenario = scenario;
        _stats = stats;
        int bladeCount = scenario.Migrate ? 2 : 1;
        var image = s_formattedImages.GetOrAdd(scenario.RegionBytes, bytes =>
        {
            using var region = new SimulatedNvm(bytes);
            BladeImage.Format(region, BladeGeometry.MinSlabSizeBytes,
                new BladeFormatOptions { MaxNodes = 2, RingCapacity = 4, AckSlotsPerNode = 4, FreeSlotsPerNode = 4, NodeLeaseTicks = 100_000 }, bladeUid: 1);
            return region.DurableImageCopy();
        });
        _blades = Enumerable.Range(0, bladeCount)
            .Select(b => EmbeddedBlade.Open(b, SimulatedNvm.FromDurableImage(image), new LoopbackOptions { YieldAtEachVerb = false }))
            .ToArray();
        _oracles = _blades.Select(b => new AllocatorOracle(1, stats.Cluster, () => Describe(b.BladeId))).ToArray();
        _protocol = new ProtocolOptions { RingReadRetryLimit = 64, AreaFullRetryLimit = 64, Backoff = BackoffAsync };
        foreach (var blade in _blades)
        {
            blade.Agent.RunOnce();
        }
    }

    /// <summary>The body of one Coyote iteration.</summary>
    public static async Task RunAsync(CompactionScenario scenario, CompactionStats stats)
    {
        stats.Cluster.Iterations++;
        var cluster = new CompactionCluster(scenario, stats);
        await cluster.FragmentAsync();
        await cluster.CompactConcurrentlyAsync();
        await cluster.CheckReachableExactlyOnceAsync(cluster._heap!, "after compaction");
        await cluster.RestartAndCheckAsync();
        await cluster.ReturnEverythingAndCheckNoLeakAsync();
        stats.Cluster.CompletedIterations++;
    }

    private WorkingNodeHeap Heap => _heap!;

    private AllocatorOracle OracleOf(RemotePtr ptr) => _oracles[ptr.BladeId];

    private async Task<WorkingNodeHeap> OpenAsync()
    {
        int life = ++_life;
        var clients = new List<BladeClient>();
        foreach (var blade in _blades)
        {
            var connection = new ObservedConnection(blade.Connect(Node), blade.Image.Geometry, _oracles[blade.BladeId], Node, life, BeforeVerb, () => { });
            var client = await BladeClient.ConnectAsync(connection, Node, _protocol);
            clients.Add(client);
        }

        var heap = await WorkingNodeHeap.OpenAsync(clients, new HeapOptions { EmptySlabThreshold = 0 });
        for (int b = 0; b < _blades.Length; b++)
        {
            _oracles[b].NodeOpened(Node, life, heap.Recoveries[b].OwnedSlabs.ToDictionary(s => s.SlabIndex, s => s.Span), bladeLifeAtConnect: 0, stillAlive: true);
        }

        heap.CompactionFaults = _scenario.Faults;
        return heap;
    }

    private static void BeforeVerb() => SchedulingPoint.Interleave();

    /// <summary>While the agent task runs, a retry is a scheduling point; before and after, it runs the passes itself.</summary>
    private Task BackoffAsync(int attempt, CancellationToken cancellationToken)
    {
        if (_agentRunning)
        {
            SchedulingPoint.Interleave();
        }
        else
        {
            RunPasses(1);
        }

        return Task.CompletedTask;
    }

    private void RunPasses(int passes)
    {
        for (int i = 0; i < passes; i++)
        {
            foreach (var blade in _blades)
            {
                blade.Agent.RunOnce();
            }
        }
    }

    /// <summary>The application's set-up, one task: a table, objects in it, then a Coyote-chosen part of them freed.</summary>
    private async Task FragmentAsync()
    {
        _heap = await OpenAsync();
        await Heap.CompleteRecoveryAsync([]);
        _table = await AllocateAsync(TableBytes);
        await Heap.WriteAndPersistAsync(_table, new byte[TableBytes]);
        await Heap.SetRootAsync(_table);
        for (int slot = 0; slot < _scenario.Objects; slot++)
        {
            int size = _scenario.ObjectSizes[_random.NextInteger(_scenario.ObjectSizes.Count)];
            var ptr = await AllocateAsync(size);
            await Heap.WriteAndPersistAsync(ptr, Content(slot));
            await WriteSlotAsync(slot, ptr);
            _objects[slot] = ptr;
        }

        var order = Enumerable.Range(0, _scenario.Objects).ToList();
        for (int freed = 0; freed < _scenario.Objects * _scenario.FreePercent / 100; freed++)
        {
            int pick = order[_random.NextInteger(order.Count)];
            order.Remove(pick);
            await WriteSlotAsync(pick, RemotePtr.Null);
            OracleOf(_objects[pick]).ObjectFreeing(Node, _objects[pick]);
            await Heap.FreeAsync(_objects[pick]);
            _objects[pick] = RemotePtr.Null;
        }

        await Heap.PublishEpochsAsync();
        RunPasses(2);
    }

    /// <summary>Compaction, a worker, a reader and the agents, concurrently.</summary>
    private async Task CompactConcurrentlyAsync()
    {
        _agentRunning = true;
        var agent = Task.Run(AgentLoop);
        var options = _scenario.Migrate ? new CompactionOptions { EvacuateBlade = 1 } : new CompactionOptions();
        var compaction = Task.Run(async () =>
        {
            var report = await Heap.CompactAsync(RelocateAsync, options, new SourcesChosen(() => _sourcesChosen = true));
            _compactionDone = true;
            _stats.ObjectsMoved += report.ObjectsMoved;
            _stats.SlabsReturned += report.SlabsReturned;
            _stats.SlabsAdded += report.SlabsAdded;
        });
        var worker = Task.Run(WorkerAsync);
        var reader = Task.Run(ReaderAsync);
        await Task.WhenAll(compaction, worker, reader);
        _stopAgent = true;
        await agent;
        _agentRunning = false;

        if (_scenario.Migrate)
        {
            var left = Heap.OwnedSlabIndexes(1);
            _oracles[1].Check(left.Count == 0 || _workerObjects.Any(p => p.BladeId == 1), Invariant.ReachableOnce,
                $"after evacuating blade 1 the node still holds its slabs [{string.Join(", ", left)}].");
        }
    }

    private void AgentLoop()
    {
        for (int pass = 0; pass < _scenario.MaxAgentPasses && !_stopAgent; pass++)
        {
            RunPasses(1);
            _passes++;
            _stats.Cluster.AgentPasses++;
            SchedulingPoint.Interleave();
        }
    }

    /// <summary>The relocation callback: the move is a free of the old object and an allocation of the new one (checked by the oracle), then one persisted pointer write.</summary>
    private async ValueTask RelocateAsync(RemotePtr from, RemotePtr to, CancellationToken cancellationToken)
    {
        // Until this call returns the old object is live: its slab must still be the node's.
        OracleOf(from).Check(OracleOf(from).HeldBy(Node).Contains(SlabOf(from)), Invariant.ReachableOnce,
            $"compaction commits the move of {from}, a live object until the commit, but its slab {SlabOf(from)} is no longer the node's.");
        OracleOf(from).ObjectFreeing(Node, from);
        OracleOf(to).ObjectAllocated(Node, _life, to, SlabOf(to));
        if (from == _table)
        {
            await Heap.SetRootAsync(to, 0, cancellationToken);
            _table = to;
            return;
        }

        int slot = Array.IndexOf(_objects, from);
        OracleOf(from).Check(slot >= 0, Invariant.ReachableOnce, $"compaction moved {from}, which the application does not hold.");
        await WriteSlotAsync(slot, to, cancellationToken);
        _objects[slot] = to;
    }

    /// <summary>Allocates, writes and frees objects of its own in the application's size classes while compaction runs.</summary>
    private async Task WorkerAsync()
    {
        // Objects allocated before compaction chose its sources could be moved under the worker's writes and frees
        // (the contract forbids those); from the first progress report on, new objects never land in a source.
        for (int spin = 0; spin < 256 && !_sourcesChosen && !_compactionDone; spin++)
        {
            SchedulingPoint.Interleave();
        }

        for (int op = 0; op < _scenario.WorkerOperations; op++)
        {
            switch (_random.NextInteger(4))
            {
                case 0 when _workerObjects.Count > 0:
                    var victim = _workerObjects[_random.NextInteger(_workerObjects.Count)];
                    _workerObjects.Remove(victim);
                    OracleOf(victim).ObjectFreeing(Node, victim);
                    await Heap.FreeAsync(victim);
                    break;
                case 1:
                    await Heap.PublishEpochsAsync();
                    break;
                default:
                    var ptr = await AllocateAsync(_scenario.ObjectSizes[_random.NextInteger(_scenario.ObjectSizes.Count)]);
                    _workerObjects.Add(ptr);
                    _stats.WorkerAllocations++;
                    await Heap.WriteAsync(ptr, ptr.Packed);
                    break;
            }
        }
    }

    /// <summary>
    /// Under an epoch guard, takes an application object's current pointer (it may be moved meanwhile) and reads it
    /// after agent passes: its slab must not be handed out again while the guard is open, and it still holds its content.
    /// </summary>
    private async Task ReaderAsync()
    {
        for (int round = 0; round < _scenario.ReaderRounds; round++)
        {
            await Heap.PublishEpochsAsync();
            var slots = Enumerable.Range(0, Slots).Where(s => !_objects[s].IsNull).ToArray();
            if (slots.Length == 0)
            {
                continue;
            }

            _stats.Cluster.GuardedReads++;
            using var guard = Heap.EnterEpoch();
            int slot = slots[_random.NextInteger(slots.Length)];
            var ptr = _objects[slot];
            var oracle = OracleOf(ptr);
            long guardId = oracle.GuardOpened(Node);
            try
            {
                oracle.ReferenceTaken(guardId, ptr, SlabOf(ptr));
                for (int step = 1 + _random.NextInteger(2); step > 0; step--)
                {
                    long passes = _passes;
                    for (int spin = 0; spin < 64 && _passes == passes && !_stopAgent; spin++)
                    {
                        SchedulingPoint.Interleave();
                    }

                    await Heap.PublishEpochsAsync();
                }

                ulong word = await Heap.ReadAsync<ulong>(ptr);
                oracle.Check(word == ContentTag(slot), Invariant.ReachableOnce,
                    $"the reader found {word:x16} at {ptr} (object {slot}, read under a guard opened before the pointer was taken); expected {ContentTag(slot):x16}.");
            }
            finally
            {
                oracle.GuardClosed(guardId);
            }
        }
    }

    /// <summary>
    /// Every live object is reachable exactly once with its content: the table (the root) reaches each application
    /// object, which holds its bytes; the worker's objects hold theirs; no two share an address; the oracle's live set
    /// is exactly these.
    /// </summary>
    private async Task CheckReachableExactlyOnceAsync(WorkingNodeHeap heap, string when)
    {
        var oracle = _oracles[0];
        var root = heap.GetRoot(0);
        oracle.Check(root == _table, Invariant.ReachableOnce, $"{when}: the durable root is {root}, the application's table is at {_table}.");
        var bytes = new byte[TableBytes];
        await heap.ReadBytesAsync(root, bytes);
        var reachable = new List<RemotePtr> { root };
        for (int slot = 0; slot < Slots; slot++)
        {
            var ptr = RemotePtr.FromPacked(BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(slot * 8)));
            oracle.Check(ptr == _objects[slot], Invariant.ReachableOnce, $"{when}: slot {slot} of the durable table holds {ptr}; the application put {_objects[slot]} there.");
            if (ptr.IsNull)
            {
                continue;
            }

            var actual = new byte[ContentBytes];
            await heap.ReadBytesAsync(ptr, actual);
            oracle.Check(actual.AsSpan().SequenceEqual(Content(slot)), Invariant.ReachableOnce,
                $"{when}: object {slot} at {ptr} does not hold its content (first word {BinaryPrimitives.ReadUInt64LittleEndian(actual):x16}).");
            reachable.Add(ptr);
        }

        foreach (var ptr in _workerObjects)
        {
            ulong word = await heap.ReadAsync<ulong>(ptr);
            oracle.Check(word == ptr.Packed, Invariant.ReachableOnce, $"{when}: the worker's object at {ptr} holds {word:x16}, not what the worker wrote.");
            reachable.Add(ptr);
        }

        oracle.Check(reachable.Distinct().Count() == reachable.Count, Invariant.ReachableOnce,
            $"{when}: two references share an object: [{string.Join(", ", reachable.GroupBy(p => p).Where(g => g.Count() > 1).Select(g => g.Key))}].");
        var live = _oracles.SelectMany(o => o.ObjectsOf(Node)).ToHashSet();
        oracle.Check(live.SetEquals(reachable), Invariant.ReachableOnce,
            $"{when}: the live objects are [{string.Join(", ", live)}], the reachable ones [{string.Join(", ", reachable)}].");
        foreach (var ptr in reachable)
        {
            oracle.Check(heap.IsAllocated(ptr), Invariant.ReachableOnce, $"{when}: {ptr} is reachable but not allocated in the heap.");
        }
    }

    /// <summary>The node restarts: it gets back exactly the slabs it held, recovers by reachability, and every object is still there.</summary>
    private async Task RestartAndCheckAsync()
    {
        foreach (var oracle in _oracles)
        {
            oracle.NodeDied(Node, _life, "restart after compaction");
        }

        var live = _workerObjects.Concat(_objects.Where(p => !p.IsNull)).Append(_table).ToArray();
        _heap = await OpenAsync();
        await Heap.CompleteRecoveryAsync(live);
        foreach (var ptr in live)
        {
            OracleOf(ptr).ObjectAllocated(Node, _life, ptr, SlabOf(ptr));
        }

        await CheckReachableExactlyOnceAsync(Heap, "after the node restarted");
    }

    private async Task ReturnEverythingAndCheckNoLeakAsync()
    {
        foreach (var ptr in _workerObjects.Concat(_objects.Where(p => !p.IsNull)).Append(_table))
        {
            OracleOf(ptr).ObjectFreeing(Node, ptr);
            await Heap.FreeAsync(ptr);
        }

        for (int b = 0; b < _blades.Length; b++)
        {
            foreach (ulong slab in Heap.OwnedSlabIndexes(b))
            {
                await Heap.Blades[b].ReturnSlabAsync(slab);
            }
        }

        for (int pass = 0; pass < 4; pass++)
        {
            await Heap.PublishEpochsAsync();
            RunPasses(1);
        }

        for (int b = 0; b < _blades.Length; b++)
        {
            _oracles[b].CheckNoPermanentLeak(_blades[b].Image.Scan(), $"blade {b}, after the node freed and returned everything", allowOwnedByDeadNodes: false);
        }
    }

    private async Task<RemotePtr> AllocateAsync(int size)
    {
        var ptr = await Heap.AllocateAsync(size);
        OracleOf(ptr).ObjectAllocated(Node, _life, ptr, SlabOf(ptr));
        return ptr;
    }

    private Task WriteSlotAsync(int slot, RemotePtr value, CancellationToken cancellationToken = default)
    {
        var bytes = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, value.Packed);
        return Heap.WriteAndPersistAsync(_table.Add(slot * 8), bytes, cancellationToken).AsTask();
    }

    private ulong SlabOf(RemotePtr ptr)
    {
        var geometry = _blades[ptr.BladeId].Image.Geometry;
        return (ulong)(ptr.Offset - geometry.DataOffset) / geometry.SlabSizeBytes;
    }

    private static ulong ContentTag(int slot) => 0x4F424A0000000000UL | (uint)slot;

    /// <summary>
    /// Object <paramref name="slot"/>'s bytes (its first <see cref="ContentBytes"/>): its tag, then a pattern derived from it.
    /// Only a prefix: every store to the simulated NVM is tracked word by word, and whole 20 KB objects made the iterations
    /// ten times slower without adding interleavings (compaction still copies whole objects).
    /// </summary>
    private static byte[] Content(int slot)
    {
        var bytes = new byte[ContentBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, ContentTag(slot));
        for (int w = 8; w < ContentBytes; w += 8)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(w), ((ulong)slot << 32) | (uint)w);
        }

        return bytes;
    }

    private string Describe(int blade)
    {
        var state = _blades[blade].Image.Scan();
        var slabs = state.Slabs.Select(s => s.State switch
        {
            SlabState.Free => ".",
            SlabState.Ringed => $"R{s.Generation}",
            SlabState.Owned => $"O{s.Node}",
            _ => $"F{s.Node}",
        });
        return $"blade {blade}: sequencer {state.Sequencer}, epoch {state.GlobalEpoch}, slabs [{string.Join(" ", slabs)}]";
    }
}

/// <summary>A synchronous progress sink that notes the first report: the sources are out of allocation.</summary>
internal sealed class SourcesChosen(Action chosen) : IProgress<CompactionProgress>
{
    public void Report(CompactionProgress value)
    {
        if (value.SourceSlabsDone == 0)
        {
            chosen();
        }
    }
}

/// <summary>What the iterations of one compaction test did, summed.</summary>
internal sealed class CompactionStats
{
    public ClusterStats Cluster { get; } = new();

    public long ObjectsMoved;
    public long SlabsReturned;
    public long SlabsAdded;
    public long WorkerAllocations;

    public override string ToString() =>
        $"compaction: objects moved {ObjectsMoved}, slabs returned {SlabsReturned}, destination slabs added {SlabsAdded}, worker allocations {WorkerAllocations}; {Cluster}";
}
