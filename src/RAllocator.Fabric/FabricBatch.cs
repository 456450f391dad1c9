namespace RAllocator.Fabric;

/// <summary>
/// Operations posted together under one completion, executed in order (RC queue-pair ordering).
/// Only writes and persists are batched: they are what a posted acknowledgement needs.
/// </summary>
public sealed class FabricBatch
{
    private readonly Func<IReadOnlyList<FabricBatchOperation>, bool, CancellationToken, ValueTask> _post;
    private readonly List<FabricBatchOperation> _operations = [];
    private bool _posted;

    /// <summary>Creates a batch that a fabric executes through <paramref name="post"/> (signaled flag second).</summary>
    public FabricBatch(Func<IReadOnlyList<FabricBatchOperation>, bool, CancellationToken, ValueTask> post)
    {
        _post = post;
    }

    /// <summary>The operations added so far.</summary>
    public IReadOnlyList<FabricBatchOperation> Operations => _operations;

    /// <summary>Adds a WRITE of <paramref name="source"/> at <paramref name="remoteOffset"/>.</summary>
    public FabricBatch Write(long remoteOffset, ReadOnlyMemory<byte> source)
    {
        ThrowIfPosted();
        _operations.Add(new FabricBatchOperation(FabricVerb.Write, remoteOffset, source, source.Length));
        return this;
    }

    /// <summary>Adds a PERSIST of [remoteOffset, remoteOffset + length).</summary>
    public FabricBatch Persist(long remoteOffset, long length)
    {
        ThrowIfPosted();
        _operations.Add(new FabricBatchOperation(FabricVerb.Persist, remoteOffset, ReadOnlyMemory<byte>.Empty, length));
        return this;
    }

    /// <summary>Posts the batch and waits for its single completion: one round trip.</summary>
    public ValueTask PostAndWaitAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfPosted();
        _posted = true;
        return _post(_operations, true, cancellationToken);
    }

    /// <summary>
    /// Posts the batch without waiting (unsignaled): no round trip on the caller's path. The fabric still
    /// executes it before any later operation on the same connection completes, and a failure surfaces there.
    /// </summary>
    public ValueTask PostUnsignaled(CancellationToken cancellationToken = default)
    {
        ThrowIfPosted();
        _posted = true;
        return _post(_operations, false, cancellationToken);
    }

    private void ThrowIfPosted()
    {
        if (_posted)
        {
            throw new InvalidOperationException("This fabric batch was already posted; create a new one.");
        }
    }
}

/// <summary>One operation in a <see cref="FabricBatch"/>.</summary>
public readonly record struct FabricBatchOperation(FabricVerb Verb, long RemoteOffset, ReadOnlyMemory<byte> Source, long Length);

/// <summary>The one-sided verbs a fabric offers.</summary>
public enum FabricVerb
{
    /// <summary>RDMA READ.</summary>
    Read,
    /// <summary>RDMA WRITE.</summary>
    Write,
    /// <summary>RDMA ATOMIC_FETCH_AND_ADD.</summary>
    FetchAdd,
    /// <summary>RDMA ATOMIC_CMP_AND_SWP.</summary>
    CompareSwap,
    /// <summary>RDMA FLUSH (or its emulation).</summary>
    Persist,
}
