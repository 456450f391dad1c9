using System.Buffers;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using RAllocator.Fabric.Ucx.Interop;

namespace RAllocator.Fabric.Ucx;

/// <summary>
/// A working node's connection to one blade over UCX: READ and WRITE are ucp_get_nbx/ucp_put_nbx, the atomics are
/// 64-bit ucp_atomic_op_nbx, PERSIST is a flush of the endpoint followed by an 8-byte READ of the persisted range.
/// Each connection owns its UCX context, worker and endpoint.
/// </summary>
/// <remarks>
/// <para><b>Threads.</b> The worker is UCS_THREAD_MODE_SERIALIZED and every UCX call happens under one lock on the
/// calling thread: an operation posts, then progresses the worker until its request completes, with no await in
/// between, so no continuation can move a half-finished request to another thread. Every method therefore completes
/// synchronously; concurrent callers on one connection take turns.</para>
/// <para><b>Counting</b> follows <c>LoopbackConnection</c> exactly: an awaited verb counts the verb and one round trip;
/// READ counts its length from the blade, WRITE its length to the blade, FETCH_AND_ADD 8 bytes each way, CMP_AND_SWP
/// 16 to and 8 from, PERSIST none; a signaled batch counts its verbs, their bytes and one round trip; an unsignaled
/// batch its verbs, bytes and one unsignaled post. A verb refused for its range still counts its verb and round trip
/// but no bytes; operations on a disposed or failed connection count nothing.</para>
/// <para><b>Access.</b> Each verb uses the remote key of the one registered range that contains it (a writable one
/// for WRITE, the atomics and PERSIST). Anything no key covers fails with <see cref="FabricStatus.RemoteAccessError"/>
/// before it is sent: over TCP and shared memory UCX itself does not check an address against the key's range (see
/// README.md), so this check is the enforcement there; RDMA hardware enforces the same rule at the blade's NIC.</para>
/// <para><b>Ordering.</b> UCX does not order RMA operations on an endpoint by itself (they may take different lanes),
/// so a batch puts ucp_worker_fence between consecutive verbs, and PERSIST flushes the endpoint, which completes
/// every earlier operation remotely, before its READ.</para>
/// <para><b>Failures.</b> A completion with a UCX error, or no completion within <see cref="UcxOptions.OperationTimeout"/>,
/// fails the operation with <see cref="FabricStatus.Unreachable"/> and leaves the connection failed: later operations
/// fail at once and the caller reconnects. A failing verb ends its batch: later verbs are not posted. An unsignaled
/// batch's failure is reported once, by the next operation. This implementation executes an unsignaled batch before
/// <see cref="FabricBatch.PostUnsignaled"/> returns: it is counted as on hardware (no round trip) but its latency is
/// not hidden from the caller.</para>
/// <para><b>Durability.</b> PERSIST returns once the blade's memory holds the data: that survives the blade process
/// crashing, since the data is in its MAP_SHARED file mapping, but surviving the blade losing power needs persistent
/// memory behind a NIC that implements RDMA FLUSH (or a flush to the persistence domain); UCX over TCP or shared
/// memory places data in the page cache.</para>
/// </remarks>
public sealed unsafe class UcxConnection : IFabricConnection
{
    private const int AtomicWordBytes = sizeof(ulong);
    private const int CompareSwapOperandBytes = 2 * sizeof(ulong);
    private const int PersistProbeBytes = sizeof(ulong);

    // Scratch words the worker writes into: they outlive any request that a timeout abandons.
    private const int ScratchOperand = 0;
    private const int ScratchReply = 8;
    private const int ScratchPersistProbe = 16;
    private const int ScratchEndpointError = 24;
    private const int ScratchBytes = 64;

    private readonly Lock _gate = new();
    private readonly UcxWorkerContext _ucx;
    private readonly RemoteRange[] _ranges;
    private readonly byte* _scratch;
    private readonly long _timeoutTicks;
    private readonly string _description;
    private readonly bool _peerFailureDetection;
    private readonly List<MemoryHandle> _abandonedPins = [];
    private nint _endpoint;
    private bool _disposed;
    private FabricException? _failure;
    private FabricException? _deferredFailure;

    private UcxConnection(int bladeId, UcxConnectionInfo blade, string nodeName, UcxOptions options)
    {
        BladeId = bladeId;
        RegionLength = blade.RegionLength;
        NodeName = nodeName;
        Access = blade.Access;
        Options = options;
        _description = $"node '{nodeName}' -> blade {bladeId} (UCX)";
        _timeoutTicks = (long)(options.OperationTimeout.TotalSeconds * Stopwatch.Frequency);
        _peerFailureDetection = options.UsesPeerFailureDetection;
        _ranges = new RemoteRange[blade.Ranges.Count];
        _ucx = UcxWorkerContext.Create(options, Ucp.UCP_FEATURE_RMA | Ucp.UCP_FEATURE_AMO64, $"rallocator-node-{nodeName}");
        _scratch = (byte*)NativeMemory.AlignedAlloc(ScratchBytes, ScratchBytes);
        NativeMemory.Clear(_scratch, ScratchBytes);
    }

    /// <inheritdoc />
    public int BladeId { get; }

    /// <inheritdoc />
    public long RegionLength { get; }

    /// <inheritdoc />
    public FabricCounters Counters { get; } = new();

    /// <summary>The connecting node's name, as it appears in error messages.</summary>
    public string NodeName { get; }

    /// <summary>Where this node may write, update atomically and persist: the writable ranges the blade registered.</summary>
    public FabricAccess Access { get; }

    /// <summary>The configuration of this connection's context.</summary>
    public UcxOptions Options { get; }

    /// <summary>
    /// Connects to the blade that produced <paramref name="blade"/> (<see cref="UcxNodeRegistration.ConnectionInfo"/>,
    /// received through <see cref="UcxConnectionInfo.FromBytes"/>) and waits until the endpoint is wired up.
    /// </summary>
    /// <param name="bladeId">The blade's index in this node's blade list, reported as <see cref="BladeId"/>.</param>
    /// <param name="blade">The blade's worker address, region length and this node's registrations.</param>
    /// <param name="nodeName">Names the node in error messages.</param>
    /// <param name="options">Transports and timeouts; they must let this node reach the blade's worker.</param>
    /// <exception cref="UcxUnavailableException">UCX is not installed.</exception>
    /// <exception cref="UcxException">UCX refused to create this node's context or worker, or to unpack a key.</exception>
    /// <exception cref="FabricException">No endpoint to the blade could be created, or the blade did not answer within
    /// <see cref="UcxOptions.OperationTimeout"/> (<see cref="FabricStatus.Unreachable"/>).</exception>
    public static UcxConnection Connect(int bladeId, UcxConnectionInfo blade, string nodeName, UcxOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(blade);
        ArgumentNullException.ThrowIfNull(nodeName);
        options ??= new UcxOptions();
        options.Validate();
        UcxAvailability.EnsureAvailable();

        var connection = new UcxConnection(bladeId, blade, nodeName, options);
        try
        {
            connection.Open(blade);
            return connection;
        }
        catch
        {
            connection.DisposeCore();
            throw;
        }
    }

    /// <inheritdoc />
    public ValueTask ReadAsync(long remoteOffset, Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        try
        {
            cancellationToken.ThrowIfCancellationRequested();
            lock (_gate)
            {
                EnsureUsableLocked();
                CountWaitedVerb(FabricVerb.Read);
                EnsureInsideRegion(FabricVerb.Read, remoteOffset, destination.Length);
                var range = FindRange(remoteOffset, destination.Length, writable: false)
                    ?? throw new FabricException(FabricStatus.RemoteAccessError, $"{_description}: READ at offset 0x{remoteOffset:x}: the blade granted no readable key covering it.");
                if (destination.Length > 0)
                {
                    using var pin = destination.Pin();
                    var parameters = default(Ucp.RequestParams);
                    var request = Ucp.ucp_get_nbx(_endpoint, pin.Pointer, (nuint)destination.Length, range.AddressOf(remoteOffset), range.Key, &parameters);
                    CompleteOrThrow(FabricVerb.Read, request, pin);
                }

                Counters.CountBytesFromBlade(destination.Length);
            }

            return default;
        }
        catch (Exception failure)
        {
            return Failed(failure, cancellationToken);
        }
    }

    /// <inheritdoc />
    public ValueTask WriteAsync(long remoteOffset, ReadOnlyMemory<byte> source, CancellationToken cancellationToken = default)
    {
        try
        {
            cancellationToken.ThrowIfCancellationRequested();
            lock (_gate)
            {
                EnsureUsableLocked();
                CountWaitedVerb(FabricVerb.Write);
                WriteLocked(remoteOffset, source);

                // A put completes locally once its buffer may be reused; the caller of a single WRITE waits for the
                // blade, so flush the endpoint: that is the completion an RC queue pair's ACK gives.
                FlushLocked(FabricVerb.Write);
            }

            return default;
        }
        catch (Exception failure)
        {
            return Failed(failure, cancellationToken);
        }
    }

    /// <inheritdoc />
    public ValueTask<ulong> FetchAddAsync(long remoteOffset, ulong delta, CancellationToken cancellationToken = default)
    {
        try
        {
            cancellationToken.ThrowIfCancellationRequested();
            lock (_gate)
            {
                EnsureUsableLocked();
                CountWaitedVerb(FabricVerb.FetchAdd);
                var range = FindAtomicRange(FabricVerb.FetchAdd, remoteOffset);
                *(ulong*)(_scratch + ScratchOperand) = delta;
                var previous = AtomicLocked(FabricVerb.FetchAdd, Ucp.UCP_ATOMIC_OP_ADD, range, remoteOffset);
                Counters.CountBytesToBlade(AtomicWordBytes);
                Counters.CountBytesFromBlade(AtomicWordBytes);
                return ValueTask.FromResult(previous);
            }
        }
        catch (Exception failure)
        {
            return Failed<ulong>(failure, cancellationToken);
        }
    }

    /// <inheritdoc />
    public ValueTask<ulong> CompareSwapAsync(long remoteOffset, ulong expected, ulong desired, CancellationToken cancellationToken = default)
    {
        try
        {
            cancellationToken.ThrowIfCancellationRequested();
            lock (_gate)
            {
                EnsureUsableLocked();
                CountWaitedVerb(FabricVerb.CompareSwap);
                var range = FindAtomicRange(FabricVerb.CompareSwap, remoteOffset);

                // UCP_ATOMIC_OP_CSWAP: the buffer holds the value to compare with, the reply buffer the value to
                // store, and receives the value found.
                *(ulong*)(_scratch + ScratchOperand) = expected;
                *(ulong*)(_scratch + ScratchReply) = desired;
                var found = AtomicLocked(FabricVerb.CompareSwap, Ucp.UCP_ATOMIC_OP_CSWAP, range, remoteOffset);
                Counters.CountBytesToBlade(CompareSwapOperandBytes);
                Counters.CountBytesFromBlade(AtomicWordBytes);
                return ValueTask.FromResult(found);
            }
        }
        catch (Exception failure)
        {
            return Failed<ulong>(failure, cancellationToken);
        }
    }

    /// <inheritdoc />
    public ValueTask PersistAsync(long remoteOffset, long length, CancellationToken cancellationToken = default)
    {
        try
        {
            cancellationToken.ThrowIfCancellationRequested();
            lock (_gate)
            {
                EnsureUsableLocked();
                CountWaitedVerb(FabricVerb.Persist);
                PersistLocked(remoteOffset, length);
            }

            return default;
        }
        catch (Exception failure)
        {
            return Failed(failure, cancellationToken);
        }
    }

    /// <inheritdoc />
    public FabricBatch CreateBatch() => new(PostBatch);

    /// <summary>Closes the endpoint and releases the worker and context: later operations fail with
    /// <see cref="FabricStatus.Unreachable"/>. Waits at most <see cref="UcxOptions.OperationTimeout"/> for the blade. Idempotent.</summary>
    public ValueTask DisposeAsync()
    {
        DisposeCore();
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public override string ToString() => $"{_description} ({Access})";

    private void Open(UcxConnectionInfo blade)
    {
        lock (_gate)
        {
            var name = Encoding.UTF8.GetBytes(_description + "\0");
            fixed (byte* address = blade.WorkerAddress)
            fixed (byte* namePointer = name)
            {
                var parameters = new Ucp.EndpointParams
                {
                    FieldMask = Ucp.UCP_EP_PARAM_FIELD_REMOTE_ADDRESS | Ucp.UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE | Ucp.UCP_EP_PARAM_FIELD_NAME,
                    Address = address,
                    ErrorMode = _peerFailureDetection ? Ucp.UCP_ERR_HANDLING_MODE_PEER : Ucp.UCP_ERR_HANDLING_MODE_NONE,
                    Name = namePointer,
                };
                if (_peerFailureDetection)
                {
                    parameters.FieldMask |= Ucp.UCP_EP_PARAM_FIELD_ERR_HANDLER;
                    parameters.ErrorHandler = &OnEndpointError;
                    parameters.ErrorHandlerArgument = _scratch + ScratchEndpointError;
                }

                nint endpoint;
                var created = Ucp.ucp_ep_create(_ucx.Worker, &parameters, &endpoint);
                if (created != Ucs.UCS_OK)
                {
                    // Typically no transport of this node reaches any in the blade's address (a blade that is gone
                    // over TCP, or transports that do not match): the blade is unreachable from here.
                    throw UcxThrowHelper.CreateFailed(_description, verb: null, $"ucp_ep_create failed: UCX reported {Ucs.StatusString(created)}; check that both sides enable a common transport ({Options.Transports ?? "UCX default"} here).");
                }

                _endpoint = endpoint;
            }

            for (var i = 0; i < _ranges.Length; i++)
            {
                var range = blade.Ranges[i];
                nint key;
                fixed (byte* packed = range.PackedRemoteKey)
                {
                    UcxException.ThrowIfFailed(Ucp.ucp_ep_rkey_unpack(_endpoint, packed, &key), $"ucp_ep_rkey_unpack({range.Range})");
                }

                _ranges[i] = new RemoteRange(range.Offset, range.Length, range.Writable, range.RemoteAddress, key);
            }

            // Wires the endpoint up now, so a blade that cannot be reached fails the connect, not the first verb.
            var flushParams = default(Ucp.RequestParams);
            var outcome = Wait(Ucp.ucp_ep_flush_nbx(_endpoint, &flushParams), out var status);
            if (outcome != RequestOutcome.Completed)
            {
                throw _failure!;
            }

            if (status != Ucs.UCS_OK)
            {
                throw UcxThrowHelper.CreateFailed(_description, verb: null, $"connecting to the blade failed: UCX reported {Ucs.StatusString(status)}.");
            }
        }
    }

    private void PostBatch(IReadOnlyList<FabricBatchOperation> operations, bool signaled)
    {
        lock (_gate)
        {
            // Posting on a destroyed queue pair fails locally, even unsignaled.
            EnsureUsableLocked();
            if (operations.Count == 0)
            {
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

            FabricException? failure = null;
            for (var i = 0; i < operations.Count && failure is null; i++)
            {
                var operation = operations[i];
                Counters.CountVerb(operation.Verb);
                try
                {
                    if (i > 0)
                    {
                        FenceLocked(operation.Verb);
                    }

                    switch (operation.Verb)
                    {
                        case FabricVerb.Write:
                            WriteLocked(operation.RemoteOffset, operation.Source);
                            break;
                        case FabricVerb.Persist:
                            PersistLocked(operation.RemoteOffset, operation.Length);
                            break;
                        default:
                            FabricErrors.ThrowUnbatchableVerb(operation.Verb);
                            break;
                    }
                }
                catch (FabricException verbFailure)
                {
                    failure = verbFailure;
                }
            }

            // The batch's completion means its writes reached the blade, as the last WQE's completion does; a verb
            // refused midway still leaves the verbs before it executed, so they are flushed to the blade as well.
            var endsWithPersist = failure is null && operations[^1].Verb == FabricVerb.Persist;
            if (_failure is null && !endsWithPersist)
            {
                try
                {
                    FlushLocked(operations[^1].Verb);
                }
                catch (FabricException flushFailure)
                {
                    failure ??= flushFailure;
                }
            }

            if (failure is null)
            {
                return;
            }

            if (signaled)
            {
                throw failure;
            }

            // The first failure is the cause; later ones are its consequences, so keep the first.
            _deferredFailure ??= failure;
        }
    }

    private ValueTask PostBatch(IReadOnlyList<FabricBatchOperation> operations, bool signaled, CancellationToken cancellationToken)
    {
        try
        {
            cancellationToken.ThrowIfCancellationRequested();
            PostBatch(operations, signaled);
            return default;
        }
        catch (Exception failure)
        {
            return Failed(failure, cancellationToken);
        }
    }

    private void WriteLocked(long remoteOffset, ReadOnlyMemory<byte> source)
    {
        var range = FindWritableRange(FabricVerb.Write, remoteOffset, source.Length);
        if (source.Length > 0)
        {
            var pin = source.Pin();
            var parameters = default(Ucp.RequestParams);
            var request = Ucp.ucp_put_nbx(_endpoint, pin.Pointer, (nuint)source.Length, range.AddressOf(remoteOffset), range.Key, &parameters);
            CompleteOrThrow(FabricVerb.Write, request, pin);
        }

        Counters.CountBytesToBlade(source.Length);
    }

    private void PersistLocked(long remoteOffset, long length)
    {
        var range = FindWritableRange(FabricVerb.Persist, remoteOffset, length);

        // Remote completion of every earlier operation on the endpoint, then a READ of the range: the read-after-write
        // flush emulation of RDMA verbs, which returns only after the blade's memory holds the earlier writes.
        FlushLocked(FabricVerb.Persist);
        var probeBytes = (int)Math.Min(length, PersistProbeBytes);
        if (probeBytes > 0)
        {
            var parameters = default(Ucp.RequestParams);
            var request = Ucp.ucp_get_nbx(_endpoint, _scratch + ScratchPersistProbe, (nuint)probeBytes, range.AddressOf(remoteOffset), range.Key, &parameters);
            CompleteOrThrow(FabricVerb.Persist, request, default);
        }
    }

    private ulong AtomicLocked(FabricVerb verb, int opcode, RemoteRange range, long remoteOffset)
    {
        var parameters = new Ucp.RequestParams
        {
            OpAttrMask = Ucp.UCP_OP_ATTR_FIELD_DATATYPE | Ucp.UCP_OP_ATTR_FIELD_REPLY_BUFFER,
            Datatype = Ucp.DatatypeContiguous8,
            ReplyBuffer = _scratch + ScratchReply,
        };
        var request = Ucp.ucp_atomic_op_nbx(_endpoint, opcode, _scratch + ScratchOperand, 1, range.AddressOf(remoteOffset), range.Key, &parameters);
        CompleteOrThrow(verb, request, default);
        return *(ulong*)(_scratch + ScratchReply);
    }

    private void FlushLocked(FabricVerb verb)
    {
        var parameters = default(Ucp.RequestParams);
        CompleteOrThrow(verb, Ucp.ucp_ep_flush_nbx(_endpoint, &parameters), default);
    }

    private void FenceLocked(FabricVerb verb)
    {
        var status = Ucp.ucp_worker_fence(_ucx.Worker);
        if (status != Ucs.UCS_OK)
        {
            throw Fail(UcxThrowHelper.CreateFailed(_description, verb, $"ucp_worker_fence reported {Ucs.StatusString(status)}."));
        }
    }

    /// <summary>Waits for <paramref name="request"/>; releases <paramref name="pin"/> unless UCX may still use the buffer.</summary>
    private void CompleteOrThrow(FabricVerb verb, nint request, MemoryHandle pin)
    {
        var outcome = Wait(request, out var status);
        if (outcome == RequestOutcome.Abandoned)
        {
            // The blade may still answer into the buffer: keep it pinned until the worker is destroyed.
            _abandonedPins.Add(pin);
        }
        else
        {
            pin.Dispose();
        }

        if (outcome != RequestOutcome.Completed)
        {
            throw _failure!;
        }

        if (status != Ucs.UCS_OK)
        {
            var endpointError = *(sbyte*)(_scratch + ScratchEndpointError);
            var detail = endpointError != Ucs.UCS_OK && endpointError != status
                ? $" (endpoint error: {Ucs.StatusString(endpointError)})"
                : "";
            throw Fail(UcxThrowHelper.CreateFailed(_description, verb, $"UCX reported {Ucs.StatusString(status)}{detail}; the blade is unreachable."));
        }
    }

    /// <summary>Progresses the worker until <paramref name="request"/> completes or the timeout expires.</summary>
    private RequestOutcome Wait(nint request, out sbyte status)
    {
        status = Ucs.UCS_OK;
        if (request == 0)
        {
            return RequestOutcome.Completed;
        }

        if (Ucs.PointerIsError(request))
        {
            status = Ucs.PointerStatus(request);
            return RequestOutcome.Completed;
        }

        var deadline = Stopwatch.GetTimestamp() + _timeoutTicks;
        var spinner = default(SpinWait);
        while (true)
        {
            status = Ucp.ucp_request_check_status(request);
            if (status != Ucs.UCS_INPROGRESS)
            {
                Ucp.ucp_request_free(request);
                return RequestOutcome.Completed;
            }

            if (Ucp.ucp_worker_progress(_ucx.Worker) != 0)
            {
                continue;
            }

            if (Stopwatch.GetTimestamp() > deadline)
            {
                break;
            }

            // Yield rather than sleep: a blade progress thread in this process may need the core.
            spinner.SpinOnce(sleep1Threshold: -1);
        }

        Fail(UcxThrowHelper.CreateFailed(_description, verb: null,
            $"no completion from the blade within {Options.OperationTimeout.TotalSeconds:0.###} s; the blade is unreachable."));
        return RequestOutcome.Abandoned;
    }

    private FabricException Fail(FabricException failure)
    {
        _failure ??= failure;
        return failure;
    }

    private void EnsureUsableLocked()
    {
        if (_disposed)
        {
            FabricErrors.ThrowClosed(_description);
        }

        if (_deferredFailure is { } deferred)
        {
            _deferredFailure = null;
            throw FabricErrors.CreateDeferredFailure(_description, deferred);
        }

        if (_failure is { } failure)
        {
            throw UcxThrowHelper.CreateBroken(_description, failure);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void CountWaitedVerb(FabricVerb verb)
    {
        Counters.CountVerb(verb);
        Counters.CountRoundTrip();
    }

    private void EnsureInsideRegion(FabricVerb verb, long offset, long length)
    {
        // Differences, not offset + length, so that offsets near long.MaxValue cannot wrap into the region.
        if (offset < 0 || length < 0 || offset > RegionLength - length)
        {
            FabricErrors.ThrowOutsideRegion(_description, verb, offset, length, RegionLength);
        }
    }

    private RemoteRange FindWritableRange(FabricVerb verb, long offset, long length)
    {
        EnsureInsideRegion(verb, offset, length);
        var range = FindRange(offset, length, writable: true);
        if (range is null)
        {
            FabricErrors.ThrowNotWritable(_description, verb, offset, length, Access);
        }

        return range;
    }

    private RemoteRange FindAtomicRange(FabricVerb verb, long offset)
    {
        EnsureInsideRegion(verb, offset, AtomicWordBytes);
        if ((offset & (AtomicWordBytes - 1)) != 0)
        {
            FabricErrors.ThrowMisaligned(_description, verb, offset);
        }

        return FindWritableRange(verb, offset, AtomicWordBytes);
    }

    private RemoteRange? FindRange(long offset, long length, bool writable)
    {
        foreach (var range in _ranges)
        {
            if ((range.Writable || !writable) && range.Range.Contains(offset, length))
            {
                return range;
            }
        }

        return null;
    }

    private void DisposeCore()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            foreach (var range in _ranges)
            {
                // The keys go before the endpoint they were unpacked on (ucp.h requires it).
                if (range is not null)
                {
                    Ucp.ucp_rkey_destroy(range.Key);
                }
            }

            CloseEndpointLocked();
            _ucx.Dispose();

            // The worker is gone, so nothing can write into abandoned buffers any more.
            foreach (var pin in _abandonedPins)
            {
                pin.Dispose();
            }

            _abandonedPins.Clear();
            NativeMemory.AlignedFree(_scratch);
        }
    }

    private void CloseEndpointLocked()
    {
        if (_endpoint == 0)
        {
            return;
        }

        var endpoint = _endpoint;
        _endpoint = 0;
        if (_failure is not null && !_peerFailureDetection)
        {
            // A forced close needs peer error handling on both sides, and a flushing close would wait on the blade
            // that already failed to answer: leave the endpoint to ucp_worker_destroy.
            return;
        }

        var parameters = new Ucp.RequestParams
        {
            OpAttrMask = Ucp.UCP_OP_ATTR_FIELD_FLAGS,
            Flags = _failure is null ? 0 : Ucp.UCP_EP_CLOSE_FLAG_FORCE,
        };

        // A blade that stops answering while we close leaves the request to the worker's destruction.
        Wait(Ucp.ucp_ep_close_nbx(endpoint, &parameters), out _);
    }

    private static ValueTask Failed(Exception failure, CancellationToken cancellationToken) =>
        failure is OperationCanceledException && cancellationToken.IsCancellationRequested
            ? ValueTask.FromCanceled(cancellationToken)
            : ValueTask.FromException(failure);

    private static ValueTask<T> Failed<T>(Exception failure, CancellationToken cancellationToken) =>
        failure is OperationCanceledException && cancellationToken.IsCancellationRequested
            ? ValueTask.FromCanceled<T>(cancellationToken)
            : ValueTask.FromException<T>(failure);

    [UnmanagedCallersOnly]
    private static void OnEndpointError(void* argument, nint endpoint, sbyte status) =>
        // Runs inside ucp_worker_progress on the thread holding the gate; the failing request reports the failure.
        *(sbyte*)argument = status;

    private enum RequestOutcome
    {
        Completed,
        Abandoned,
    }

    private sealed class RemoteRange(long offset, long length, bool writable, ulong remoteAddress, nint key)
    {
        public FabricRange Range { get; } = new(offset, length);

        public bool Writable { get; } = writable;

        public nint Key { get; } = key;

        public ulong AddressOf(long offset) => remoteAddress + (ulong)(offset - Range.Offset);
    }
}
