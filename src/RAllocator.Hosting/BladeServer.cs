using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using RAllocator.Blade;
using RAllocator.Fabric;
using RAllocator.Fabric.Handshake;
using RAllocator.Fabric.Tcp;
using RAllocator.Nvm;
using RAllocator.Protocol;

namespace RAllocator.Hosting;

/// <summary>How a <see cref="BladeServer"/> runs.</summary>
public sealed record BladeServerOptions
{
    /// <summary>Where to accept handshakes (port 0: any free port, see <see cref="BladeServer.LocalEndPoint"/>).</summary>
    public IPEndPoint Listen { get; init; } = new(IPAddress.Loopback, 0);

    /// <summary>The token every node must present.</summary>
    public required AccessToken Token { get; init; }

    /// <summary>The agent's pacing and limits.</summary>
    public BladeAgentOptions? Agent { get; init; }

    /// <summary>How long a connecting peer may take to send its handshake.</summary>
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How often to log utilization (zero: never).</summary>
    public TimeSpan UtilizationReportInterval { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Close a node's session (revoking its registrations) when its lease expires. Off by default: the lease is
    /// counted in agent passes, and a node that publishes its epoch less often than the lease would be cut off.
    /// </summary>
    public bool FenceOnLeaseExpiry { get; init; }

    /// <summary>
    /// How many read-only observers (placement coordinators, monitors) may be connected at once (default 16). They
    /// take no node slot, but each holds a socket and, on UCX, a read key.
    /// </summary>
    public int MaxObservers { get; init; } = 16;

    /// <summary>Receives one line per event (connections, refusals, utilization, shutdown). Null: silent.</summary>
    public Action<string>? Log { get; init; }
}

/// <summary>A snapshot of a blade's allocation state.</summary>
/// <param name="TotalSlabs">Slabs in the data area.</param>
/// <param name="FreeSlabs">Slabs neither ringed, owned nor freeing.</param>
/// <param name="ConnectedNodes">Nodes with a live session.</param>
/// <param name="AgentPasses">Passes the agent has run (its handler calls).</param>
/// <param name="Stats">The agent's counters.</param>
public sealed record BladeUtilization(long TotalSlabs, long FreeSlabs, int ConnectedNodes, long AgentPasses, BladeAgentStats Stats)
{
    /// <summary>Fraction of slabs not free.</summary>
    public double Utilization => TotalSlabs == 0 ? 0 : 1.0 - (double)FreeSlabs / TotalSlabs;

    /// <inheritdoc />
    public override string ToString() =>
        $"utilization {Utilization:P1} ({TotalSlabs - FreeSlabs}/{TotalSlabs} slabs in use), {ConnectedNodes} node(s) connected, {AgentPasses} agent passes, {Stats.AcksApplied} acks, {Stats.FreesDrained} frees drained";
}

/// <summary>A blade server could not start or serve; the message names the file, address or fabric and why.</summary>
public sealed class BladeServerException(string message, Exception? innerException = null) : Exception(message, innerException);

/// <summary>
/// A blade as a server process: its NVM image mapped from a file, its agent on a dedicated thread (the only blade
/// CPU work on the allocation path's behalf, counted), and a TCP listener where working nodes hand-shake (token,
/// node id, fabric) and receive their registrations. The session's TCP connection stays open: its end tells the
/// blade the node is gone (its registrations are revoked) and tells the node the blade is gone.
/// </summary>
public sealed class BladeServer : IAsyncDisposable
{
    private readonly MappedFileNvm _region;
    private readonly BladeImage _image;
    private readonly BladeAgent _agent;
    private readonly BladeServerOptions _options;
    private readonly Dictionary<FabricKind, IBladeFabricExport> _exports;
    private readonly TcpListener _listener;
    private readonly Dictionary<uint, Session> _sessions = [];
    private readonly HashSet<Session> _observers = [];
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _agentRun;
    private readonly Task _acceptLoop;
    private readonly TaskCompletionSource _agentStopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile int _agentThreadId;
    private long _nextReport;
    private volatile BladeUtilization _utilization;
    private Exception? _agentFailure;
    private int _stopped;
    private long _handshakesAnswered;

    private BladeServer(MappedFileNvm region, BladeImage image, BladeAgent agent, TcpListener listener, BladeServerOptions options, Dictionary<FabricKind, IBladeFabricExport> exports)
    {
        _region = region;
        _image = image;
        _agent = agent;
        _listener = listener;
        _options = options;
        _exports = exports;
        ImagePath = region.Path;
        LocalEndPoint = (IPEndPoint)listener.LocalEndpoint;
        _utilization = Snapshot();
        _agent.NodeLeaseExpired += OnLeaseExpired;
        // The agent's own loop paces the passes on a dedicated thread; the server only watches them.
        _nextReport = Stopwatch.GetTimestamp() + (long)(_options.UtilizationReportInterval.TotalSeconds * Stopwatch.Frequency);
        _agent.LoopStarted += () => _agentThreadId = CpuClocks.CurrentThreadId();
        _agent.PassCompleted += OnPassCompleted;
        _agentRun = _agent.RunAsync(_stopping.Token);
        _agentRun.ContinueWith(run => OnAgentFaulted(run.Exception!.InnerException!), CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
        _acceptLoop = TcpAcceptLoop.RunAsync(_listener, client => _ = ServeAsync(client), _stopping.Token);
    }

    /// <summary>The image file served.</summary>
    public string ImagePath { get; }

    /// <summary>The address the server accepts handshakes on.</summary>
    public IPEndPoint LocalEndPoint { get; }

    /// <summary>The fabrics offered to nodes.</summary>
    public IReadOnlyCollection<FabricKind> Fabrics => _exports.Keys;

    /// <summary>The blade's geometry.</summary>
    public Protocol.Layout.BladeGeometry Geometry => _image.Geometry;

    /// <summary>The latest utilization snapshot (refreshed after every agent pass).</summary>
    public BladeUtilization Utilization => _utilization;

    /// <summary>CPU time of the agent thread so far.</summary>
    public TimeSpan AgentCpuTime => CpuClocks.ThreadCpuTime(_agentThreadId);

    /// <summary>CPU time of the fabrics' own threads (e.g. a UCX progress thread) so far.</summary>
    public TimeSpan FabricCpuTime => _exports.Values.Aggregate(TimeSpan.Zero, (sum, export) => sum + export.CpuTime);

    /// <summary>Completes when the agent thread stops; faulted if a pass threw (the server then stops serving).</summary>
    public Task AgentStopped => _agentStopped.Task;

    /// <summary>Node ids with a live session.</summary>
    public IReadOnlyCollection<uint> ConnectedNodes
    {
        get
        {
            lock (_sessions)
            {
                return [.. _sessions.Keys];
            }
        }
    }

    /// <summary>Read-only observers with a live session (they are not in <see cref="ConnectedNodes"/>).</summary>
    public int ConnectedObservers
    {
        get
        {
            lock (_sessions)
            {
                return _observers.Count;
            }
        }
    }

    /// <summary>
    /// Handshakes this server has answered (accepted, refused or malformed): the only requests its CPU serves for
    /// nodes and observers. After a peer's handshake, its verbs never show up here.
    /// </summary>
    public long HandshakesAnswered => Interlocked.Read(ref _handshakesAnswered);

    /// <summary>
    /// Binds the listener, then opens and recovers the image at <paramref name="imagePath"/> and starts the agent.
    /// The listener is bound first so that a port in use fails before the image is touched.
    /// </summary>
    /// <param name="imagePath">A formatted blade image (<c>rallocator format</c>).</param>
    /// <param name="options">Listener, token and agent settings.</param>
    /// <param name="exports">Fabrics to offer besides shared memory (e.g. UCX), each already set up on the image's mapping by <paramref name="exports"/>'s factory.</param>
    /// <exception cref="BladeServerException">The port is in use, the image file cannot be opened, or a fabric failed to start.</exception>
    /// <exception cref="Protocol.Layout.BladeImageException">The image is not a valid blade image; it is left untouched.</exception>
    public static BladeServer Start(string imagePath, BladeServerOptions options, Func<MappedFileNvm, IEnumerable<IBladeFabricExport>>? exports = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(imagePath);
        ArgumentNullException.ThrowIfNull(options);

        var listener = new TcpListener(options.Listen);
        try
        {
            listener.Start();
        }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            throw new BladeServerException($"cannot listen on {Describe(options.Listen)}: the port is already in use (another blade server?). Choose another port with --listen.", ex);
        }
        catch (SocketException ex)
        {
            throw new BladeServerException($"cannot listen on {Describe(options.Listen)}: {ex.Message}.", ex);
        }

        MappedFileNvm? region = null;
        var fabricExports = new Dictionary<FabricKind, IBladeFabricExport>();
        try
        {
            try
            {
                region = MappedFileNvm.Open(imagePath, NvmAccess.ReadWrite);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidOperationException)
            {
                throw new BladeServerException($"cannot open blade image '{imagePath}': {ex.Message}", ex);
            }

            var image = BladeImage.Open(region, BladeOpenMode.ReadWrite);
            var agent = BladeAgent.Start(image, options.Agent);
            fabricExports[FabricKind.SharedMemory] = new SharedMemoryExport(region.Path);
            foreach (var export in exports?.Invoke(region) ?? [])
            {
                fabricExports[export.Kind] = export;
            }

            var server = new BladeServer(region, image, agent, listener, options, fabricExports);
            server.Log($"serving blade image {region.Description}: {image.Geometry.SlabCount} slabs of {image.Geometry.SlabSizeBytes} bytes, up to {image.Geometry.MaxNodes} nodes");
            foreach (var export in fabricExports.Values)
            {
                server.Log($"fabric {export.Kind}: {export.Description}");
            }

            server.Log($"listening on {Describe(server.LocalEndPoint)}");
            return server;
        }
        catch
        {
            listener.Stop();
            foreach (var export in fabricExports.Values)
            {
                export.Dispose();
            }

            region?.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Stops cleanly: refuses new nodes, ends every session (nodes see the blade go away), lets the agent finish its
    /// pass, persists the whole image and marks a clean shutdown. Idempotent.
    /// </summary>
    public async Task StopAsync()
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0)
        {
            await _agentStopped.Task.ConfigureAwait(false);
            return;
        }

        Log("stopping: refusing new nodes, ending sessions, finishing the agent's pass");
        await _stopping.CancelAsync().ConfigureAwait(false);
        _listener.Stop();
        try
        {
            await _acceptLoop.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        Session[] sessions;
        lock (_sessions)
        {
            sessions = [.. _sessions.Values, .. _observers];
        }

        foreach (var session in sessions)
        {
            session.Close("the blade is shutting down");
        }

        try
        {
            await _agentRun.ConfigureAwait(false);
        }
        catch (Exception ex) when (ReferenceEquals(ex, _agentFailure) || _agentRun.IsFaulted)
        {
            // Reported by OnAgentFaulted; the image is not marked clean below.
        }
        foreach (var export in _exports.Values)
        {
            export.Dispose();
        }

        if (_agentFailure is null)
        {
            _region.Persist(0, _region.Length);
            _image.MarkCleanShutdown();
            Log($"stopped cleanly; image persisted. {_utilization}. Agent CPU {AgentCpuTime.TotalMilliseconds:F0} ms");
        }
        else
        {
            Log($"stopped after an agent failure; the image was not marked clean: {_agentFailure.Message}");
        }

        _region.Dispose();
        _agentStopped.TrySetResult();
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync() => await StopAsync().ConfigureAwait(false);

    private static string Describe(IPEndPoint endPoint) =>
        endPoint.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{endPoint.Address}]:{endPoint.Port}" : $"{endPoint.Address}:{endPoint.Port}";

    private void Log(string line) => _options.Log?.Invoke(line);

    private BladeUtilization Snapshot()
    {
        int connected;
        lock (_sessions)
        {
            connected = _sessions.Count;
        }

        return new BladeUtilization((long)_image.Geometry.SlabCount, _agent.FreeSlabCount, connected, _agent.HandlerCalls, _agent.Stats);
    }

    /// <summary>Runs on the agent's thread after each pass of <see cref="BladeAgent.RunAsync"/>.</summary>
    private void OnPassCompleted()
    {
        _utilization = Snapshot();
        if (_options.UtilizationReportInterval > TimeSpan.Zero && Stopwatch.GetTimestamp() >= _nextReport)
        {
            Log(_utilization.ToString());
            _nextReport = Stopwatch.GetTimestamp() + (long)(_options.UtilizationReportInterval.TotalSeconds * Stopwatch.Frequency);
        }
    }

    private void OnAgentFaulted(Exception failure)
    {
        _agentFailure = failure;
        Log($"agent failed: {failure.GetType().Name}: {failure.Message}; the server stops serving");
        _agentStopped.TrySetException(failure);
        _ = Task.Run(StopAsync);
    }

    private void OnLeaseExpired(uint nodeId)
    {
        Session? session;
        lock (_sessions)
        {
            _sessions.TryGetValue(nodeId, out session);
        }

        if (session is null)
        {
            return;
        }

        if (_options.FenceOnLeaseExpiry)
        {
            session.Close("its lease expired: fenced, registrations revoked");
        }
        else
        {
            Log($"node {nodeId}: lease expired (not fenced: fencing is off)");
        }
    }

    private async Task ServeAsync(TcpClient client)
    {
        var peer = client.Client.RemoteEndPoint?.ToString() ?? "unknown peer";
        client.NoDelay = true;
        var stream = client.GetStream();
        Session? session = null;
        try
        {
            using var handshakeTimeout = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
            handshakeTimeout.CancelAfter(_options.HandshakeTimeout);
            HandshakeRequest request;
            try
            {
                request = HandshakeCodec.DecodeRequest(await HandshakeCodec.ReadFrameAsync(stream, handshakeTimeout.Token).ConfigureAwait(false));
            }
            catch (HandshakeFormatException ex)
            {
                Log($"refused {peer}: malformed handshake: {ex.Message}");
                await RefuseAsync(stream, HandshakeStatus.Malformed, ex.Message).ConfigureAwait(false);
                return;
            }

            var (status, message) = request.IsObserver ? AdmitObserver(request, peer, client, out session) : Admit(request, peer, client, out session);
            if (status != HandshakeStatus.Accepted)
            {
                Log($"refused {(request.IsObserver ? "observer" : $"node {request.NodeId}")} ('{request.NodeName}', {peer}): {message}");
                await RefuseAsync(stream, status, message).ConfigureAwait(false);
                return;
            }

            var accepted = new HandshakeResponse(HandshakeStatus.Accepted, "welcome", Environment.ProcessId, _region.Length, session!.Access.WritableRanges, session.Grant.Payload);
            // Counted before the answer leaves, so a peer that has its answer always finds it counted.
            Interlocked.Increment(ref _handshakesAnswered);
            await HandshakeCodec.WriteFrameAsync(stream, HandshakeCodec.Encode(accepted), _stopping.Token).ConfigureAwait(false);
            Log($"{session.Name} ('{request.NodeName}', {peer}) connected over {request.Fabric}{(request.IsObserver ? ", read-only" : "")}");

            // The session lasts until the node closes it (or dies: the kernel closes its socket) or the blade fences it.
            var buffer = new byte[1];
            while (await stream.ReadAsync(buffer, _stopping.Token).ConfigureAwait(false) > 0)
            {
            }

            session.Close("it disconnected");
        }
        catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or EndOfStreamException or ObjectDisposedException)
        {
            if (session is not null)
            {
                session.Close(ex is OperationCanceledException ? "the blade is shutting down" : $"its connection failed ({ex.Message})");
            }
            else if (ex is not OperationCanceledException || !_stopping.IsCancellationRequested)
            {
                Log($"dropped {peer} during the handshake: {(ex is OperationCanceledException ? "no handshake within " + _options.HandshakeTimeout.TotalSeconds + " s" : ex.Message)}");
            }
        }
        finally
        {
            if (session is null)
            {
                client.Dispose();
            }
        }
    }

    private (HandshakeStatus Status, string Message) Admit(HandshakeRequest request, string peer, TcpClient client, out Session? session)
    {
        session = null;
        if (!_options.Token.Matches(request.Token.Span))
        {
            return (HandshakeStatus.BadToken, "the access token does not match this blade's (check --token-file on both sides)");
        }

        if (request.NodeId >= _image.Geometry.MaxNodes)
        {
            return (HandshakeStatus.NodeIdOutOfRange, $"node id {request.NodeId} is out of range: this blade serves node ids 0 to {_image.Geometry.MaxNodes - 1}");
        }

        if (!_exports.TryGetValue(request.Fabric, out var export))
        {
            return (HandshakeStatus.FabricNotOffered, $"this blade does not offer the {request.Fabric} fabric (offered: {string.Join(", ", _exports.Keys)})");
        }

        var access = NodeRegistrations.For(_image.Geometry, _image.Layout, request.NodeId);
        lock (_sessions)
        {
            if (_stopping.IsCancellationRequested)
            {
                return (HandshakeStatus.FabricSetupFailed, "the blade is shutting down");
            }

            if (_sessions.TryGetValue(request.NodeId, out var existing))
            {
                return (HandshakeStatus.NodeAlreadyConnected, $"node id {request.NodeId} is already connected from {existing.Peer}; two processes with one node id would corrupt each other's slabs");
            }

            FabricGrant grant;
            try
            {
                grant = export.Grant(request.NodeId, access, request.FabricPayload);
            }
#pragma warning disable CA1031 // A fabric failing for one node must refuse that node, not stop the server.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                return (HandshakeStatus.FabricSetupFailed, $"{request.Fabric} set-up failed: {ex.Message}");
            }

            session = new Session(this, request.NodeId, peer, access, grant, client);
            _sessions[request.NodeId] = session;
        }

        return (HandshakeStatus.Accepted, string.Empty);
    }

    /// <summary>
    /// An observer gets a read-only grant and nothing else: no node id, no registration in the image, no lease, so
    /// any number of coordinators can come and go without touching what nodes own or the slots they need.
    /// </summary>
    private (HandshakeStatus Status, string Message) AdmitObserver(HandshakeRequest request, string peer, TcpClient client, out Session? session)
    {
        session = null;
        if (!_options.Token.Matches(request.Token.Span))
        {
            return (HandshakeStatus.BadToken, "the access token does not match this blade's (check --token-file on both sides)");
        }

        if (!_exports.TryGetValue(request.Fabric, out var export))
        {
            return (HandshakeStatus.FabricNotOffered, $"this blade does not offer the {request.Fabric} fabric (offered: {string.Join(", ", _exports.Keys)})");
        }

        lock (_sessions)
        {
            if (_stopping.IsCancellationRequested)
            {
                return (HandshakeStatus.FabricSetupFailed, "the blade is shutting down");
            }

            if (_observers.Count >= _options.MaxObservers)
            {
                return (HandshakeStatus.TooManyObservers, $"this blade already serves {_observers.Count} observer(s), its limit; stop one or raise BladeServerOptions.MaxObservers");
            }

            FabricGrant grant;
            try
            {
                grant = export.Grant(request.NodeId, FabricAccess.ReadOnly, request.FabricPayload);
            }
#pragma warning disable CA1031 // A fabric failing for one observer must refuse that observer, not stop the server.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                return (HandshakeStatus.FabricSetupFailed, $"{request.Fabric} set-up failed: {ex.Message}");
            }

            session = new Session(this, request.NodeId, peer, FabricAccess.ReadOnly, grant, client);
            _observers.Add(session);
        }

        return (HandshakeStatus.Accepted, string.Empty);
    }

    private async Task RefuseAsync(NetworkStream stream, HandshakeStatus status, string message)
    {
        Interlocked.Increment(ref _handshakesAnswered);
        var refusal = new HandshakeResponse(status, message, Environment.ProcessId, 0, [], ReadOnlyMemory<byte>.Empty);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        try
        {
            await HandshakeCodec.WriteFrameAsync(stream, HandshakeCodec.Encode(refusal), timeout.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException)
        {
            // The peer left before hearing why; nothing more to do.
        }
    }

    private sealed class Session(BladeServer server, uint nodeId, string peer, FabricAccess access, FabricGrant grant, TcpClient client)
    {
        private int _closed;

        public bool IsObserver => nodeId == HandshakeCodec.ObserverNodeId;

        public string Name => IsObserver ? "observer" : $"node {nodeId}";

        public string Peer { get; } = peer;

        public FabricAccess Access { get; } = access;

        public FabricGrant Grant { get; } = grant;

        public void Close(string reason)
        {
            if (Interlocked.Exchange(ref _closed, 1) != 0)
            {
                return;
            }

            lock (server._sessions)
            {
                if (IsObserver)
                {
                    server._observers.Remove(this);
                }
                else if (server._sessions.TryGetValue(nodeId, out var current) && ReferenceEquals(current, this))
                {
                    server._sessions.Remove(nodeId);
                }
            }

            Grant.Revoke?.Dispose();
            client.Dispose();
            server.Log($"{Name} ({Peer}) disconnected: {reason}");
        }
    }
}
