using System.Buffers.Binary;

namespace RAllocator.Coyote.Tests.Simulation;

/// <summary>
/// A working node's connection, observed: it forwards every verb to the loopback connection unchanged and tells the
/// <see cref="AllocatorOracle"/> when a slab changes hands, which happens at exactly two batches of the protocol:
/// the acknowledgement (the last step of an acquisition, after which the node holds the slab) and the free request
/// (the first step of a return, after which it no longer does). Observing the verbs rather than the heap's API also
/// sees the slabs the heap acquires and returns internally.
/// </summary>
/// <remarks>
/// Reported before and after the batch: a free is reported before its WRITE can execute (the blade may reuse the
/// slab from that moment), an acquisition after its batch completed (the node may use the slab from that moment).
/// A batch interrupted by a death leaves its slab uncertain in the oracle.
/// </remarks>
internal sealed class ObservedConnection : IFabricConnection
{
    private readonly IFabricConnection _inner;
    private readonly AllocatorOracle _oracle;
    private readonly Action _beforeVerb;
    private readonly Action _afterAcknowledgement;
    private readonly uint _node;
    private readonly int _life;
    private readonly (long Start, long End) _ackArea;
    private readonly (long Start, long End) _freeArea;

    public ObservedConnection(IFabricConnection inner, BladeGeometry geometry, AllocatorOracle oracle, uint node, int life, Action beforeVerb, Action afterAcknowledgement)
    {
        _inner = inner;
        _oracle = oracle;
        _beforeVerb = beforeVerb;
        _afterAcknowledgement = afterAcknowledgement;
        _node = node;
        _life = life;
        var layout = geometry.Layout;
        long ackStart = layout.AckSlotsElementOffset(node * geometry.AckSlotsPerNode);
        long freeStart = layout.FreeSlotsElementOffset(node * geometry.FreeSlotsPerNode);
        _ackArea = (ackStart, ackStart + ((long)geometry.AckSlotsPerNode * AckRecord.SizeBytes));
        _freeArea = (freeStart, freeStart + ((long)geometry.FreeSlotsPerNode * FreeRecord.SizeBytes));
    }

    public int BladeId => _inner.BladeId;

    public long RegionLength => _inner.RegionLength;

    public FabricCounters Counters => _inner.Counters;

    public ValueTask ReadAsync(long remoteOffset, Memory<byte> destination, CancellationToken cancellationToken = default) 
    {
        _beforeVerb();
        return _inner.ReadAsync(remoteOffset, destination, cancellationToken);
    }

    public ValueTask WriteAsync(long remoteOffset, ReadOnlyMemory<byte> source, CancellationToken cancellationToken = default) 
    {
        _beforeVerb();
        return _inner.WriteAsync(remoteOffset, source, cancellationToken);
    }

    public ValueTask<ulong> FetchAddAsync(long remoteOffset, ulong delta, CancellationToken cancellationToken = default) 
    {
        _beforeVerb();
        return _inner.FetchAddAsync(remoteOffset, delta, cancellationToken);
    }

    public ValueTask<ulong> CompareSwapAsync(long remoteOffset, ulong expected, ulong desired, CancellationToken cancellationToken = default) 
    {
        _beforeVerb();
        return _inner.CompareSwapAsync(remoteOffset, expected, desired, cancellationToken);
    }

    public ValueTask PersistAsync(long remoteOffset, long length, CancellationToken cancellationToken = default) 
    {
        _beforeVerb();
        return _inner.PersistAsync(remoteOffset, length, cancellationToken);
    }

    public FabricBatch CreateBatch() => new(PostAsync);

    public ValueTask DisposeAsync() => _inner.DisposeAsync();

    private async ValueTask PostAsync(IReadOnlyList<FabricBatchOperation> operations, bool signaled, CancellationToken cancellationToken)
    {
        _beforeVerb();
        var (kind, slab, span) = Classify(operations);
        if (kind == BatchKind.Acknowledgement)
        {
            _oracle.AcknowledgementPosting(_node, _life, slab, span);
        }
        else if (kind == BatchKind.Free)
        {
            _oracle.FreePosting(_node, _life, slab);
        }

        var batch = _inner.CreateBatch();
        foreach (var operation in operations)
        {
            if (operation.Verb == FabricVerb.Write)
            {
                batch.Write(operation.RemoteOffset, operation.Source);
            }
            else
            {
                batch.Persist(operation.RemoteOffset, operation.Length);
            }
        }

        await (signaled ? batch.PostAndWaitAsync(cancellationToken) : batch.PostUnsignaled(cancellationToken));

        if (kind == BatchKind.Acknowledgement)
        {
            _oracle.AcknowledgementPosted(_node, _life, slab, span);
            _afterAcknowledgement();
        }
        else if (kind == BatchKind.Free)
        {
            _oracle.FreePosted(_node, _life, slab);
        }
    }

    /// <summary>What a batch does; an acknowledgement's span comes from its ticket (each span class's ring has its own ticket space).</summary>
    private (BatchKind Kind, ulong Slab, uint Span) Classify(IReadOnlyList<FabricBatchOperation> operations)
    {
        if (operations.Count == 0 || operations[0].Verb != FabricVerb.Write || operations[0].Source.Length < 8)
        {
            return (BatchKind.Other, 0, 0);
        }

        long offset = operations[0].RemoteOffset;
        var source = operations[0].Source.Span;
        ulong slab = SequencedSlabWord.Unpack(BinaryPrimitives.ReadUInt64LittleEndian(source)).SlabIndex;
        if (offset >= _ackArea.Start && offset < _ackArea.End && source.Length >= AckRecord.SizeBytes)
        {
            ulong ticket = BinaryPrimitives.ReadUInt64LittleEndian(source[8..]);
            return (BatchKind.Acknowledgement, slab, 1u << SlabRings.SpanClassOf(ticket));
        }

        return offset >= _freeArea.Start && offset < _freeArea.End ? (BatchKind.Free, slab, 0u) : (BatchKind.Other, 0UL, 0u);
    }

    private enum BatchKind
    {
        Other,
        Acknowledgement,
        Free,
    }
}
