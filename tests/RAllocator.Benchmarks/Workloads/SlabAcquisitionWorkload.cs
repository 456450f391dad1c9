using RAllocator.Protocol;
using RAllocator.Protocol.Layout;

namespace RAllocator.Benchmarks.Workloads;

/// <summary>
/// The one-sided slab protocol seen from one working node: <see cref="BladeClient.AcquireSlabAsync"/> (FETCH_AND_ADD,
/// READ of the ring entry, acknowledgement posted with its PERSIST) and <see cref="BladeClient.ReturnSlabAsync"/>
/// (free request written and persisted, posted). The blade agent never runs inside a timed batch: it runs in
/// <see cref="SettleAsync"/>, between batches, to apply acknowledgements, drain free requests, reclaim freed slabs once
/// the node has published a later epoch, and refill the ring.
/// </summary>
/// <remarks>
/// The blade is formatted with a ring of 2 x <see cref="BatchLength"/> entries and as many acknowledgement and
/// free slots per node, so a batch never waits for the agent; once every second batch the node finds its
/// acknowledgement area "looks full" and reads its header once to learn how far the agent drained (the protocol's
/// own lazy check), which shows as a fraction of a round trip per acquisition.
/// </remarks>
internal sealed class SlabAcquisitionWorkload : IDisposable
{
    /// <summary>Default acquisitions per timed batch.</summary>
    public const int DefaultBatchLength = 512;

    /// <summary>2 GiB sparse of 1 MiB slabs: 2047 slabs, so four batches fit even before any reclamation.</summary>
    public const long RegionBytes = 2L << 30;

    private const uint NodeId = 1;

    // Settle passes: drain frees (slab Freeing at epoch E), advance the epoch twice with the node publishing in
    // between (reclaim needs a published epoch > E), then refill the ring, at most 256 entries per pass.
    private const int ReclaimPasses = 4;

    private readonly BenchBlade _blade;
    private readonly BladeClient _client;
    private readonly ulong[] _acquired;
    private int _acquiredCount;

    private SlabAcquisitionWorkload(BenchBlade blade, BladeClient client, int batchLength)
    {
        _blade = blade;
        _client = client;
        _acquired = new ulong[batchLength];
    }

    /// <summary>Acquisitions per batch.</summary>
    public int BatchLength => _acquired.Length;

    /// <summary>The node's client (its counters are the round trips actually waited for).</summary>
    public BladeClient Client => _client;

    /// <summary>Blade agent passes so far.</summary>
    public long BladeHandlerCalls => _blade.Blade.Agent.HandlerCalls;

    /// <summary>The region's backend and persistence domain.</summary>
    public string NvmDescription => $"{_blade.Region.Backend}, {_blade.Region.PersistenceDomain}";

    /// <summary>Formats the blade, fills its ring and registers node 1.</summary>
    public static async Task<SlabAcquisitionWorkload> StartAsync(int batchLength = DefaultBatchLength)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batchLength, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(batchLength, 1024);
        uint slots = (uint)(2 * batchLength);
        var format = new BladeFormatOptions { MaxNodes = 4, RingCapacity = slots, AckSlotsPerNode = slots, FreeSlotsPerNode = slots };
        var blade = BenchBlade.Create(RegionBytes, BenchBlade.DefaultSlabSizeBytes, format);
        try
        {
            var client = await BladeClient.ConnectAsync(blade.Blade.Connect(NodeId), NodeId).ConfigureAwait(false);
            await client.RegisterAsync().ConfigureAwait(false);
            var workload = new SlabAcquisitionWorkload(blade, client, batchLength);
            await workload.SettleAsync().ConfigureAwait(false);
            return workload;
        }
        catch
        {
            blade.Dispose();
            throw;
        }
    }

    /// <summary>Acquires <see cref="BatchLength"/> slabs, one after the other (acquisitions of a node are serialized).</summary>
    public async Task AcquireBatchAsync()
    {
        ThrowIfHoldingSlabs();
        for (int i = 0; i < BatchLength; i++)
        {
            _acquired[i] = (await _client.AcquireSlabAsync().ConfigureAwait(false)).SlabIndex;
        }

        _acquiredCount = BatchLength;
    }

    /// <summary>Returns the slabs of the last <see cref="AcquireBatchAsync"/>.</summary>
    public async Task ReturnBatchAsync()
    {
        for (int i = 0; i < _acquiredCount; i++)
        {
            await _client.ReturnSlabAsync(_acquired[i]).ConfigureAwait(false);
        }

        _acquiredCount = 0;
    }

    /// <summary><see cref="BatchLength"/> times: acquire a slab, then return it at once.</summary>
    public async Task AcquireAndReturnBatchAsync()
    {
        ThrowIfHoldingSlabs();
        for (int i = 0; i < BatchLength; i++)
        {
            var slab = await _client.AcquireSlabAsync().ConfigureAwait(false);
            await _client.ReturnSlabAsync(slab.SlabIndex).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Runs the blade agent between batches, with the node publishing its epoch before each pass, until returned
    /// slabs are reclaimed and the ring is full again.
    /// </summary>
    public async Task SettleAsync()
    {
        int passes = ReclaimPasses + ((2 * BatchLength) + 255) / 256;
        for (int pass = 0; pass < passes; pass++)
        {
            ulong epoch = await _client.ReadGlobalEpochAsync().ConfigureAwait(false);
            await _client.PublishEpochAsync(epoch).ConfigureAwait(false);
            _blade.Blade.Agent.RunOnce();
        }
    }

    public void Dispose() => _blade.Dispose();

    private void ThrowIfHoldingSlabs()
    {
        if (_acquiredCount != 0)
        {
            throw new InvalidOperationException($"{_acquiredCount} slabs of the last batch are still held: return them before the next batch.");
        }
    }
}
