using System.Diagnostics;
using System.Net.Sockets;
using RAllocator.Fabric.Verbs.Interop;
using static RAllocator.Fabric.Verbs.Interop.IbVerbs;

namespace RAllocator.Fabric.Verbs;

/// <summary>
/// A working node's RC queue pair to one blade exported by <see cref="VerbsBladeExporter"/>: one-sided READ, WRITE,
/// ATOMIC_FETCH_AND_ADD and ATOMIC_CMP_AND_SWP, with PERSIST as a read-after-write (rdma-core 44 has no IBV_WR_FLUSH).
/// </summary>
/// <remarks>
/// <para><b>Counting</b> follows <c>LoopbackConnection</c>: an awaited verb counts its verb and one round trip; payload
/// bytes as there (READ from, WRITE to, FETCH_AND_ADD 8+8, CMP_AND_SWP 16 to and 8 from, PERSIST none); a signaled batch
/// counts its verbs, bytes and one round trip; an unsignaled one its verbs, bytes and one unsignaled post. A verb that
/// fails the checks a NIC makes (outside the region, outside this node's registrations, misaligned atomic) counts its
/// verb and round trip and no bytes; on a closed connection nothing is counted. Batch verbs are counted when posted.</para>
/// <para><b>Checks before posting.</b> The registrations (rkeys) this node received decide which work request may be
/// built at all: a WRITE, atomic or PERSIST outside every writable range, or anything outside the region, is refused
/// locally with <see cref="FabricStatus.RemoteAccessError"/>, exactly as the loopback refuses it, instead of putting
/// the queue pair into the error state. A misaligned atomic is <see cref="FabricStatus.RemoteAlignmentError"/>.</para>
/// <para><b>Failures.</b> An error completion is mapped by <see cref="VerbsCompletionStatus"/>. It leaves an RC queue
/// pair in the error state, so every later operation fails with <see cref="FabricStatus.Unreachable"/>: connect again.
/// An unsignaled batch's error completion is reported by the next operation, once, as the loopback does.</para>
/// <para><b>Threading.</b> Operations are serialized per connection (one post-and-poll at a time, polled on the
/// caller's thread with no await in between), which keeps the staging buffer and work-request array single-owner.</para>
/// </remarks>
public sealed class VerbsConnection : IFabricConnection
{
    private const ulong HousekeepingWrId = ulong.MaxValue;
    private const int ScratchBytes = 64;
    private const int PollBatch = 16;

    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly VerbsOptions _options;
    private readonly VerbsDeviceContext _device;
    private readonly VerbsQueuePair _qp;
    private readonly StagingBuffer _buffer;
    private readonly int _stagingData;
    private readonly TcpClient _control;
    private readonly VerbsWelcome _welcome;
    private readonly string _description;

    private ulong _nextWrId;
    private int _stagingCursor;
    private int _unsignaledOutstanding;
    private FabricException? _deferredFailure;
    private FabricException? _broken;
    private bool _disposed;

    private VerbsConnection(VerbsOptions options, VerbsDeviceContext device, VerbsQueuePair qp, StagingBuffer buffer, TcpClient control, VerbsWelcome welcome, int bladeId, uint nodeId)
    {
        _options = options;
        _device = device;
        _qp = qp;
        _buffer = buffer;
        _stagingData = options.StagingBytes - ScratchBytes;
        _control = control;
        _welcome = welcome;
        BladeId = bladeId;
        Access = new FabricAccess([.. welcome.WritableRanges.Select(r => new FabricRange(r.Offset, r.Length))]);
        _description = $"node {nodeId} -> blade {bladeId} over {device.Name} (qp {qp.Address.QpNumber} -> {welcome.Blade.QpNumber})";
    }

    /// <inheritdoc />
    public int BladeId { get; }

    /// <inheritdoc />
    public long RegionLength => _welcome.RegionLength;

    /// <inheritdoc />
    public FabricCounters Counters { get; } = new();

    /// <summary>The registrations the blade granted this node.</summary>
    public FabricAccess Access { get; }

    /// <summary>
    /// Opens the local device, creates an RC queue pair, exchanges addresses and rkeys with the blade's
    /// <see cref="VerbsBladeExporter"/> at <paramref name="host"/>:<paramref name="port"/> and connects the pair.
    /// </summary>
    /// <exception cref="FabricException">No usable device (the message is <see cref="VerbsDevices.Probe()"/>'s), the blade
    /// refused, or a verbs call failed.</exception>
    public static async Task<VerbsConnection> ConnectAsync(string host, int port, int bladeId, uint nodeId, VerbsOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new VerbsOptions();
        options.Validate();
        var device = VerbsDeviceContext.Open(options);
        VerbsQueuePair? qp = null;
        StagingBuffer? buffer = null;
        var control = new TcpClient { NoDelay = true };
        try
        {
            qp = VerbsQueuePair.Create(device, options.SendQueueDepth);
            buffer = new StagingBuffer(device, options);

            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(options.HandshakeTimeout);
            await control.ConnectAsync(host, port, timeout.Token).ConfigureAwait(false);
            var stream = control.GetStream();
            await VerbsHandshake.WriteAsync(stream, VerbsHandshake.EncodeHello(new VerbsHello(nodeId, qp.Address)), timeout.Token).ConfigureAwait(false);
            var welcome = await VerbsHandshake.ReadWelcomeAsync(stream, timeout.Token).ConfigureAwait(false);

            // The node's QP grants the blade nothing: every verb is the node's, one-sided.
            qp.Connect(welcome.Blade, 0);
            return new VerbsConnection(options, device, qp, buffer, control, welcome, bladeId, nodeId);
        }
        catch
        {
            control.Dispose();
            buffer?.Dispose();
            qp?.Dispose();
            device.Dispose();
            throw;
        }
    }

    /// <inheritdoc />
    public async ValueTask ReadAsync(long remoteOffset, Memory<byte> destination, CancellationToken cancellationToken = default) =>
        await RunAsync(FabricVerb.Read, cancellationToken, () => ExecuteRead(remoteOffset, destination.Span)).ConfigureAwait(false);

    /// <inheritdoc />
    public async ValueTask WriteAsync(long remoteOffset, ReadOnlyMemory<byte> source, CancellationToken cancellationToken = default) =>
        await RunAsync(FabricVerb.Write, cancellationToken, () => ExecuteWrite(remoteOffset, source.Span)).ConfigureAwait(false);

    /// <inheritdoc />
    public ValueTask<ulong> FetchAddAsync(long remoteOffset, ulong delta, CancellationToken cancellationToken = default) =>
        RunAsync(FabricVerb.FetchAdd, cancellationToken, () => ExecuteAtomic(FabricVerb.FetchAdd, remoteOffset, delta, 0));

    /// <inheritdoc />
    public ValueTask<ulong> CompareSwapAsync(long remoteOffset, ulong expected, ulong desired, CancellationToken cancellationToken = default) =>
        RunAsync(FabricVerb.CompareSwap, cancellationToken, () => ExecuteAtomic(FabricVerb.CompareSwap, remoteOffset, expected, desired));

    /// <inheritdoc />
    public async ValueTask PersistAsync(long remoteOffset, long length, CancellationToken cancellationToken = default) =>
        await RunAsync(FabricVerb.Persist, cancellationToken, () => ExecutePersist(remoteOffset, length)).ConfigureAwait(false);

    /// <inheritdoc />
    public FabricBatch CreateBatch() => new(PostBatchAsync);

    /// <summary>Destroys the queue pair and closes the control connection (the blade then revokes this node's rkeys). Idempotent.</summary>
    public async ValueTask DisposeAsync()
    {
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            _control.Dispose();
            _qp.Dispose();
            _buffer.Dispose();
            _device.Dispose();
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc />
    public override string ToString() => $"{_description} ({Access})";

    private unsafe ulong ScratchAddress => (ulong)(StagingBase + _stagingData);

    private unsafe ibv_send_wr* Wrs => _buffer.Wrs;

    private unsafe ibv_sge* Sges => _buffer.Sges;

    private unsafe byte* StagingBase => _buffer.Base;

    private unsafe ulong ExecuteRead(long remoteOffset, Span<byte> destination)
    {
        EnsureInsideRegion(FabricVerb.Read, remoteOffset, destination.Length);
        for (int done = 0; done < destination.Length;)
        {
            int chunk = Math.Min(destination.Length - done, _stagingData);
            var (address, offset) = Stage(chunk);
            VerbsWorkRequests.Read(Wrs, Sges, NextWrId(), address, (uint)chunk, _buffer.Lkey, RemoteAddress(remoteOffset + done), _welcome.ReadRkey, signaled: true);
            PostAndWait(1, FabricVerb.Read);
            new ReadOnlySpan<byte>(StagingBase + offset, chunk).CopyTo(destination[done..]);
            done += chunk;
        }

        Counters.CountBytesFromBlade(destination.Length);
        return 0;
    }

    private unsafe ulong ExecuteWrite(long remoteOffset, ReadOnlySpan<byte> source)
    {
        uint rkey = WritableRkey(FabricVerb.Write, remoteOffset, source.Length);
        int done = 0;
        do
        {
            // A zero-length write still goes out once: it is a verb the caller asked for and counts as one.
            int chunk = Math.Min(source.Length - done, _stagingData);
            var (address, offset) = Stage(chunk);
            source.Slice(done, chunk).CopyTo(new Span<byte>(StagingBase + offset, chunk));
            VerbsWorkRequests.Write(Wrs, Sges, NextWrId(), address, (uint)chunk, _buffer.Lkey, RemoteAddress(remoteOffset + done), rkey, signaled: true, inline: chunk <= _qp.MaxInlineData);
            PostAndWait(1, FabricVerb.Write);
            done += chunk;
        }
        while (done < source.Length);

        Counters.CountBytesToBlade(source.Length);
        return 0;
    }

    private unsafe ulong ExecuteAtomic(FabricVerb verb, long remoteOffset, ulong operand, ulong swap)
    {
        uint rkey = AtomicRkey(verb, remoteOffset);
        if (verb == FabricVerb.FetchAdd)
        {
            VerbsWorkRequests.FetchAdd(Wrs, Sges, NextWrId(), ScratchAddress, _buffer.Lkey, RemoteAddress(remoteOffset), rkey, operand, signaled: true);
        }
        else
        {
            VerbsWorkRequests.CompareSwap(Wrs, Sges, NextWrId(), ScratchAddress, _buffer.Lkey, RemoteAddress(remoteOffset), rkey, operand, swap, signaled: true);
        }

        PostAndWait(1, verb);
        Counters.CountBytesToBlade(verb == FabricVerb.FetchAdd ? sizeof(ulong) : 2 * sizeof(ulong));
        Counters.CountBytesFromBlade(sizeof(ulong));
        return *(ulong*)(StagingBase + _stagingData);
    }

    private unsafe ulong ExecutePersist(long remoteOffset, long length)
    {
        WritableRkey(FabricVerb.Persist, remoteOffset, length);
        BuildPersist(Wrs, Sges, remoteOffset, length, signaled: true);
        PostAndWait(1, FabricVerb.Persist);
        return 0;
    }

    private async ValueTask<ulong> RunAsync(FabricVerb verb, CancellationToken cancellationToken, Func<ulong> execute)
    {
        cancellationToken.ThrowIfCancellationRequested();
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            EnsureUsable();
            Counters.CountVerb(verb);
            Counters.CountRoundTrip();
            return execute();
        }
        finally
        {
            _gate.Release();
        }
    }

    private async ValueTask PostBatchAsync(IReadOnlyList<FabricBatchOperation> operations, bool signaled, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            PostBatchUnsynchronized(operations, signaled);
        }
        finally
        {
            _gate.Release();
        }
    }

    private unsafe void PostBatchUnsynchronized(IReadOnlyList<FabricBatchOperation> operations, bool signaled)
    {
        EnsureUsable();
        if (operations.Count == 0)
        {
            return;
        }

        if (operations.Count > _options.SendQueueDepth / 2)
        {
            throw new ArgumentOutOfRangeException(nameof(operations), $"a batch of {operations.Count} verbs exceeds half the send queue ({_options.SendQueueDepth})");
        }

        // Checked as a whole before anything is posted: a refused verb ends the batch, and the loopback executes the
        // verbs before it; here they are not posted either, which a caller cannot tell apart for writes not yet persisted.
        long stagingNeeded = operations.Where(o => o.Verb == FabricVerb.Write).Sum(o => (long)o.Source.Length);
        if (stagingNeeded > _stagingData)
        {
            throw new ArgumentOutOfRangeException(nameof(operations), $"a batch writing {stagingNeeded} bytes exceeds the {_stagingData}-byte staging buffer");
        }

        // Harvest completions first, so an earlier unsignaled failure is reported here, once, as the loopback does.
        DrainCompletions();
        ThrowDeferredFailure();

        bool signal = signaled || _unsignaledOutstanding + operations.Count >= _options.SignalInterval;
        EnsureStaging((int)stagingNeeded + (8 * operations.Count));

        if (signaled)
        {
            Counters.CountRoundTrip();
        }
        else
        {
            Counters.CountUnsignaledPost();
        }

        for (int i = 0; i < operations.Count; i++)
        {
            var operation = operations[i];
            Counters.CountVerb(operation.Verb);
            bool last = i == operations.Count - 1;
            switch (operation.Verb)
            {
                case FabricVerb.Write:
                    uint rkey = WritableRkey(FabricVerb.Write, operation.RemoteOffset, operation.Source.Length);
                    var (address, offset) = Stage(operation.Source.Length);
                    operation.Source.Span.CopyTo(new Span<byte>(StagingBase + offset, operation.Source.Length));
                    VerbsWorkRequests.Write(Wrs + i, Sges + i, NextWrId(), address, (uint)operation.Source.Length, _buffer.Lkey,
                        RemoteAddress(operation.RemoteOffset), rkey, signaled: last && signal, inline: operation.Source.Length <= _qp.MaxInlineData);
                    Counters.CountBytesToBlade(operation.Source.Length);
                    break;
                case FabricVerb.Persist:
                    WritableRkey(FabricVerb.Persist, operation.RemoteOffset, operation.Length);
                    BuildPersist(Wrs + i, Sges + i, operation.RemoteOffset, operation.Length, signaled: last && signal);
                    break;
                default:
                    FabricErrors.ThrowUnbatchableVerb(operation.Verb);
                    break;
            }

            if (i > 0)
            {
                Wrs[i - 1].next = Wrs + i;
            }
        }

        if (!signal)
        {
            _unsignaledOutstanding += operations.Count;
            Post(operations[0].Verb);
            return;
        }

        if (!signaled)
        {
            // The periodic signaled request of an unsignaled stream: waited for here to reclaim the send queue and
            // the staging ring, not a round trip the caller asked for; its failure is deferred like any other.
            Wrs[operations.Count - 1].wr_id = HousekeepingWrId;
            Post(operations[0].Verb);
            var failure = WaitFor(HousekeepingWrId, operations[^1].Verb);
            if (failure is not null)
            {
                Interlocked.CompareExchange(ref _deferredFailure, failure, null);
                return;
            }

            _stagingCursor = 0;
            _unsignaledOutstanding = 0;
            return;
        }

        PostAndWait(operations.Count, operations[^1].Verb);
    }

    private unsafe void BuildPersist(ibv_send_wr* wr, ibv_sge* sge, long remoteOffset, long length, bool signaled) =>
        VerbsWorkRequests.PersistByRead(wr, sge, NextWrId(), ScratchAddress, _buffer.Lkey, RemoteAddress(remoteOffset), length, _welcome.ReadRkey, signaled);

    /// <summary>Posts the chain at Wrs[0] whose last request is signaled and waits for it.</summary>
    private unsafe void PostAndWait(int count, FabricVerb verb)
    {
        Post(verb);
        var failure = WaitFor(Wrs[count - 1].wr_id, verb);
        if (failure is not null)
        {
            throw failure;
        }

        // RC completions are in order: everything posted before has completed, so the ring and queue are free.
        _stagingCursor = 0;
        _unsignaledOutstanding = 0;
    }

    private unsafe void Post(FabricVerb verb)
    {
        ibv_send_wr* bad = null;
        int result = ibv_post_send(_qp.Qp, Wrs, &bad);
        Wrs[0].next = null;
        if (result != 0)
        {
            _broken = new FabricException(FabricStatus.Unreachable, $"{_description}: ibv_post_send of {verb.ToString().ToUpperInvariant()} failed with {result}; the queue pair is unusable");
            throw _broken;
        }
    }

    /// <summary>Polls until <paramref name="wrId"/> completes; returns its failure (or an earlier unsignaled one's).</summary>
    private unsafe FabricException? WaitFor(ulong wrId, FabricVerb verb)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(_options.CompletionTimeout.TotalSeconds * Stopwatch.Frequency);
        var completions = stackalloc ibv_wc[PollBatch];
        var spin = default(SpinWait);
        while (true)
        {
            int found = ibv_poll_cq(_qp.Cq, PollBatch, completions);
            if (found < 0)
            {
                return _broken = new FabricException(FabricStatus.Unreachable, $"{_description}: ibv_poll_cq failed with {found}");
            }

            for (int i = 0; i < found; i++)
            {
                var failure = Examine(completions[i], verb);
                if (failure is not null && completions[i].wr_id != wrId)
                {
                    // An unsignaled request failed before ours; ours will be flushed. Report the cause, once.
                    var first = Interlocked.Exchange(ref _deferredFailure, null) ?? failure;
                    return _broken = new FabricException(first.Status, $"{_description}: an earlier unsignaled batch failed, reported on this next operation: {first.Message}");
                }

                if (completions[i].wr_id == wrId)
                {
                    return failure;
                }
            }

            if (found == 0)
            {
                if (Stopwatch.GetTimestamp() > deadline)
                {
                    return _broken = new FabricException(FabricStatus.Unreachable, $"{_description}: no completion for {verb} within {_options.CompletionTimeout}; the blade is unreachable");
                }

                spin.SpinOnce(sleep1Threshold: -1);
            }
        }
    }

    private unsafe void DrainCompletions()
    {
        var completions = stackalloc ibv_wc[PollBatch];
        int found;
        while ((found = ibv_poll_cq(_qp.Cq, PollBatch, completions)) > 0)
        {
            for (int i = 0; i < found; i++)
            {
                var failure = Examine(completions[i], FabricVerb.Write);
                if (failure is not null)
                {
                    Interlocked.CompareExchange(ref _deferredFailure, failure, null);
                }
            }
        }
    }

    private FabricException? Examine(in ibv_wc completion, FabricVerb verb)
    {
        if (completion.status == ibv_wc_status.IBV_WC_SUCCESS)
        {
            return null;
        }

        var status = VerbsCompletionStatus.ToFabricStatus(completion.status);
        _broken ??= new FabricException(FabricStatus.Unreachable, $"{_description}: the queue pair is in the error state after {VerbsCompletionStatus.Name(completion.status)}; connect again");
        return new FabricException(status, $"{_description}: {verb} completed with {VerbsCompletionStatus.Name(completion.status)} (vendor error 0x{completion.vendor_err:x})");
    }

    private void EnsureUsable()
    {
        if (_disposed)
        {
            throw new FabricException(FabricStatus.Unreachable, $"{_description}: the connection was disposed; connect again to reach the blade.");
        }

        ThrowDeferredFailure();
        if (_broken is not null)
        {
            throw _broken;
        }
    }

    private void ThrowDeferredFailure()
    {
        var failure = Interlocked.Exchange(ref _deferredFailure, null);
        if (failure is not null)
        {
            throw new FabricException(failure.Status, $"{_description}: an earlier unsignaled batch failed, reported on this next operation: {failure.Message}");
        }
    }

    /// <summary>
    /// Makes room for <paramref name="length"/> staging bytes. When the ring is full of unsignaled payloads the NIC may
    /// still be reading, waits for them first: a signaled 1-byte READ behind them (RC completions are in order).
    /// </summary>
    private unsafe void EnsureStaging(int length)
    {
        if (_stagingCursor + length <= _stagingData)
        {
            return;
        }

        if (_unsignaledOutstanding > 0)
        {
            var wr = Wrs + _options.SendQueueDepth;
            VerbsWorkRequests.Read(wr, Sges + _options.SendQueueDepth, HousekeepingWrId, ScratchAddress, 1, _buffer.Lkey, RemoteAddress(0), _welcome.ReadRkey, signaled: true);
            ibv_send_wr* bad = null;
            if (ibv_post_send(_qp.Qp, wr, &bad) != 0)
            {
                throw _broken = new FabricException(FabricStatus.Unreachable, $"{_description}: ibv_post_send of a housekeeping READ failed; the queue pair is unusable");
            }

            var failure = WaitFor(HousekeepingWrId, FabricVerb.Read);
            if (failure is not null)
            {
                throw failure;
            }

            _unsignaledOutstanding = 0;
        }

        _stagingCursor = 0;
    }

    private unsafe (ulong Address, int Offset) Stage(int length)
    {
        EnsureStaging(length);

        int offset = _stagingCursor;
        _stagingCursor += (length + 7) & ~7;
        return ((ulong)(StagingBase + offset), offset);
    }

    private ulong NextWrId() => ++_nextWrId;

    private ulong RemoteAddress(long offset) => _welcome.RegionAddress + (ulong)offset;

    private void EnsureInsideRegion(FabricVerb verb, long offset, long length)
    {
        if (offset < 0 || length < 0 || offset > RegionLength - length)
        {
            FabricErrors.ThrowOutsideRegion(_description, verb, offset, length, RegionLength);
        }
    }

    /// <summary>The rkey of the one registration holding the whole range, as a work request must name one.</summary>
    private uint WritableRkey(FabricVerb verb, long offset, long length)
    {
        EnsureInsideRegion(verb, offset, length);
        foreach (var range in _welcome.WritableRanges)
        {
            if (new FabricRange(range.Offset, range.Length).Contains(offset, length))
            {
                return range.Rkey;
            }
        }

        FabricErrors.ThrowNotWritable(_description, verb, offset, length, Access);
        return 0;
    }

    private uint AtomicRkey(FabricVerb verb, long offset)
    {
        EnsureInsideRegion(verb, offset, sizeof(ulong));
        if ((offset & 7) != 0)
        {
            FabricErrors.ThrowMisaligned(_description, verb, offset);
        }

        return WritableRkey(verb, offset, sizeof(ulong));
    }
}

/// <summary>The node's registered staging buffer plus its work-request and scatter/gather arrays, in native memory.</summary>
internal sealed unsafe class StagingBuffer : IDisposable
{
    private readonly VerbsMemoryRegion _region;

    public StagingBuffer(VerbsDeviceContext device, VerbsOptions options)
    {
        Base = (byte*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc((nuint)options.StagingBytes, 4096);
        try
        {
            _region = device.Register((nint)Base, options.StagingBytes, ibv_access_flags.IBV_ACCESS_LOCAL_WRITE);
        }
        catch
        {
            System.Runtime.InteropServices.NativeMemory.AlignedFree(Base);
            throw;
        }

        // One more than the deepest batch: the last slot is the housekeeping READ that reclaims the staging ring.
        Wrs = (ibv_send_wr*)System.Runtime.InteropServices.NativeMemory.AllocZeroed((nuint)(sizeof(ibv_send_wr) * (options.SendQueueDepth + 1)));
        Sges = (ibv_sge*)System.Runtime.InteropServices.NativeMemory.AllocZeroed((nuint)(sizeof(ibv_sge) * (options.SendQueueDepth + 1)));
    }

    public byte* Base { get; private set; }

    public ibv_send_wr* Wrs { get; private set; }

    public ibv_sge* Sges { get; private set; }

    public uint Lkey => _region.Lkey;

    public void Dispose()
    {
        if (Base is null)
        {
            return;
        }

        _region.Dispose();
        System.Runtime.InteropServices.NativeMemory.AlignedFree(Base);
        System.Runtime.InteropServices.NativeMemory.Free(Wrs);
        System.Runtime.InteropServices.NativeMemory.Free(Sges);
        Base = null;
        Wrs = null;
        Sges = null;
    }
}
