using System.Net;
using System.Net.Sockets;
using RAllocator.Fabric.Tcp;
using RAllocator.Fabric.Verbs.Interop;
using RAllocator.Nvm;
using static RAllocator.Fabric.Verbs.Interop.IbVerbs;

namespace RAllocator.Fabric.Verbs;

/// <summary>
/// The blade side of the verbs fabric: registers the blade's region with the RDMA device and accepts working nodes on
/// a TCP port, giving each one an RC queue pair and exactly the registrations its <see cref="FabricAccess"/> allows.
/// After the handshake the blade's CPU takes no part in any verb.
/// </summary>
/// <remarks>
/// Registrations: one read-only memory region over the whole region, shared by every node (REMOTE_READ); and per node,
/// one memory region per writable range (REMOTE_WRITE | REMOTE_ATOMIC | REMOTE_READ), so the NIC itself refuses a
/// node's write outside its ranges. An unrestricted access gets one writable region over everything. When a node's
/// control connection closes, its queue pair is destroyed and its writable regions deregistered: the rkeys die with it.
/// </remarks>
public sealed class VerbsBladeExporter : IAsyncDisposable
{
    private readonly VerbsDeviceContext _device;
    private readonly TcpListener _listener;
    private readonly nint _regionAddress;
    private readonly long _regionLength;
    private readonly Func<uint, FabricAccess> _accessFor;
    private readonly VerbsOptions _options;
    private readonly VerbsMemoryRegion _readRegion;
    private readonly MappedFilePin? _pin;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Lock _sessionsLock = new();
    private readonly List<Session> _sessions = [];
    private readonly Task _acceptLoop;

    private VerbsBladeExporter(VerbsDeviceContext device, TcpListener listener, nint regionAddress, long regionLength, Func<uint, FabricAccess> accessFor, VerbsOptions options, MappedFilePin? pin)
    {
        _device = device;
        _listener = listener;
        _regionAddress = regionAddress;
        _regionLength = regionLength;
        _accessFor = accessFor;
        _options = options;
        _pin = pin;
        _readRegion = device.Register(regionAddress, regionLength, ibv_access_flags.IBV_ACCESS_REMOTE_READ);
        _acceptLoop = Task.Run(() => TcpAcceptLoop.RunAsync(_listener, OnAccepted, _stopping.Token));
    }

    /// <summary>Where nodes connect (the bound port when 0 was requested).</summary>
    public IPEndPoint LocalEndpoint => (IPEndPoint)_listener.LocalEndpoint;

    /// <summary>Nodes whose queue pairs are connected now.</summary>
    public int ConnectedNodes
    {
        get
        {
            lock (_sessionsLock)
            {
                return _sessions.Count;
            }
        }
    }

    /// <summary>
    /// Exports <paramref name="region"/> (pinned for the exporter's lifetime) on <paramref name="listen"/>, granting each
    /// node the access <paramref name="accessFor"/> returns for its node id (e.g. <c>NodeRegistrations.For</c>).
    /// </summary>
    /// <exception cref="FabricException">No usable RDMA device: the message is <see cref="VerbsDevices.Probe()"/>'s.</exception>
    public static VerbsBladeExporter Start(MappedFileNvm region, Func<uint, FabricAccess> accessFor, IPEndPoint listen, VerbsOptions? options)
    {
        ArgumentNullException.ThrowIfNull(region);
        var pin = region.Pin();
        try
        {
            return Start(pin.BaseAddress, pin.Length, accessFor, listen, options, pin);
        }
        catch
        {
            pin.Dispose();
            throw;
        }
    }

    /// <summary>Exports [<paramref name="regionAddress"/>, +<paramref name="regionLength"/>), which the caller keeps mapped until disposal.</summary>
    public static VerbsBladeExporter Start(nint regionAddress, long regionLength, Func<uint, FabricAccess> accessFor, IPEndPoint listen, VerbsOptions? options) =>
        Start(regionAddress, regionLength, accessFor, listen, options, pin: null);

    private static VerbsBladeExporter Start(nint regionAddress, long regionLength, Func<uint, FabricAccess> accessFor, IPEndPoint listen, VerbsOptions? options, MappedFilePin? pin)
    {
        ArgumentNullException.ThrowIfNull(accessFor);
        ArgumentNullException.ThrowIfNull(listen);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(regionLength, 0);
        options ??= new VerbsOptions();
        options.Validate();
        var device = VerbsDeviceContext.Open(options);
        var listener = new TcpListener(listen);
        try
        {
            listener.Start();
            return new VerbsBladeExporter(device, listener, regionAddress, regionLength, accessFor, options, pin);
        }
        catch
        {
            listener.Stop();
            device.Dispose();
            throw;
        }
    }

    /// <summary>Stops accepting, destroys every node's queue pair, deregisters all memory and closes the device.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_stopping.IsCancellationRequested)
        {
            return;
        }

        _stopping.Cancel();
        _listener.Stop();
        await _acceptLoop.ConfigureAwait(false);
        Session[] sessions;
        lock (_sessionsLock)
        {
            sessions = [.. _sessions];
        }

        foreach (var session in sessions)
        {
            session.Close();
        }

        await Task.WhenAll(sessions.Select(s => s.Finished)).ConfigureAwait(false);
        _readRegion.Dispose();
        _device.Dispose();
        _pin?.Dispose();
        _stopping.Dispose();
    }

    private void OnAccepted(TcpClient client)
    {
        var session = new Session(this, client);
        lock (_sessionsLock)
        {
            _sessions.Add(session);
        }

        session.Finished = Task.Run(session.RunAsync);
    }

    private void Remove(Session session)
    {
        lock (_sessionsLock)
        {
            _sessions.Remove(session);
        }
    }

    /// <summary>One node: its control connection, queue pair and writable registrations.</summary>
    private sealed class Session(VerbsBladeExporter exporter, TcpClient client)
    {
        private readonly List<VerbsMemoryRegion> _writable = [];
        private VerbsQueuePair? _qp;

        public Task Finished { get; set; } = Task.CompletedTask;

        public void Close() => client.Dispose();

        public async Task RunAsync()
        {
            try
            {
                client.NoDelay = true;
                var stream = client.GetStream();
                using var handshake = CancellationTokenSource.CreateLinkedTokenSource(exporter._stopping.Token);
                handshake.CancelAfter(exporter._options.HandshakeTimeout);
                var hello = await VerbsHandshake.ReadHelloAsync(stream, handshake.Token).ConfigureAwait(false);

                FabricAccess access;
                try
                {
                    access = exporter._accessFor(hello.NodeId);
                }
                catch (Exception refused) when (refused is ArgumentException or InvalidOperationException)
                {
                    await VerbsHandshake.WriteAsync(stream, VerbsHandshake.EncodeRefusal($"node {hello.NodeId}: {refused.Message}"), handshake.Token).ConfigureAwait(false);
                    return;
                }

                var ranges = access.IsUnrestricted ? [new FabricRange(0, exporter._regionLength)] : access.WritableRanges;
                var keys = new List<VerbsRangeKey>(ranges.Count);
                foreach (var range in ranges.Where(r => r.Length > 0))
                {
                    if (range.End > exporter._regionLength)
                    {
                        await VerbsHandshake.WriteAsync(stream, VerbsHandshake.EncodeRefusal($"node {hello.NodeId}: writable range {range} extends past the region"), handshake.Token).ConfigureAwait(false);
                        return;
                    }

                    var mr = exporter._device.Register(exporter._regionAddress + (nint)range.Offset, range.Length,
                        ibv_access_flags.IBV_ACCESS_LOCAL_WRITE | ibv_access_flags.IBV_ACCESS_REMOTE_WRITE | ibv_access_flags.IBV_ACCESS_REMOTE_ATOMIC | ibv_access_flags.IBV_ACCESS_REMOTE_READ);
                    _writable.Add(mr);
                    keys.Add(new VerbsRangeKey(range.Offset, range.Length, mr.Rkey));
                }

                _qp = VerbsQueuePair.Create(exporter._device, exporter._options.SendQueueDepth);
                _qp.Connect(hello.Node, ibv_access_flags.IBV_ACCESS_REMOTE_READ | ibv_access_flags.IBV_ACCESS_REMOTE_WRITE | ibv_access_flags.IBV_ACCESS_REMOTE_ATOMIC);
                var welcome = new VerbsWelcome(_qp.Address, (ulong)exporter._regionAddress, exporter._regionLength, exporter._readRegion.Rkey, keys);
                await VerbsHandshake.WriteAsync(stream, VerbsHandshake.EncodeWelcome(welcome), handshake.Token).ConfigureAwait(false);

                // The node holds the control connection open for as long as it uses the queue pair; EOF means it left.
                var sink = new byte[1];
                while (await stream.ReadAsync(sink, exporter._stopping.Token).ConfigureAwait(false) > 0)
                {
                }
            }
            catch (Exception ended) when (ended is IOException or SocketException or OperationCanceledException or ObjectDisposedException or InvalidDataException or FabricException)
            {
                // A node that leaves or misbehaves only loses its own session.
            }
            finally
            {
                client.Dispose();
                _qp?.Dispose();
                foreach (var mr in _writable)
                {
                    mr.Dispose();
                }

                exporter.Remove(this);
            }
        }
    }
}
