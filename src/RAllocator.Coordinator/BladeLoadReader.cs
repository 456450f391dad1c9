using RAllocator.Fabric;
using RAllocator.Protocol.Layout;

namespace RAllocator.Coordinator;

/// <summary>
/// Reads one blade's utilization one-sided: the two superblock copies once (two READs, for the geometry), then one
/// READ of the 64-byte control block per <see cref="ReadAsync"/>. Runs no code on the blade: the counters are the
/// ones the blade agent already publishes on every pass for working nodes and the coordinator.
/// </summary>
/// <remarks>Not thread-safe: one read at a time (the coordinator reads each blade from one task).</remarks>
public sealed class BladeLoadReader
{
    private readonly byte[] _buffer = new byte[Math.Max(Superblock.SizeBytes, BladeControlBlock.SizeBytes)];
    private BladeGeometry? _geometry;
    private ulong _bladeUid;
    private BladeLoad _last;

    /// <summary>Reads through <paramref name="connection"/> (a read-only registration is enough).</summary>
    public BladeLoadReader(IFabricConnection connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        Connection = connection;
        _last = new BladeLoad(connection.BladeId, false, 0, 0, 0, 0, 0, 0);
    }

    /// <summary>The connection the reads go through; its counters count them.</summary>
    public IFabricConnection Connection { get; }

    /// <summary>The blade's id.</summary>
    public int BladeId => Connection.BladeId;

    /// <summary>The last load read (unreachable with zero counts before the first successful read).</summary>
    public BladeLoad Last => _last;

    /// <summary>
    /// Reads the blade's load: one READ of its control block (plus two READs of its superblocks the first time).
    /// A fabric failure or an invalid superblock returns the last load read, marked unreachable; it does not throw.
    /// </summary>
    public async Task<BladeLoad> ReadAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            var geometry = _geometry ??= await ReadGeometryAsync(cancellationToken).ConfigureAwait(false);
            var bytes = _buffer.AsMemory(0, BladeControlBlock.SizeBytes);
            await Connection.ReadAsync(BladeLayout.ControlOffset, bytes, cancellationToken).ConfigureAwait(false);
            var control = BladeControlBlock.FromBytes(bytes.Span);
            _last = new BladeLoad(BladeId, true, geometry.SlabCount, geometry.SlabSizeBytes,
                control.OwnedSlabs, control.RingedSlabs, control.FreeingSlabs, control.AgentHeartbeat, _bladeUid);
        }
        catch (Exception ex) when (ex is FabricException or BladeImageException)
        {
            _last = _last with { Reachable = false };
        }

        return _last;
    }

    private async Task<BladeGeometry> ReadGeometryAsync(CancellationToken cancellationToken)
    {
        var bytes = _buffer.AsMemory(0, Superblock.SizeBytes);
        await Connection.ReadAsync(BladeLayout.SuperblockAOffset, bytes, cancellationToken).ConfigureAwait(false);
        var copyA = Superblock.FromBytes(bytes.Span);
        await Connection.ReadAsync(BladeLayout.SuperblockBOffset, bytes, cancellationToken).ConfigureAwait(false);
        var copyB = Superblock.FromBytes(bytes.Span);
        var superblock = SuperblockCodec.Choose(copyA, copyB, Connection.RegionLength).Superblock;
        _bladeUid = superblock.BladeUid;
        return SuperblockCodec.GeometryOf(superblock);
    }
}
