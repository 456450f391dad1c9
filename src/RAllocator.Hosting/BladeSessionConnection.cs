using System.Net.Sockets;
using RAllocator.Fabric;
using RAllocator.Fabric.SharedMemory;

namespace RAllocator.Hosting;

/// <summary>
/// A fabric connection tied to its blade session: when the session's TCP connection ends (the blade stopped,
/// died or fenced this node), every later operation fails with <see cref="FabricStatus.Unreachable"/>, so the node
/// stops touching the blade's memory and reconnects, as an RC queue pair in the error state forces on hardware.
/// </summary>
public sealed class BladeSessionConnection : IFabricConnection
{
    private readonly IFabricConnection _inner;
    private readonly TcpClient _session;
    private readonly BladeEndpoint _endpoint;
    private readonly Task _watch;
    private volatile string? _lostReason;

    internal BladeSessionConnection(IFabricConnection inner, TcpClient session, BladeEndpoint endpoint, int bladeProcessId)
    {
        _inner = inner;
        _session = session;
        _endpoint = endpoint;
        BladeProcessId = bladeProcessId;
        _watch = WatchSessionAsync();
    }

    /// <summary>The blade server's process id (on the same host, its CPU time can be read from /proc).</summary>
    public int BladeProcessId { get; }

    /// <summary>The connection doing the verbs (shared memory, UCX, ...).</summary>
    public IFabricConnection Inner => _inner;

    /// <summary>Why the session ended, or null while it is live.</summary>
    public string? LostReason => _lostReason;

    /// <inheritdoc />
    public int BladeId => _inner.BladeId;

    /// <inheritdoc />
    public long RegionLength => _inner.RegionLength;

    /// <inheritdoc />
    public FabricCounters Counters => _inner.Counters;

    /// <inheritdoc />
    public ValueTask ReadAsync(long remoteOffset, Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        ThrowIfLost();
        return _inner.ReadAsync(remoteOffset, destination, cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask WriteAsync(long remoteOffset, ReadOnlyMemory<byte> source, CancellationToken cancellationToken = default)
    {
        ThrowIfLost();
        return _inner.WriteAsync(remoteOffset, source, cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask<ulong> FetchAddAsync(long remoteOffset, ulong delta, CancellationToken cancellationToken = default)
    {
        ThrowIfLost();
        return _inner.FetchAddAsync(remoteOffset, delta, cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask<ulong> CompareSwapAsync(long remoteOffset, ulong expected, ulong desired, CancellationToken cancellationToken = default)
    {
        ThrowIfLost();
        return _inner.CompareSwapAsync(remoteOffset, expected, desired, cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask PersistAsync(long remoteOffset, long length, CancellationToken cancellationToken = default)
    {
        ThrowIfLost();
        return _inner.PersistAsync(remoteOffset, length, cancellationToken);
    }

    /// <inheritdoc />
    public FabricBatch CreateBatch()
    {
        var inner = _inner.CreateBatch();
        return new FabricBatch(async (operations, signaled, cancellationToken) =>
        {
            ThrowIfLost();
            foreach (var operation in operations)
            {
                _ = operation.Verb == FabricVerb.Write ? inner.Write(operation.RemoteOffset, operation.Source) : inner.Persist(operation.RemoteOffset, operation.Length);
            }

            await (signaled ? inner.PostAndWaitAsync(cancellationToken) : inner.PostUnsignaled(cancellationToken)).ConfigureAwait(false);
        });
    }

    /// <summary>Ends the session (the blade revokes this node's registrations) and closes the fabric connection.</summary>
    public async ValueTask DisposeAsync()
    {
        MarkLost("the node closed the connection");
        _session.Dispose();
        await _inner.DisposeAsync().ConfigureAwait(false);
        try
        {
            await _watch.ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
        {
        }
    }

    /// <inheritdoc />
    public override string ToString() => $"{_inner} via blade {_endpoint}";

    private void ThrowIfLost()
    {
        if (_lostReason is { } reason)
        {
            throw new FabricException(FabricStatus.Unreachable, $"blade {_endpoint} is unreachable: {reason}. Reconnect (the blade recovers this node's slabs at registration).");
        }
    }

    private void MarkLost(string reason)
    {
        if (Interlocked.CompareExchange(ref _lostReason, reason, null) is null && _inner is SharedMemoryConnection shared)
        {
            // Shared memory would otherwise keep working on the file behind a restarting blade's recovery.
            shared.MarkBladeLost();
        }
    }

    private async Task WatchSessionAsync()
    {
        var buffer = new byte[1];
        try
        {
            var stream = _session.GetStream();
            while (await stream.ReadAsync(buffer).ConfigureAwait(false) > 0)
            {
            }

            MarkLost("the blade ended the session (it stopped, restarted or fenced this node)");
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or InvalidOperationException)
        {
            MarkLost($"the blade's session failed ({ex.Message})");
        }
    }
}
