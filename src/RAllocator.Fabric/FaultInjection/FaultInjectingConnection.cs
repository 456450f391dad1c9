// Fault model of FaultInjectingConnection
// ========================================
// A decorator around any IFabricConnection. It numbers every call (1 for the first): each single verb and each
// batch post is one operation, whatever the batch holds. Per operation it draws exactly two values from one
// System.Random seeded with FaultInjectionOptions.Seed, whether or not a fault fires, so that the same seed and the
// same sequence of calls always fail the same operations.
//
// Faults it injects, each completing with FabricStatus.InjectedFault:
//  * Chosen operations: every ordinal in FailingOperations fails.
//  * Random operations: any operation fails with probability FailureProbability.
//  * Timing of a fault: BeforeExecution (the verb never reaches the blade: no effect, retry safe), AfterExecution
//    (the verb took effect but its completion was lost: the caller cannot tell a landed write or an applied atomic
//    from one that never ran), or Either (seeded coin per fault).
//  * Crash of the posting node: from DropUnsignaledFromOperation on (or after DropUnsignaledFromNow), unsignaled
//    batches are accepted and silently discarded, as posted-but-unexecuted work requests are when a node dies
//    with them in its send queue. Signaled operations keep working, because whoever waits on a completion is, by
//    definition, still alive to handle it.
//
// An injected fault on an unsignaled batch has no completion to carry it, so, as for a real fabric, the next
// operation through this decorator reports it, once.
//
// What it does not model: corruption (a verb that lands with wrong data), partial batches (a batch fails or
// succeeds whole; the inner connection models partial execution), reordering, and latency; compose with the
// loopback's options for those that exist. Determinism holds for a sequential caller: concurrent callers race for
// ordinals, so which of them gets a given fault depends on the thread schedule (under Coyote, on its seed too).

namespace RAllocator.Fabric.FaultInjection;

/// <summary>
/// Wraps a connection and injects the failures described by <see cref="FaultInjectionOptions"/>, reproducibly from
/// their seed. The fault model is documented at the top of this file.
/// </summary>
/// <remarks>Counters are the inner connection's: a fault before execution costs nothing there, as the verb never
/// left the node. Disposing the decorator disposes the inner connection.</remarks>
public sealed class FaultInjectingConnection : IFabricConnection
{
    // Awaits keep the caller's context (no ConfigureAwait(false)): a decorated simulated fabric must stay under
    // the same scheduler as the fabric it wraps, or systematic tests lose control of the interleavings.

    private readonly IFabricConnection _inner;
    private readonly Random _random;

    // lock(object), not System.Threading.Lock: Coyote models only the former.
    private readonly object _gate = new();
    private long _operationsIssued;
    private long _dropUnsignaledFrom;
    private long _faultsInjected;
    private long _unsignaledBatchesDropped;
    private FabricException? _deferredFailure;

    /// <summary>Wraps <paramref name="inner"/>, injecting the faults <paramref name="options"/> describe.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><see cref="FaultInjectionOptions.FailureProbability"/> is outside [0, 1].</exception>
    public FaultInjectingConnection(IFabricConnection inner, FaultInjectionOptions options)
    {
        ArgumentNullException.ThrowIfNull(inner);
        ArgumentNullException.ThrowIfNull(options);
        // Written so that NaN fails too: it compares false with everything, and would silently inject nothing.
        if (!(options.FailureProbability is >= 0.0 and <= 1.0))
        {
            ThrowHelper.ThrowProbabilityOutOfRange(options.FailureProbability);
        }

        _inner = inner;
        Options = options;
        _random = new Random(options.Seed);
        _dropUnsignaledFrom = options.DropUnsignaledFromOperation ?? long.MaxValue;
    }

    /// <summary>The faults being injected and their seed.</summary>
    public FaultInjectionOptions Options { get; }

    /// <summary>The connection that operations are forwarded to.</summary>
    public IFabricConnection Inner => _inner;

    /// <summary>Operations issued through this decorator so far, failed or not; the next one gets this plus one.</summary>
    public long OperationsIssued
    {
        get { lock (_gate) { return _operationsIssued; } }
    }

    /// <summary>Faults injected so far (drops of unsignaled batches not included).</summary>
    public long FaultsInjected
    {
        get { lock (_gate) { return _faultsInjected; } }
    }

    /// <summary>Unsignaled batches discarded so far as lost in a crash.</summary>
    public long UnsignaledBatchesDropped
    {
        get { lock (_gate) { return _unsignaledBatchesDropped; } }
    }

    /// <inheritdoc />
    public int BladeId => _inner.BladeId;

    /// <inheritdoc />
    public long RegionLength => _inner.RegionLength;

    /// <inheritdoc />
    public FabricCounters Counters => _inner.Counters;

    /// <summary>Simulates the node crashing now: every later unsignaled batch is silently dropped.</summary>
    public void DropUnsignaledFromNow()
    {
        lock (_gate)
        {
            _dropUnsignaledFrom = Math.Min(_dropUnsignaledFrom, _operationsIssued + 1);
        }
    }

    /// <inheritdoc />
    public async ValueTask ReadAsync(long remoteOffset, Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        var injection = Decide(FabricVerb.Read, remoteOffset, destination.Length, cancellationToken);
        injection.ThrowIfBeforeExecution();
        await _inner.ReadAsync(remoteOffset, destination, cancellationToken);
        injection.ThrowIfAfterExecution();
    }

    /// <inheritdoc />
    public async ValueTask WriteAsync(long remoteOffset, ReadOnlyMemory<byte> source, CancellationToken cancellationToken = default)
    {
        var injection = Decide(FabricVerb.Write, remoteOffset, source.Length, cancellationToken);
        injection.ThrowIfBeforeExecution();
        await _inner.WriteAsync(remoteOffset, source, cancellationToken);
        injection.ThrowIfAfterExecution();
    }

    /// <inheritdoc />
    public async ValueTask<ulong> FetchAddAsync(long remoteOffset, ulong delta, CancellationToken cancellationToken = default)
    {
        var injection = Decide(FabricVerb.FetchAdd, remoteOffset, sizeof(ulong), cancellationToken);
        injection.ThrowIfBeforeExecution();
        var previous = await _inner.FetchAddAsync(remoteOffset, delta, cancellationToken);
        injection.ThrowIfAfterExecution();
        return previous;
    }

    /// <inheritdoc />
    public async ValueTask<ulong> CompareSwapAsync(long remoteOffset, ulong expected, ulong desired, CancellationToken cancellationToken = default)
    {
        var injection = Decide(FabricVerb.CompareSwap, remoteOffset, sizeof(ulong), cancellationToken);
        injection.ThrowIfBeforeExecution();
        var found = await _inner.CompareSwapAsync(remoteOffset, expected, desired, cancellationToken);
        injection.ThrowIfAfterExecution();
        return found;
    }

    /// <inheritdoc />
    public async ValueTask PersistAsync(long remoteOffset, long length, CancellationToken cancellationToken = default)
    {
        var injection = Decide(FabricVerb.Persist, remoteOffset, length, cancellationToken);
        injection.ThrowIfBeforeExecution();
        await _inner.PersistAsync(remoteOffset, length, cancellationToken);
        injection.ThrowIfAfterExecution();
    }

    /// <inheritdoc />
    public FabricBatch CreateBatch() => new(PostBatchAsync);

    /// <summary>Disposes the inner connection.</summary>
    public ValueTask DisposeAsync() => _inner.DisposeAsync();

    private async ValueTask PostBatchAsync(IReadOnlyList<FabricBatchOperation> operations, bool signaled, CancellationToken cancellationToken)
    {
        var injection = Decide(signaled, operations.Count, cancellationToken);
        if (injection.Dropped)
        {
            return;
        }

        if (signaled)
        {
            injection.ThrowIfBeforeExecution();
            await ForwardBatch(operations).PostAndWaitAsync(cancellationToken);
            injection.ThrowIfAfterExecution();
            return;
        }

        if (injection.Fault is not null && !injection.AfterExecution)
        {
            DeferFailure(injection.Fault);
            return;
        }

        await ForwardBatch(operations).PostUnsignaled(cancellationToken);
        if (injection.Fault is not null)
        {
            DeferFailure(injection.Fault);
        }
    }

    private FabricBatch ForwardBatch(IReadOnlyList<FabricBatchOperation> operations)
    {
        var batch = _inner.CreateBatch();
        foreach (var operation in operations)
        {
            switch (operation.Verb)
            {
                case FabricVerb.Write:
                    batch.Write(operation.RemoteOffset, operation.Source);
                    break;
                case FabricVerb.Persist:
                    batch.Persist(operation.RemoteOffset, operation.Length);
                    break;
                default:
                    ThrowHelper.ThrowUnbatchableVerb(operation.Verb);
                    break;
            }
        }

        return batch;
    }

    private Injection Decide(FabricVerb verb, long remoteOffset, long length, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var draw = Draw(isUnsignaledBatch: false);
        return draw.Fails
            ? Fault(draw, $"{verb.RdmaName()} of {length} bytes at offset 0x{remoteOffset:x}")
            : default;
    }

    private Injection Decide(bool signaled, int verbs, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var draw = Draw(isUnsignaledBatch: !signaled);
        if (draw.Dropped)
        {
            return new Injection(Fault: null, AfterExecution: false, Dropped: true);
        }

        return draw.Fails
            ? Fault(draw, $"{(signaled ? "signaled" : "unsignaled")} batch of {verbs} verbs")
            : default;
    }

    /// <summary>Numbers the operation and decides its fate; throws an earlier unsignaled batch's failure instead,
    /// since a connection reports that before anything else.</summary>
    private OperationDraw Draw(bool isUnsignaledBatch)
    {
        FabricException? deferred;
        OperationDraw draw;
        lock (_gate)
        {
            var ordinal = ++_operationsIssued;

            // Both values are drawn for every operation, used or not, so that whether one fault fires never shifts
            // the random stream seen by the operations after it.
            var failureDraw = _random.NextDouble();
            var timingDraw = _random.Next(2);

            deferred = _deferredFailure;
            _deferredFailure = null;
            var dropped = deferred is null && isUnsignaledBatch && ordinal >= _dropUnsignaledFrom;
            var fails = deferred is null && !dropped
                && (Options.FailingOperations.Contains(ordinal) || failureDraw < Options.FailureProbability);
            if (dropped)
            {
                _unsignaledBatchesDropped++;
            }

            if (fails)
            {
                _faultsInjected++;
            }

            var afterExecution = Options.Timing switch
            {
                InjectedFaultTiming.AfterExecution => true,
                InjectedFaultTiming.Either => timingDraw == 1,
                _ => false,
            };
            draw = new OperationDraw(ordinal, fails, afterExecution, dropped);
        }

        if (deferred is not null)
        {
            throw ThrowHelper.CreateDeferredFailure(deferred);
        }

        return draw;
    }

    private Injection Fault(OperationDraw draw, string operation) =>
        new(ThrowHelper.CreateInjectedFault(draw.Ordinal, operation, draw.AfterExecution, Options.Seed), draw.AfterExecution, Dropped: false);

    private void DeferFailure(FabricException failure)
    {
        lock (_gate)
        {
            // The first failure is the cause; later ones are its consequences, so keep the first.
            _deferredFailure ??= failure;
        }
    }

    private readonly record struct OperationDraw(long Ordinal, bool Fails, bool AfterExecution, bool Dropped);

    /// <summary>The fate of one operation: no fault (default), a fault before or after execution, or a drop.</summary>
    private readonly record struct Injection(FabricException? Fault, bool AfterExecution, bool Dropped)
    {
        public void ThrowIfBeforeExecution()
        {
            if (Fault is not null && !AfterExecution)
            {
                throw Fault;
            }
        }

        public void ThrowIfAfterExecution()
        {
            if (Fault is not null && AfterExecution)
            {
                throw Fault;
            }
        }
    }
}
