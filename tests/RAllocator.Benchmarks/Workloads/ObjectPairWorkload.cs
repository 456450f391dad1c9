using System.Runtime.CompilerServices;
using RAllocator.Embedded;
using RAllocator.Fabric;
using RAllocator.Node;
using RAllocator.Protocol;
using RAllocator.Protocol.Layout;

namespace RAllocator.Benchmarks.Workloads;

/// <summary>
/// Steady-state object allocation on one working node: a heap on a file-backed blade over the loopback fabric,
/// whose size class already holds every slab the workload needs, so that allocate and free are the local,
/// volatile object operations the design promises (no verb, no blade CPU). Shared by the BenchmarkDotNet class
/// and the quick <c>pairs</c> mode so both measure exactly the same thing.
/// </summary>
internal sealed class ObjectPairWorkload : IDisposable
{
    /// <summary>256 MiB sparse: room for many 1 MiB slabs, nothing written but metadata and slab headers.</summary>
    public const long RegionBytes = 256L << 20;

    private const uint NodeId = 1;

    private readonly BenchBlade _blade;
    private readonly WorkingNodeHeap _heap;
    private readonly int _sizeBytes;
    private readonly RemotePtr[] _burst;

    private ObjectPairWorkload(BenchBlade blade, WorkingNodeHeap heap, int sizeBytes, int burstLength)
    {
        _blade = blade;
        _heap = heap;
        _sizeBytes = sizeBytes;
        _burst = new RemotePtr[burstLength];
    }

    /// <summary>The heap under test.</summary>
    public WorkingNodeHeap Heap => _heap;

    /// <summary>The node's connection counters (verbs and round trips actually issued).</summary>
    public FabricCounters Counters => _heap.Blades[0].Counters;

    /// <summary>Blade agent passes so far: the blade CPU's work, counted.</summary>
    public long BladeHandlerCalls => _blade.Blade.Agent.HandlerCalls;

    /// <summary>The region's backend ("libpmem" or "mmap+msync") and persistence domain.</summary>
    public string NvmDescription => $"{_blade.Region.Backend}, {_blade.Region.PersistenceDomain}";

    /// <summary>
    /// Formats a blade, registers node 1 and warms the size class of <paramref name="sizeBytes"/>: a burst of
    /// <paramref name="burstLength"/> objects is allocated and freed, so every slab the burst spans is acquired,
    /// carved and kept (the empty-slab threshold is raised so none goes back), then the agent applies the
    /// acknowledgements. After this, allocate/free never leave the node.
    /// </summary>
    public static async Task<ObjectPairWorkload> StartAsync(int sizeBytes, int burstLength)
    {
        // A small ring: the warm-up needs a few slabs, and each ring fill persists (an msync without real pmem).
        var blade = BenchBlade.Create(RegionBytes, BenchBlade.DefaultSlabSizeBytes, new BladeFormatOptions { MaxNodes = 4, RingCapacity = 16 });
        try
        {
            blade.Blade.Agent.RunOnce();
            var heap = await EmbeddedNode.OpenHeapAsync([blade.Blade], NodeId, new HeapOptions { EmptySlabThreshold = 1024 }).ConfigureAwait(false);
            var workload = new ObjectPairWorkload(blade, heap, sizeBytes, Math.Max(1, burstLength));
            for (int i = 0; i < workload._burst.Length; i++)
            {
                workload._burst[i] = await heap.AllocateAsync(sizeBytes).ConfigureAwait(false);
            }

            for (int i = 0; i < workload._burst.Length; i++)
            {
                await heap.FreeAsync(workload._burst[i]).ConfigureAwait(false);
            }

            blade.Blade.Agent.RunOnce();
            return workload;
        }
        catch
        {
            blade.Dispose();
            throw;
        }
    }

    /// <summary>One allocate followed by the free of the same object.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public RemotePtr AllocateFreePair()
    {
        var ptr = Complete(_heap.AllocateAsync(_sizeBytes));
        Complete(_heap.FreeAsync(ptr));
        return ptr;
    }

    /// <summary><see cref="BurstLength"/> allocations, then their frees in allocation order.</summary>
    public RemotePtr AllocateBurstThenFree()
    {
        var burst = _burst;
        for (int i = 0; i < burst.Length; i++)
        {
            burst[i] = Complete(_heap.AllocateAsync(_sizeBytes));
        }

        for (int i = 0; i < burst.Length; i++)
        {
            Complete(_heap.FreeAsync(burst[i]));
        }

        return burst[^1];
    }

    /// <summary>Objects per burst.</summary>
    public int BurstLength => _burst.Length;

    public void Dispose() => _blade.Dispose();

    // In steady state both complete synchronously; blocking is only a fallback if a slab operation sneaks in,
    // which the round-trip column would then show.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static RemotePtr Complete(ValueTask<RemotePtr> pending) =>
        pending.IsCompletedSuccessfully ? pending.Result : pending.AsTask().GetAwaiter().GetResult();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Complete(ValueTask pending)
    {
        if (!pending.IsCompletedSuccessfully)
        {
            pending.AsTask().GetAwaiter().GetResult();
        }
    }
}
