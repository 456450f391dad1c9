using System.Net.Sockets;
using RAllocator.Fabric;
using RAllocator.Fabric.Handshake;
using RAllocator.Fabric.SharedMemory;

namespace RAllocator.Hosting;

/// <summary>How a working node connects to blade servers.</summary>
public sealed record RemoteBladeOptions
{
    /// <summary>How long one TCP connect plus handshake may take.</summary>
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long to keep retrying while the blade refuses the connection or still holds this node id's previous
    /// session (a restarted node can race the blade noticing its previous process died). Zero: try once.
    /// </summary>
    public TimeSpan RetryFor { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>A name for the blade's log; defaults to host and process id.</summary>
    public string? NodeName { get; init; }
}

/// <summary>A blade server refused this node; <see cref="Status"/> says why and the message what to do.</summary>
public sealed class BladeRefusedException(HandshakeStatus status, string message) : Exception(message)
{
    /// <summary>The blade's reason.</summary>
    public HandshakeStatus Status { get; } = status;
}

/// <summary>The working-node side of a blade server: hand-shake, then a fabric connection tied to the session.</summary>
public static class RemoteBlade
{
    /// <summary>The connector for <paramref name="fabric"/>, or an explanation of why this build cannot speak it.</summary>
    public static IFabricConnector ConnectorFor(FabricKind fabric) => fabric switch
    {
        FabricKind.SharedMemory => new SharedMemoryConnector(),
        FabricKind.Ucx => new UcxConnector(),
        _ => throw new NotSupportedException($"the {fabric} fabric has no connector registered; pass one to ConnectAsync."),
    };

    /// <summary>
    /// Connects node <paramref name="nodeId"/> to the blade server at <paramref name="endpoint"/> over
    /// <paramref name="connector"/>'s fabric. The returned connection fails every operation with
    /// <see cref="FabricStatus.Unreachable"/> once the blade's session ends (the blade stopped or died).
    /// </summary>
    /// <exception cref="BladeRefusedException">The blade refused the handshake (token, node id, fabric).</exception>
    /// <exception cref="FabricException">The blade could not be reached within the retry time (status <see cref="FabricStatus.Unreachable"/>).</exception>
    public static async Task<IFabricConnection> ConnectAsync(BladeEndpoint endpoint, int bladeId, uint nodeId, AccessToken token, IFabricConnector connector, RemoteBladeOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        ArgumentNullException.ThrowIfNull(token);
        ArgumentNullException.ThrowIfNull(connector);
        options ??= new RemoteBladeOptions();
        var name = options.NodeName ?? $"{Environment.MachineName} pid {Environment.ProcessId}";
        var giveUpAt = DateTime.UtcNow + options.RetryFor;
        var delay = TimeSpan.FromMilliseconds(50);
        while (true)
        {
            try
            {
                return await ConnectOnceAsync(endpoint, bladeId, nodeId, token, connector, name, options, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (IsRetryable(ex) && DateTime.UtcNow + delay < giveUpAt)
            {
                await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(1).Ticks));
            }
        }
    }

    /// <summary>
    /// Connects a read-only observer (a placement coordinator, a monitor) to the blade server at
    /// <paramref name="endpoint"/>: it takes no node id and no node slot, gets no registration, and may only READ
    /// (over shared memory the image is mapped <c>PROT_READ</c>; WRITE, the atomics and PERSIST fail with
    /// <see cref="FabricStatus.RemoteAccessError"/> whatever the blade sent). The connection fails every operation
    /// with <see cref="FabricStatus.Unreachable"/> once the session ends; the session's end revokes nothing on the
    /// blade but the observer's own read key.
    /// </summary>
    /// <exception cref="BladeRefusedException">The blade refused the observer (token, fabric, too many observers, or a blade server too old to know observers).</exception>
    /// <exception cref="FabricException">The blade could not be reached within the retry time (status <see cref="FabricStatus.Unreachable"/>).</exception>
    public static async Task<IFabricConnection> ConnectObserverAsync(BladeEndpoint endpoint, int bladeId, AccessToken token, IFabricConnector connector, RemoteBladeOptions? options = null, CancellationToken cancellationToken = default)
    {
        try
        {
            return await ConnectAsync(endpoint, bladeId, HandshakeCodec.ObserverNodeId, token, connector, options, cancellationToken).ConfigureAwait(false);
        }
        catch (BladeRefusedException ex) when (ex.Status == HandshakeStatus.NodeIdOutOfRange)
        {
            // Only a server that predates the observer role sees the reserved id as an ordinary, too large node id.
            throw new BladeRefusedException(ex.Status, $"{ex.Message} (this blade server predates read-only observers: upgrade it to run a coordinator against it)");
        }
    }

    private static bool IsRetryable(Exception ex) =>
        ex is BladeRefusedException { Status: HandshakeStatus.NodeAlreadyConnected }
        || ex is FabricException { Status: FabricStatus.Unreachable, InnerException: SocketException or IOException or EndOfStreamException or OperationCanceledException };

    private static async Task<IFabricConnection> ConnectOnceAsync(BladeEndpoint endpoint, int bladeId, uint nodeId, AccessToken token, IFabricConnector connector, string name, RemoteBladeOptions options, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.HandshakeTimeout);
        var client = new TcpClient { NoDelay = true };
        bool observer = nodeId == HandshakeCodec.ObserverNodeId;
        var who = observer ? "observer" : $"node {nodeId}";
        HandshakeResponse response;
        try
        {
            var addresses = await endpoint.ResolveAsync(timeout.Token).ConfigureAwait(false);
            await client.ConnectAsync(addresses, endpoint.Port, timeout.Token).ConfigureAwait(false);
            var stream = client.GetStream();
            var request = new HandshakeRequest(nodeId, connector.Kind, token.Bytes, name, connector.RequestPayload);
            await HandshakeCodec.WriteFrameAsync(stream, HandshakeCodec.Encode(request), timeout.Token).ConfigureAwait(false);
            response = HandshakeCodec.DecodeResponse(await HandshakeCodec.ReadFrameAsync(stream, timeout.Token).ConfigureAwait(false));
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested && ex is SocketException or IOException or EndOfStreamException or OperationCanceledException)
        {
            client.Dispose();
            var reason = ex switch
            {
                SocketException { SocketErrorCode: SocketError.ConnectionRefused } => "the connection was refused: is 'rallocator serve' running there?",
                SocketException { SocketErrorCode: SocketError.HostNotFound } => "the host name does not resolve",
                OperationCanceledException => $"no answer within {options.HandshakeTimeout.TotalSeconds:0.#} s",
                EndOfStreamException => "the blade closed the connection during the handshake",
                _ => ex.Message,
            };
            throw new FabricException(FabricStatus.Unreachable, $"blade {endpoint} is unreachable: {reason}", ex);
        }
        catch (HandshakeFormatException ex)
        {
            client.Dispose();
            throw new FabricException(FabricStatus.Unreachable, $"blade {endpoint} answered with a malformed handshake: {ex.Message}", ex);
        }
        catch
        {
            client.Dispose();
            throw;
        }

        if (response.Status != HandshakeStatus.Accepted)
        {
            client.Dispose();
            throw new BladeRefusedException(response.Status, $"blade {endpoint} refused {who}: {response.Message}");
        }

        try
        {
            // An observer is read-only by its own choice too: whatever ranges a blade sends, it writes nowhere.
            var access = observer ? FabricAccess.ReadOnly : new FabricAccess(response.WritableRanges);
            var connection = connector.Connect(bladeId, response, access, who);
            return new BladeSessionConnection(connection, client, endpoint, response.BladeProcessId);
        }
        catch
        {
            client.Dispose();
            throw;
        }
    }
}
