using RAllocator.Fabric;
using RAllocator.Protocol.Layout;

namespace RAllocator.Protocol;

/// <summary>
/// What the protocol needs each working node to be able to modify on a blade: the registrations a blade grants
/// it, whatever the fabric (loopback checks, UCX rkeys, verbs memory regions).
/// </summary>
public static class NodeRegistrations
{
    /// <summary>
    /// Node <paramref name="nodeId"/>'s writable ranges: each ring's sequencer word (FETCH_AND_ADD), its own header,
    /// acknowledgement and free areas, and the slab data area. One-sided RDMA cannot confine data-area writes to
    /// the slabs a node owns without one registration per slab; see spec/processes.md, "Access isolation".
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="nodeId"/> is not below the blade's maximum nodes.</exception>
    public static FabricAccess For(BladeGeometry geometry, BladeLayout layout, uint nodeId)
    {
        ArgumentNullException.ThrowIfNull(geometry);
        ArgumentNullException.ThrowIfNull(layout);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(nodeId, geometry.MaxNodes);
        var sequencers = geometry.Rings.All.Select(ring => new FabricRange(ring.SequencerOffset, sizeof(ulong)));
        return new FabricAccess([
            .. sequencers,
            new FabricRange(layout.NodeHeadersElementOffset(nodeId), NodeHeader.SizeBytes),
            new FabricRange(layout.AckSlotsElementOffset(nodeId * geometry.AckSlotsPerNode), (long)geometry.AckSlotsPerNode * AckRecord.SizeBytes),
            new FabricRange(layout.FreeSlotsElementOffset(nodeId * geometry.FreeSlotsPerNode), (long)geometry.FreeSlotsPerNode * FreeRecord.SizeBytes),
            new FabricRange(geometry.DataOffset, (long)(geometry.SlabCount * geometry.SlabSizeBytes)),
        ]);
    }
}
