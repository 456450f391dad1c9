using System.Diagnostics;
using System.Runtime.CompilerServices;
using RAllocator.Nvm;

namespace RAllocator.Fabric.Loopback;

/// <summary>
/// One working node's connection through a <see cref="LoopbackFabric"/>: each verb executes against the blade's
/// region on the caller's thread, after the checks a NIC would make against the node's registrations.
/// </summary>
/// <remarks>
/// <para><b>Counting.</b> Counters record what the same calls would cost on hardware. An awaited single verb counts
/// its verb and one round trip. Payload bytes: READ counts its length from the blade, WRITE its length to the blade,
/// FETCH_AND_ADD 8 bytes to and 8 from the blade, CMP_AND_SWP 16 to and 8 from, PERSIST none. A batch posted with
/// <see cref="FabricBatch.PostAndWaitAsync"/> counts each of its verbs and bytes and one round trip; one posted with
/// <see cref="FabricBatch.PostUnsignaled"/> counts its verbs and bytes and one unsignaled post, and no round trip.
/// A verb the blade rejects (access or alignment error) still reached it, so it counts its verb and round trip but
/// no bytes, since it moved no data. Operations on a disposed or unreachable connection never leave the node and
/// count nothing.</para>
/// <para><b>Failures.</b> The blade rejects, with <see cref="FabricStatus.RemoteAccessError"/>, anything outside the
/// region and any WRITE, atomic or PERSIST outside the node's <see cref="FabricAccess"/>; a misaligned atomic fails
/// with <see cref="FabricStatus.RemoteAlignmentError"/>; a rejected verb changes nothing. A failing verb in a batch
/// ends the batch there: earlier verbs have taken effect, later ones never execute (an RC queue pair enters the error
/// state and flushes them). An unsignaled batch has no completion to fail, so its failure is reported by the next
/// operation on this connection, once.</para>
/// </remarks>
public sealed class LoopbackConnection : IFabricConnection
{
    // No ConfigureAwait(false) anywhere here, on purpose: this fabric exists to let the caller's scheduler (Coyote's,
    // or a test's own synchronization context) decide every interleaving, and a continuation thrown to the thread
    // pool would escape it. With no context installed, as in production-like use, the two behave identically.

    private const int AtomicWordBytes = sizeof(ulong);
    private const int CompareSwapOperandBytes = 2 * sizeof(ulong);

    // Timers cannot resolve waits this short, so they spin; longer waits yield the thread to Task.Delay.
    private static readonly TimeSpan s_longestSpunLatency = TimeSpan.FromMicroseconds(50);

    private readonly LoopbackFabric _fabric;
    private readonly INvmRegion _region;
    private readonly LoopbackOptions _options;
    private readonly string _description;

    private volatile bool _disposed;
    private volatile bool _linkUp = true;

    // Written with Interlocked, read plainly on every operation: a plain read is not a Coyote scheduling point, and
    // seeing the failure one operation late is what an asynchronous error completion allows anyway.
    private FabricException? _deferredFailure;

    internal LoopbackConnection(LoopbackFabric fabric, int bladeId, FabricAccess access, string nodeName)
    {
        _fabric = fabric;
        _region = fabric.Region;
        _options = fabric.Options;
        BladeId = bladeId;
        Access = access;
        NodeName = nodeName;
        _description = $"node '{nodeName}' -> blade {bladeId}";
    }

    /// <inheritdoc />
    public int BladeId { get; }

    /// <inheritdoc />
    public long RegionLength => _region.Length;

    /// <inheritdoc />
    public FabricCounters Counters { get; } = new();

    /// <summary>The connecting node's name, as it appears in error messages.</summary>
    public string NodeName { get; }

    /// <summary>The node's registrations: where it may write, update atomically and persist.</summary>
    public FabricAccess Access { get; }

    /// <summary>False while this node's link to the blade is simulated as partitioned (<see cref="SetLinkUp"/>).</summary>
    public bool IsLinkUp => _linkUp;

    /// <summary>True once <see cref="DisposeAsync"/> has run.</summary>
    public bool IsDisposed => _disposed;

    /// <summary>
    /// Simulates a partition between this node and the blade (<c>false</c>) or its healing (<c>true</c>), leaving
    /// other nodes' connections working. Operations fail with <see cref="FabricStatus.Unreachable"/> meanwhile.
    /// </summary>
    public void SetLinkUp(bool up) => _linkUp = up;

    /// <inheritdoc />
    public async ValueTask ReadAsync(long remoteOffset, Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        await BeginVerbAsync(cancellationToken);
        CountWaitedVerb(FabricVerb.Read);
        try
        {
            EnsureInsideRegion(FabricVerb.Read, remoteOffset, destination.Length);
            _region.Read(remoteOffset, destination.Span);
            Counters.CountBytesFromBlade(destination.Length);
        }
        finally
        {
            await WaitForCompletionAsync();
        }
    }

    /// <inheritdoc />
    public async ValueTask WriteAsync(long remoteOffset, ReadOnlyMemory<byte> source, CancellationToken cancellationToken = default)
    {
        await BeginVerbAsync(cancellationToken);
        CountWaitedVerb(FabricVerb.Write);
        try
        {
            ExecuteWrite(remoteOffset, source);
        }
        finally
        {
            await WaitForCompletionAsync();
        }
    }

    /// <inheritdoc />
    public async ValueTask<ulong> FetchAddAsync(long remoteOffset, ulong delta, CancellationToken cancellationToken = default)
    {
        await BeginVerbAsync(cancellationToken);
        CountWaitedVerb(FabricVerb.FetchAdd);
        try
        {
            EnsureAtomicAllowed(FabricVerb.FetchAdd, remoteOffset);
            var previous = _region.FetchAddUInt64(remoteOffset, delta);
            Counters.CountBytesToBlade(AtomicWordBytes);
            Counters.CountBytesFromBlade(AtomicWordBytes);
            return previous;
        }
        finally
        {
            await WaitForCompletionAsync();
        }
    }

    /// <inheritdoc />
    public async ValueTask<ulong> CompareSwapAsync(long remoteOffset, ulong expected, ulong desired, CancellationToken cancellationToken = default)
    {
        await BeginVerbAsync(cancellationToken);
        CountWaitedVerb(FabricVerb.CompareSwap);
        try
        {
            EnsureAtomicAllowed(FabricVerb.CompareSwap, remoteOffset);
            var found = _region.CompareExchangeUInt64(remoteOffset, expected, desired);
            Counters.CountBytesToBlade(CompareSwapOperandBytes);
            Counters.CountBytesFromBlade(AtomicWordBytes);
            return found;
        }
        finally
        {
            await WaitForCompletionAsync();
        }
    }

    /// <inheritdoc />
    public async ValueTask PersistAsync(long remoteOffset, long length, CancellationToken cancellationToken = default)
    {
        await BeginVerbAsync(cancellationToken);
        CountWaitedVerb(FabricVerb.Persist);
        try
        {
            ExecutePersist(remoteOffset, length);
        }
        finally
        {
            await WaitForCompletionAsync();
        }
    }

    /// <inheritdoc />
    public FabricBatch CreateBatch() => new(PostBatchAsync);

    /// <summary>Closes the connection: later operations fail with <see cref="FabricStatus.Unreachable"/>. Idempotent.</summary>
    public ValueTask DisposeAsync()
    {
        _disposed = true;
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public override string ToString() => $"{_description} ({Access})";

    private async ValueTask PostBatchAsync(IReadOnlyList<FabricBatchOperation> operations, bool signaled, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();

        // Posting on a destroyed queue pair fails locally, even unsignaled; an unreachable blade only shows later.
        if (_disposed)
        {
            FabricErrors.ThrowClosed(_description);
        }

        ThrowDeferredFailure();
        if (operations.Count == 0)
        {
            return;
        }

        if (!IsReachableNow())
        {
            var lost = ThrowHelper.CreateUnreachable(_description, _fabric.IsReachable);
            if (signaled)
            {
                throw lost;
            }

            DeferFailure(lost);
            return;
        }

        if (signaled)
        {
            Counters.CountRoundTrip();
        }
        else
        {
            Counters.CountUnsignaledPost();
        }

        var failure = await ExecuteBatchAsync(operations);
        if (!signaled)
        {
            if (failure is not null)
            {
                DeferFailure(failure);
            }

            return;
        }

        await WaitForCompletionAsync();
        if (failure is not null)
        {
            throw failure;
        }
    }

    /// <summary>Runs the verbs in order and stops at the first failure, which it returns instead of throwing so
    /// that an unsignaled post can defer it.</summary>
    private async ValueTask<FabricException?> ExecuteBatchAsync(IReadOnlyList<FabricBatchOperation> operations)
    {
        foreach (var operation in operations)
        {
            if (_options.YieldAtEachVerb)
            {
                await Task.Yield();
            }

            if (_disposed || !IsReachableNow())
            {
                return ThrowHelper.CreateUnreachable(_description, _fabric.IsReachable);
            }

            Counters.CountVerb(operation.Verb);
            try
            {
                switch (operation.Verb)
                {
                    case FabricVerb.Write:
                        ExecuteWrite(operation.RemoteOffset, operation.Source);
                        break;
                    case FabricVerb.Persist:
                        ExecutePersist(operation.RemoteOffset, operation.Length);
                        break;
                    default:
                        FabricErrors.ThrowUnbatchableVerb(operation.Verb);
                        break;
                }
            }
            catch (FabricException failure)
            {
                return failure;
            }
        }

        return null;
    }

    private void ExecuteWrite(long remoteOffset, ReadOnlyMemory<byte> source)
    {
        EnsureWritable(FabricVerb.Write, remoteOffset, source.Length);
        _region.Write(remoteOffset, source.Span);
        Counters.CountBytesToBlade(source.Length);
    }

    private void ExecutePersist(long remoteOffset, long length)
    {
        EnsureWritable(FabricVerb.Persist, remoteOffset, length);
        _region.Persist(remoteOffset, length);
    }

    /// <summary>The checks every single verb passes before it reaches the blade, after the optional scheduling point.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ValueTask BeginVerbAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (_options.YieldAtEachVerb)
        {
            return YieldThenEnsureUsableAsync();
        }

        EnsureUsable();
        return default;
    }

    private async ValueTask YieldThenEnsureUsableAsync()
    {
        // Checked after the yield: whatever other actors did meanwhile (disconnecting the blade, disposing this
        // connection) must decide this verb's fate, as it would for a verb that reaches the NIC later.
        await Task.Yield();
        EnsureUsable();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void EnsureUsable()
    {
        if (_disposed)
        {
            FabricErrors.ThrowClosed(_description);
        }

        if (!IsReachableNow())
        {
            ThrowHelper.ThrowUnreachable(_description, _fabric.IsReachable);
        }

        ThrowDeferredFailure();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool IsReachableNow() => _linkUp && _fabric.IsReachable;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void ThrowDeferredFailure()
    {
        if (_deferredFailure is not null)
        {
            ThrowDeferredFailureSlow();
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowDeferredFailureSlow()
    {
        // Exchange, so that of two racing operations exactly one reports the failure.
        var failure = Interlocked.Exchange(ref _deferredFailure, null);
        if (failure is not null)
        {
            throw FabricErrors.CreateDeferredFailure(_description, failure);
        }
    }

    private void DeferFailure(FabricException failure) =>
        // The first failure is the cause; later ones are its consequences, so keep the first.
        Interlocked.CompareExchange(ref _deferredFailure, failure, null);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void CountWaitedVerb(FabricVerb verb)
    {
        Counters.CountVerb(verb);
        Counters.CountRoundTrip();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void EnsureInsideRegion(FabricVerb verb, long offset, long length)
    {
        // Differences, not offset + length, so that offsets near long.MaxValue cannot wrap into the region.
        if (offset < 0 || length < 0 || offset > _region.Length - length)
        {
            FabricErrors.ThrowOutsideRegion(_description, verb, offset, length, _region.Length);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void EnsureWritable(FabricVerb verb, long offset, long length)
    {
        EnsureInsideRegion(verb, offset, length);
        if (!Access.AllowsWrite(offset, length))
        {
            FabricErrors.ThrowNotWritable(_description, verb, offset, length, Access);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void EnsureAtomicAllowed(FabricVerb verb, long offset)
    {
        EnsureInsideRegion(verb, offset, AtomicWordBytes);
        if ((offset & (AtomicWordBytes - 1)) != 0)
        {
            FabricErrors.ThrowMisaligned(_description, verb, offset);
        }

        if (!Access.AllowsWrite(offset, AtomicWordBytes))
        {
            FabricErrors.ThrowNotWritable(_description, verb, offset, AtomicWordBytes, Access);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ValueTask WaitForCompletionAsync() =>
        _options.RoundTripLatency > TimeSpan.Zero ? WaitForLatencyAsync(_options.RoundTripLatency) : default;

    private static async ValueTask WaitForLatencyAsync(TimeSpan latency)
    {
        var start = Stopwatch.GetTimestamp();
        if (latency > s_longestSpunLatency)
        {
            await Task.Delay(latency);
        }

        // Also finishes a Task.Delay that woke early: timers tick in milliseconds, and a caller must never observe
        // a round trip shorter than the latency it configured.
        while (Stopwatch.GetElapsedTime(start) < latency)
        {
            Thread.SpinWait(20);
        }
    }
}
