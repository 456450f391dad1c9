using RAllocator.Fabric;
using RAllocator.Hosting;

namespace RAllocator.Cli.Commands;

/// <summary>
/// The coordinator's read-only view of one blade server: an observer session that is reopened, with backoff, when
/// the blade goes away, so a blade restart costs the coordinator a few refreshes that mark it unreachable rather
/// than a restart of the coordinator. Only READ is offered; its counters add up across sessions.
/// </summary>
internal sealed class ObservedBlade : IFabricConnection
{
    private static readonly TimeSpan s_firstRetry = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan s_maxRetry = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan s_readTimeout = TimeSpan.FromSeconds(5);

    private readonly AccessToken _token;
    private readonly IFabricConnector _connector;
    private readonly Action<string> _log;
    private readonly FabricCounters _counters = new();
    private readonly CancellationTokenSource _closing = new();
    private readonly Lock _gate = new();
    private IFabricConnection? _current;
    private Task _reconnecting = Task.CompletedTask;
    private volatile string? _lastError;

    private ObservedBlade(BladeEndpoint endpoint, int bladeId, AccessToken token, IFabricConnector connector, Action<string> log, IFabricConnection first)
    {
        Endpoint = endpoint;
        BladeId = bladeId;
        _token = token;
        _connector = connector;
        _log = log;
        _current = first;
        RegionLength = first.RegionLength;
    }

    /// <summary>Where the blade server listens.</summary>
    public BladeEndpoint Endpoint { get; }

    /// <inheritdoc />
    public int BladeId { get; }

    /// <inheritdoc />
    public long RegionLength { get; }

    /// <summary>READs issued to the blade over every session so far, and their bytes.</summary>
    public FabricCounters Counters => _counters;

    /// <summary>Why the blade is unreachable now, or null while a session is open.</summary>
    public string? LastError => Volatile.Read(ref _current) is null ? _lastError : null;

    /// <summary>Opens the first observer session; unlike later ones, its failure is the caller's to report.</summary>
    /// <exception cref="BladeRefusedException">The blade refused the observer.</exception>
    /// <exception cref="FabricException">The blade is unreachable.</exception>
    public static async Task<ObservedBlade> ConnectAsync(BladeEndpoint endpoint, int bladeId, AccessToken token, IFabricConnector connector, Action<string> log, CancellationToken cancellationToken)
    {
        var first = await OpenAsync(endpoint, bladeId, token, connector, cancellationToken).ConfigureAwait(false);
        return new ObservedBlade(endpoint, bladeId, token, connector, log, first);
    }

    /// <inheritdoc />
    public async ValueTask ReadAsync(long remoteOffset, Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        var current = Volatile.Read(ref _current);
        if (current is null)
        {
            throw new FabricException(FabricStatus.Unreachable, $"blade {BladeId} ({Endpoint}) is unreachable: {_lastError}");
        }

        _counters.CountVerb(FabricVerb.Read);
        _counters.CountRoundTrip();
        _counters.CountBytesFromBlade(destination.Length);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(s_readTimeout);
        try
        {
            await current.ReadAsync(remoteOffset, destination, timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // A READ that hangs (a blade host gone silent without closing the session) must not stall every
            // refresh: the blade counts as unreachable and its session is reopened.
            var reason = $"no answer to a READ within {s_readTimeout.TotalSeconds:0} s";
            Lose(current, reason);
            throw new FabricException(FabricStatus.Unreachable, $"blade {BladeId} ({Endpoint}) is unreachable: {reason}");
        }
        catch (FabricException ex) when (ex.Status == FabricStatus.Unreachable)
        {
            // The session's own reason, not the verb's message, which tells a working node how to get its slabs back.
            Lose(current, current is BladeSessionConnection { LostReason: { } reason } ? reason : ex.Message);
            throw;
        }
    }

    /// <inheritdoc />
    public ValueTask WriteAsync(long remoteOffset, ReadOnlyMemory<byte> source, CancellationToken cancellationToken = default) =>
        ValueTask.FromException(ReadOnly("WRITE"));

    /// <inheritdoc />
    public ValueTask<ulong> FetchAddAsync(long remoteOffset, ulong delta, CancellationToken cancellationToken = default) =>
        ValueTask.FromException<ulong>(ReadOnly("FETCH_AND_ADD"));

    /// <inheritdoc />
    public ValueTask<ulong> CompareSwapAsync(long remoteOffset, ulong expected, ulong desired, CancellationToken cancellationToken = default) =>
        ValueTask.FromException<ulong>(ReadOnly("CMP_AND_SWP"));

    /// <inheritdoc />
    public ValueTask PersistAsync(long remoteOffset, long length, CancellationToken cancellationToken = default) =>
        ValueTask.FromException(ReadOnly("PERSIST"));

    /// <inheritdoc />
    public FabricBatch CreateBatch() => new((_, _, _) => ValueTask.FromException(ReadOnly("a batch")));

    /// <summary>Stops reconnecting and ends the session (the blade revokes nothing but this observer's read key).</summary>
    public async ValueTask DisposeAsync()
    {
        await _closing.CancelAsync().ConfigureAwait(false);
        Task reconnecting;
        lock (_gate)
        {
            reconnecting = _reconnecting;
        }

        await reconnecting.ConfigureAwait(false);
        if (Interlocked.Exchange(ref _current, null) is { } current)
        {
            await current.DisposeAsync().ConfigureAwait(false);
        }
    }

    private static Task<IFabricConnection> OpenAsync(BladeEndpoint endpoint, int bladeId, AccessToken token, IFabricConnector connector, CancellationToken cancellationToken) =>
        RemoteBlade.ConnectObserverAsync(endpoint, bladeId, token, connector,
            new RemoteBladeOptions { RetryFor = TimeSpan.Zero, NodeName = $"rallocator coordinator ({Environment.MachineName} pid {Environment.ProcessId})" },
            cancellationToken);

    private FabricException ReadOnly(string verb) =>
        new(FabricStatus.RemoteAccessError, $"blade {BladeId} ({Endpoint}): the coordinator observes blades read-only; {verb} is not allowed.");

    private void Lose(IFabricConnection lost, string reason)
    {
        if (Interlocked.CompareExchange(ref _current, null, lost) != lost)
        {
            return;
        }

        _lastError = reason;
        _log($"blade {BladeId} ({Endpoint}) lost: {reason}; reconnecting in the background");
        _ = lost.DisposeAsync().AsTask();
        lock (_gate)
        {
            if (_reconnecting.IsCompleted && !_closing.IsCancellationRequested)
            {
                _reconnecting = ReconnectAsync();
            }
        }
    }

    private async Task ReconnectAsync()
    {
        var delay = s_firstRetry;
        while (!_closing.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(delay, _closing.Token).ConfigureAwait(false);
                var session = await OpenAsync(Endpoint, BladeId, _token, _connector, _closing.Token).ConfigureAwait(false);
                if (session.RegionLength != RegionLength)
                {
                    // Another image behind the same address: its geometry is not the one the coordinator read.
                    await session.DisposeAsync().ConfigureAwait(false);
                    _lastError = $"the blade now serves a {session.RegionLength}-byte image instead of {RegionLength} bytes; restart the coordinator to watch it";
                    _log($"blade {BladeId} ({Endpoint}): {_lastError}");
                    return;
                }

                Volatile.Write(ref _current, session);
                _log($"blade {BladeId} ({Endpoint}) reconnected");
                return;
            }
            catch (OperationCanceledException) when (_closing.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (ex is FabricException or BladeRefusedException)
            {
                _lastError = ex.Message;
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, s_maxRetry.Ticks));
            }
        }
    }
}
