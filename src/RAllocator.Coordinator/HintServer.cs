using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using RAllocator.Fabric.Tcp;

namespace RAllocator.Coordinator;

/// <summary>How a <see cref="HintServer"/> runs.</summary>
public sealed record HintServerOptions
{
    /// <summary>Where working nodes ask for hints (port 0: any free port, see <see cref="HintServer.LocalEndPoint"/>).</summary>
    public IPEndPoint Listen { get; init; } = new(IPAddress.Loopback, 0);

    /// <summary>Connections served at once (default 1024); one more is answered <see cref="HintStatus.Busy"/> and closed.</summary>
    public int MaxConnections { get; init; } = 1024;

    /// <summary>
    /// How long a connection may wait between requests, or take to send one (default 1 min): a node polls far more
    /// often, so only a dead or stuck peer reaches it. It reconnects on its next poll anyway.
    /// </summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>Receives one line per event worth an operator's eye (malformed requests, refusals, failures). Null: silent.</summary>
    public Action<string>? Log { get; init; }
}

/// <summary>A hint service could not start; the message names the address and why.</summary>
public sealed class HintServerException(string message, Exception? innerException = null) : Exception(message, innerException);

/// <summary>
/// A coordinator's hint service: answers each working node's request (<see cref="HintCodec"/>) with the hints in
/// force, over TCP. It holds no state of its own beyond the hints it is handed: nodes that cannot reach it keep
/// their last hints (<see cref="RemoteHintSource"/>). A malformed request gets <see cref="HintStatus.Malformed"/>
/// with the reason and its connection is closed; no request, however malformed, stops the service.
/// </summary>
/// <remarks>Thread-safe.</remarks>
public sealed class HintServer : IAsyncDisposable
{
    private readonly Func<PlacementHints?> _current;
    private readonly HintServerOptions _options;
    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Dictionary<TcpClient, Task> _connections = [];
    private readonly Task _acceptLoop;
    private Encoded? _encoded;
    private long _requestsAnswered;
    private long _malformedRequests;
    private long _refusedConnections;
    private int _stopped;

    private HintServer(Func<PlacementHints?> current, HintServerOptions options, TcpListener listener)
    {
        _current = current;
        _options = options;
        _listener = listener;
        LocalEndPoint = (IPEndPoint)listener.LocalEndpoint;
        Incarnation = BitConverter.ToUInt64(RandomNumberGenerator.GetBytes(8)) | 1;
        _acceptLoop = TcpAcceptLoop.RunAsync(_listener, OnAccepted, _stopping.Token);
    }

    /// <summary>The address the service answers on.</summary>
    public IPEndPoint LocalEndPoint { get; }

    /// <summary>This service's incarnation, sent with every answer (random, odd so never zero).</summary>
    public ulong Incarnation { get; }

    /// <summary>Requests answered with hints or <see cref="HintStatus.NoHintsYet"/>.</summary>
    public long RequestsAnswered => Interlocked.Read(ref _requestsAnswered);

    /// <summary>Requests answered <see cref="HintStatus.Malformed"/> (their connections were closed).</summary>
    public long MalformedRequests => Interlocked.Read(ref _malformedRequests);

    /// <summary>Connections answered <see cref="HintStatus.Busy"/> because <see cref="HintServerOptions.MaxConnections"/> were open.</summary>
    public long RefusedConnections => Interlocked.Read(ref _refusedConnections);

    /// <summary>Connections open now.</summary>
    public int OpenConnections
    {
        get
        {
            lock (_connections)
            {
                return _connections.Count;
            }
        }
    }

    /// <summary>Serves the hints of <paramref name="coordinator"/>'s last refresh.</summary>
    /// <exception cref="HintServerException">The address cannot be listened on (in use, not local).</exception>
    public static HintServer Start(PlacementCoordinator coordinator, HintServerOptions options)
    {
        ArgumentNullException.ThrowIfNull(coordinator);
        return Start(() => coordinator.Current, options);
    }

    /// <summary>Serves whatever <paramref name="currentHints"/> returns at each request (null: not ready yet).</summary>
    /// <exception cref="HintServerException">The address cannot be listened on (in use, not local).</exception>
    public static HintServer Start(Func<PlacementHints?> currentHints, HintServerOptions options)
    {
        ArgumentNullException.ThrowIfNull(currentHints);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxConnections, 1, nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(options.IdleTimeout, TimeSpan.Zero, nameof(options));
        var listener = new TcpListener(options.Listen);
        try
        {
            listener.Start();
        }
        catch (SocketException ex)
        {
            listener.Stop();
            var reason = ex.SocketErrorCode == SocketError.AddressAlreadyInUse
                ? "the port is already in use (another coordinator?). Choose another port with --listen."
                : ex.Message;
            throw new HintServerException($"cannot listen for hint requests on {Describe(options.Listen)}: {reason}", ex);
        }

        return new HintServer(currentHints, options, listener);
    }

    /// <summary>Stops accepting, closes every connection (nodes keep their last hints) and waits for the handlers. Idempotent.</summary>
    public async Task StopAsync()
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0)
        {
            return;
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        _listener.Stop();
        await _acceptLoop.ConfigureAwait(false);
        Task[] handlers;
        lock (_connections)
        {
            foreach (var client in _connections.Keys)
            {
                client.Dispose();
            }

            handlers = [.. _connections.Values];
        }

        await Task.WhenAll(handlers).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync() => await StopAsync().ConfigureAwait(false);

    private static string Describe(IPEndPoint endPoint) =>
        endPoint.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{endPoint.Address}]:{endPoint.Port}" : $"{endPoint.Address}:{endPoint.Port}";

    private void Log(string line) => _options.Log?.Invoke(line);

    private void OnAccepted(TcpClient client)
    {
        client.NoDelay = true;
        lock (_connections)
        {
            if (_connections.Count >= _options.MaxConnections)
            {
                Interlocked.Increment(ref _refusedConnections);
                _ = RefuseBusyAsync(client);
                return;
            }

            // The handler runs elsewhere and removes itself under this lock, so it always finds its entry.
            _connections[client] = Task.Run(() => ServeAndCloseAsync(client));
        }
    }

    private async Task ServeAndCloseAsync(TcpClient client)
    {
        try
        {
            await ServeAsync(client).ConfigureAwait(false);
        }
        finally
        {
            lock (_connections)
            {
                _connections.Remove(client);
            }

            client.Dispose();
        }
    }

    private async Task RefuseBusyAsync(TcpClient client)
    {
        using (client)
        {
            var busy = new HintResponse(HintStatus.Busy, $"this coordinator serves {_options.MaxConnections} connections, its limit; retry later.", Incarnation, null);
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            try
            {
                await client.GetStream().WriteAsync(HintCodec.Encode(busy), timeout.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
            {
                // The peer left before hearing why; it retries with backoff.
            }
        }
    }

    private async Task ServeAsync(TcpClient client)
    {
        var peer = client.Client.RemoteEndPoint?.ToString() ?? "unknown peer";
        try
        {
            var stream = client.GetStream();
            while (!_stopping.IsCancellationRequested)
            {
                using var idle = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
                idle.CancelAfter(_options.IdleTimeout);
                try
                {
                    HintCodec.DecodeRequest(await HintCodec.ReadFrameAsync(stream, HintCodec.MaxRequestBytes, idle.Token).ConfigureAwait(false));
                }
                catch (HintFormatException ex)
                {
                    Interlocked.Increment(ref _malformedRequests);
                    Log($"malformed hint request from {peer}: {ex.Message}");
                    // After a bad frame the stream cannot be resynchronized: answer why, then close.
                    var refusal = new HintResponse(HintStatus.Malformed, Truncate(ex.Message), Incarnation, null);
                    await stream.WriteAsync(HintCodec.Encode(refusal), idle.Token).ConfigureAwait(false);
                    return;
                }

                // Counted before the answer leaves, so a node holding its answer always finds it counted.
                Interlocked.Increment(ref _requestsAnswered);
                await stream.WriteAsync(Answer(), idle.Token).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or EndOfStreamException or ObjectDisposedException)
        {
            // The node left, went quiet past the idle timeout, or the service is stopping: nothing to report.
        }
#pragma warning disable CA1031 // One connection's failure must close that connection, never stop the service.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            Log($"hint connection from {peer} failed: {ex.GetType().Name}: {ex.Message}");
        }
    }

    /// <summary>The framed answer for the hints in force; encoded once per hints object, not once per request.</summary>
    private byte[] Answer()
    {
        var hints = _current();
        var encoded = Volatile.Read(ref _encoded);
        if (encoded is not null && ReferenceEquals(encoded.Hints, hints))
        {
            return encoded.Bytes;
        }

        var response = hints is null
            ? new HintResponse(HintStatus.NoHintsYet, "the coordinator has not read its blades yet", Incarnation, null)
            : new HintResponse(HintStatus.Ok, string.Empty, Incarnation, hints);
        encoded = new Encoded(hints, HintCodec.Encode(response));
        Volatile.Write(ref _encoded, encoded);
        return encoded.Bytes;
    }

    private static string Truncate(string message) => message.Length <= 400 ? message : message[..400] + "...";

    private sealed record Encoded(PlacementHints? Hints, byte[] Bytes);
}
