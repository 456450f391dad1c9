using System.Net;
using System.Net.Sockets;

namespace RAllocator.Coordinator;

/// <summary>How a <see cref="RemoteHintSource"/> polls.</summary>
public sealed record RemoteHintSourceOptions
{
    /// <summary>Pause between polls while the coordinator answers (default 250 ms).</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromMilliseconds(250);

    /// <summary>How long one poll (connect, request, answer) may take (default 2 s).</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>The longest pause between polls while the coordinator does not answer (default 10 s).</summary>
    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Receives a line when the coordinator stops answering, answers again, or restarts. Null: silent.</summary>
    public Action<string>? Log { get; init; }

    internal void Validate()
    {
        if (PollInterval <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(PollInterval), PollInterval, "the poll interval must be positive.");
        }

        if (RequestTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(RequestTimeout), RequestTimeout, "the request timeout must be positive.");
        }

        if (MaxBackoff < PollInterval)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxBackoff), MaxBackoff, "the longest backoff must be at least the poll interval.");
        }
    }
}

/// <summary>What a <see cref="RemoteHintSource"/> has done so far.</summary>
/// <param name="Polls">Polls attempted.</param>
/// <param name="HintsReceived">Polls answered with hints (installed, or already in force).</param>
/// <param name="Failures">Polls that failed: unreachable, timed out, refused or answered with a malformed message.</param>
/// <param name="ConsecutiveFailures">Failures since the last answer; the backoff doubles with each.</param>
/// <param name="LastFailure">Why the last failed poll failed, or null if none has.</param>
/// <param name="Incarnation">The incarnation of the coordinator whose hints are in force (0 before the first).</param>
/// <param name="NextDelay">The pause <see cref="RemoteHintSource.RunAsync"/> takes before the next poll.</param>
public readonly record struct RemoteHintSourceStatistics(
    long Polls,
    long HintsReceived,
    long Failures,
    int ConsecutiveFailures,
    string? LastFailure,
    ulong Incarnation,
    TimeSpan NextDelay);

/// <summary>
/// A working node's link to a coordinator's <see cref="HintServer"/>: polls it in the background and hands each
/// answer to a <see cref="CoordinatedPlacement"/>. Soft state end to end: the heap's allocations only ever read the
/// hints already installed and never wait for a poll; when the coordinator is down, slow or restarting, the last
/// hints stay in force, failures are counted, and polls back off (doubling up to
/// <see cref="RemoteHintSourceOptions.MaxBackoff"/>) until it answers again.
/// </summary>
/// <remarks>Thread-safe; polls are serialized. One TCP connection, kept between polls and reopened after a failure.</remarks>
public sealed class RemoteHintSource : IAsyncDisposable
{
    private readonly RemoteHintSourceOptions _options;
    private readonly SemaphoreSlim _pollGate = new(1, 1);
    private readonly CancellationTokenSource _disposed = new();
    private readonly byte[] _request = HintCodec.EncodeRequest();
    private Socket? _socket;
    private NetworkStream? _stream;
    private long _polls;
    private long _hintsReceived;
    private long _failures;
    private int _consecutiveFailures;
    private string? _lastFailure;
    private ulong _incarnation;

    /// <summary>A source that polls the hint service at <paramref name="coordinator"/> and feeds <paramref name="placement"/>.</summary>
    /// <param name="coordinator">The service's address: an <see cref="IPEndPoint"/> or a <see cref="DnsEndPoint"/>.</param>
    /// <param name="placement">The policy of the node's heap (<c>HeapOptions.Placement</c>).</param>
    /// <param name="options">Poll pacing and timeouts.</param>
    public RemoteHintSource(EndPoint coordinator, CoordinatedPlacement placement, RemoteHintSourceOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(coordinator);
        ArgumentNullException.ThrowIfNull(placement);
        _options = options ?? new RemoteHintSourceOptions();
        _options.Validate();
        Coordinator = coordinator;
        Placement = placement;
    }

    /// <summary>The hint service polled.</summary>
    public EndPoint Coordinator { get; }

    /// <summary>The policy the hints go to.</summary>
    public CoordinatedPlacement Placement { get; }

    /// <summary>Counts so far and the next pause.</summary>
    public RemoteHintSourceStatistics Statistics
    {
        get
        {
            int consecutive = Volatile.Read(ref _consecutiveFailures);
            return new RemoteHintSourceStatistics(
                Interlocked.Read(ref _polls),
                Interlocked.Read(ref _hintsReceived),
                Interlocked.Read(ref _failures),
                consecutive,
                Volatile.Read(ref _lastFailure),
                Interlocked.Read(ref _incarnation),
                DelayAfter(consecutive, _options));
        }
    }

    /// <summary>
    /// Asks the coordinator once. True when it answered with hints (installed if newer, or from a new incarnation);
    /// false when it had none yet or the poll failed, in which case the hints in force stay and the failure is
    /// counted. Never throws for the coordinator's sake: only for <paramref name="cancellationToken"/>.
    /// </summary>
    public async Task<bool> PollOnceAsync(CancellationToken cancellationToken = default)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _disposed.Token);
        try
        {
            await _pollGate.WaitAsync(linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return false; // disposed
        }

        try
        {
            return !_disposed.IsCancellationRequested && await PollLockedAsync(linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return false; // disposed during the poll
        }
        finally
        {
            _pollGate.Release();
        }
    }

    /// <summary>
    /// Polls until <paramref name="cancellationToken"/> is cancelled or the source is disposed: every
    /// <see cref="RemoteHintSourceOptions.PollInterval"/> while the coordinator answers, backing off while it does not.
    /// </summary>
    /// <returns>A task that completes when cancelled or disposed; it never faults for the coordinator's sake.</returns>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _disposed.Token);
        while (!linked.IsCancellationRequested)
        {
            try
            {
                await PollOnceAsync(linked.Token).ConfigureAwait(false);
                await Task.Delay(Statistics.NextDelay, linked.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (linked.IsCancellationRequested)
            {
                return;
            }
        }
    }

    /// <summary>Stops <see cref="RunAsync"/> and closes the connection; the placement keeps the hints in force.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_disposed.IsCancellationRequested)
        {
            return;
        }

        await _disposed.CancelAsync().ConfigureAwait(false);
        await _pollGate.WaitAsync().ConfigureAwait(false);
        try
        {
            CloseConnection();
        }
        finally
        {
            _pollGate.Release();
        }
    }

    /// <summary>The pause after <paramref name="consecutiveFailures"/> failed polls: the interval, doubled per failure, capped.</summary>
    internal static TimeSpan DelayAfter(int consecutiveFailures, RemoteHintSourceOptions options)
    {
        if (consecutiveFailures <= 0)
        {
            return options.PollInterval;
        }

        // Past 2^30 intervals every sane cap is reached; stopping there keeps the multiplication from overflowing.
        double factor = Math.Pow(2, Math.Min(consecutiveFailures, 30));
        double ticks = Math.Min(options.PollInterval.Ticks * factor, options.MaxBackoff.Ticks);
        return TimeSpan.FromTicks((long)ticks);
    }

    private async Task<bool> PollLockedAsync(CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _polls);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_options.RequestTimeout);
        HintResponse response;
        while (true)
        {
            bool reused = _stream is not null;
            try
            {
                var stream = _stream ?? await ConnectAsync(timeout.Token).ConfigureAwait(false);
                await stream.WriteAsync(_request, timeout.Token).ConfigureAwait(false);
                response = HintCodec.DecodeResponse(await HintCodec.ReadFrameAsync(stream, HintCodec.MaxResponseBytes, timeout.Token).ConfigureAwait(false));
                break;
            }
            catch (Exception ex) when (!cancellationToken.IsCancellationRequested && ex is SocketException or IOException or EndOfStreamException or OperationCanceledException or HintFormatException or ObjectDisposedException)
            {
                CloseConnection();
                if (reused && ex is SocketException or IOException or EndOfStreamException)
                {
                    // A kept connection may be one the coordinator closed (idle timeout, restart) since the last
                    // poll: that is no failure of the coordinator, so try once more on a fresh connection.
                    continue;
                }

                RecordFailure(Describe(ex));
                return false;
            }
        }

        switch (response.Status)
        {
            case HintStatus.Ok:
                Install(response);
                return true;
            case HintStatus.NoHintsYet:
                RecordAnswer();
                return false;
            default:
                // Busy or Malformed: the service closes the connection after either.
                CloseConnection();
                RecordFailure($"the coordinator answered {response.Status}: {response.Message}");
                return false;
        }
    }

    private async Task<NetworkStream> ConnectAsync(CancellationToken cancellationToken)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(Coordinator, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: true);
        return _stream;
    }

    private void CloseConnection()
    {
        _stream?.Dispose();
        _socket?.Dispose();
        _stream = null;
        _socket = null;
    }

    private void Install(HintResponse response)
    {
        var hints = response.Hints!;
        ulong previous = Interlocked.Exchange(ref _incarnation, response.Incarnation);
        if (previous == response.Incarnation)
        {
            Placement.Update(hints);
        }
        else
        {
            Placement.Reset(hints);
            if (previous != 0)
            {
                _options.Log?.Invoke($"coordinator {Coordinator} restarted (incarnation {previous:x16} -> {response.Incarnation:x16}): its hints replace the previous ones");
            }
        }

        Interlocked.Increment(ref _hintsReceived);
        RecordAnswer();
    }

    private void RecordAnswer()
    {
        int failures = Interlocked.Exchange(ref _consecutiveFailures, 0);
        if (failures > 0)
        {
            _options.Log?.Invoke($"coordinator {Coordinator} answers again after {failures} failed poll(s)");
        }
    }

    private void RecordFailure(string reason)
    {
        Interlocked.Increment(ref _failures);
        Volatile.Write(ref _lastFailure, reason);
        if (Interlocked.Increment(ref _consecutiveFailures) == 1)
        {
            _options.Log?.Invoke($"coordinator {Coordinator} does not answer ({reason}); keeping the last hints and retrying with backoff");
        }
    }

    private string Describe(Exception ex) => ex switch
    {
        SocketException { SocketErrorCode: SocketError.ConnectionRefused } => "the connection was refused: is 'rallocator coordinator --listen' running there?",
        SocketException { SocketErrorCode: SocketError.HostNotFound } => "the host name does not resolve",
        OperationCanceledException => $"no answer within {_options.RequestTimeout.TotalSeconds:0.###} s",
        EndOfStreamException => "the coordinator closed the connection",
        HintFormatException => $"malformed answer: {ex.Message}",
        _ => ex.Message,
    };
}
