namespace RAllocator.Fabric;

/// <summary>
/// A working node's connection to one blade's registered NVM region, offering one-sided verbs only:
/// nothing here runs code on the blade's CPU (on hardware; see each fabric's notes for emulations).
/// </summary>
/// <remarks>
/// <para>Every awaited operation is one <em>round trip</em>: a completion the caller waits on. Several
/// operations can be posted under one completion with <see cref="CreateBatch"/>; a batch that is posted
/// unsignaled (<see cref="FabricBatch.PostUnsignaled"/>) costs no round trip on the caller's path, exactly like
/// unsignaled work requests on an RDMA reliable-connected queue pair, whose later completions imply it.</para>
/// <para>Failures complete the operation with a <see cref="FabricException"/> carrying a
/// <see cref="FabricStatus"/>: the completion carries the error, as an RDMA work completion does.</para>
/// </remarks>
public interface IFabricConnection : IAsyncDisposable
{
    /// <summary>Identity of the blade at the other end (its index in the working node's blade list).</summary>
    int BladeId { get; }

    /// <summary>Bytes of the blade region this connection may address.</summary>
    long RegionLength { get; }

    /// <summary>Counters of verbs, bytes and round trips issued through this connection.</summary>
    FabricCounters Counters { get; }

    /// <summary>RDMA READ of <c>destination.Length</c> bytes at <paramref name="remoteOffset"/>.</summary>
    ValueTask ReadAsync(long remoteOffset, Memory<byte> destination, CancellationToken cancellationToken = default);

    /// <summary>RDMA WRITE of <paramref name="source"/> at <paramref name="remoteOffset"/> (not durable until persisted).</summary>
    ValueTask WriteAsync(long remoteOffset, ReadOnlyMemory<byte> source, CancellationToken cancellationToken = default);

    /// <summary>RDMA ATOMIC_FETCH_AND_ADD on an aligned 8-byte word; returns the value before the addition.</summary>
    ValueTask<ulong> FetchAddAsync(long remoteOffset, ulong delta, CancellationToken cancellationToken = default);

    /// <summary>RDMA ATOMIC_CMP_AND_SWP on an aligned 8-byte word; returns the value found before the operation.</summary>
    ValueTask<ulong> CompareSwapAsync(long remoteOffset, ulong expected, ulong desired, CancellationToken cancellationToken = default);

    /// <summary>Makes earlier writes to the range durable at the blade (RDMA FLUSH, or read-after-write).</summary>
    ValueTask PersistAsync(long remoteOffset, long length, CancellationToken cancellationToken = default);

    /// <summary>Starts a batch of operations to post under a single completion.</summary>
    FabricBatch CreateBatch();
}
