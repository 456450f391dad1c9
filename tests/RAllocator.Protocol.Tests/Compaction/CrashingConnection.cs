using RAllocator.Fabric;

namespace RAllocator.Protocol.Tests.Compaction;

/// <summary>
/// Where a crash-point run stops: a node crash before the node's <see cref="NodeCrashAt"/>-th fabric operation (a verb
/// or a posted batch), or a blade power failure at the <see cref="PowerFailureAt"/>-th persist of any blade's NVM;
/// both counted from <see cref="Arm"/>. Once either has struck, every later operation of the node fails, so nothing
/// the dead process does can reach a blade.
/// </summary>
internal sealed class CrashSwitch
{
    private long _operations;
    private long _persists;
    private bool _armed;

    public long NodeCrashAt { get; init; } = -1;

    public long PowerFailureAt { get; init; } = -1;

    public bool Dead { get; private set; }

    /// <summary>The blade whose power failed, or -1.</summary>
    public int FailedBlade { get; private set; } = -1;

    public long Operations => _operations;

    public long Persists => _persists;

    public void Arm()
    {
        _armed = true;
        _operations = 0;
        _persists = 0;
    }

    public void Disarm() => _armed = false;

    /// <summary>Before every node operation.</summary>
    public void BeforeOperation()
    {
        if (Dead)
        {
            throw new FabricException(FabricStatus.Unreachable, "the node crashed (crash-point test)");
        }

        if (_armed && _operations++ == NodeCrashAt)
        {
            Dead = true;
            throw new FabricException(FabricStatus.Unreachable, $"node crash before operation {NodeCrashAt} (crash-point test)");
        }
    }

    /// <summary>Before every persist of blade <paramref name="bladeId"/>'s NVM (node verbs and agent passes alike).</summary>
    public void BeforePersist(int bladeId, long index)
    {
        if (Dead)
        {
            throw new SimulatedPowerFailure(index);
        }

        if (_armed && _persists++ == PowerFailureAt)
        {
            Dead = true;
            FailedBlade = bladeId;
            throw new SimulatedPowerFailure(index);
        }
    }
}

/// <summary>A node's connection that asks the <see cref="CrashSwitch"/> before every verb and batch.</summary>
internal sealed class CrashingConnection(IFabricConnection inner, CrashSwitch crash) : IFabricConnection
{
    public int BladeId => inner.BladeId;

    public long RegionLength => inner.RegionLength;

    public FabricCounters Counters => inner.Counters;

    public ValueTask ReadAsync(long remoteOffset, Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        crash.BeforeOperation();
        return inner.ReadAsync(remoteOffset, destination, cancellationToken);
    }

    public ValueTask WriteAsync(long remoteOffset, ReadOnlyMemory<byte> source, CancellationToken cancellationToken = default)
    {
        crash.BeforeOperation();
        return inner.WriteAsync(remoteOffset, source, cancellationToken);
    }

    public ValueTask<ulong> FetchAddAsync(long remoteOffset, ulong delta, CancellationToken cancellationToken = default)
    {
        crash.BeforeOperation();
        return inner.FetchAddAsync(remoteOffset, delta, cancellationToken);
    }

    public ValueTask<ulong> CompareSwapAsync(long remoteOffset, ulong expected, ulong desired, CancellationToken cancellationToken = default)
    {
        crash.BeforeOperation();
        return inner.CompareSwapAsync(remoteOffset, expected, desired, cancellationToken);
    }

    public ValueTask PersistAsync(long remoteOffset, long length, CancellationToken cancellationToken = default)
    {
        crash.BeforeOperation();
        return inner.PersistAsync(remoteOffset, length, cancellationToken);
    }

    public FabricBatch CreateBatch() => new(PostAsync);

    public ValueTask DisposeAsync() => inner.DisposeAsync();

    private ValueTask PostAsync(IReadOnlyList<FabricBatchOperation> operations, bool signaled, CancellationToken cancellationToken)
    {
        crash.BeforeOperation();
        var batch = inner.CreateBatch();
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

        return signaled ? batch.PostAndWaitAsync(cancellationToken) : batch.PostUnsignaled(cancellationToken);
    }
}
