namespace RAllocator.Fabric.Verbs;

/// <summary>Which RDMA device and port to use, and the bounds of one connection's queues and buffers.</summary>
public sealed record VerbsOptions
{
    /// <summary>The device to open (as ibv_devices lists it, e.g. "mlx5_0" or "rxe0"); null takes the first one.</summary>
    public string? DeviceName { get; init; }

    /// <summary>The device port (1-based, as in ibv_devinfo).</summary>
    public byte PortNumber { get; init; } = 1;

    /// <summary>The GID table index (RoCE v2 is usually at index 1 or 3; <c>show_gids</c> lists them). InfiniBand may use 0.</summary>
    public byte GidIndex { get; init; }

    /// <summary>Send-queue depth: the most work requests outstanding on one queue pair.</summary>
    public int SendQueueDepth { get; init; } = 256;

    /// <summary>Every this many unsignaled work requests, one is signaled and waited for, so the send queue never overflows.</summary>
    public int SignalInterval { get; init; } = 64;

    /// <summary>Bytes of the node's registered staging buffer (payloads are copied through it).</summary>
    public int StagingBytes { get; init; } = 4 << 20;

    /// <summary>How long a completion may take before the blade is declared unreachable (the QP's own retries take about 0.5 s).</summary>
    public TimeSpan CompletionTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How long the TCP handshake may take.</summary>
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(10);

    internal void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(PortNumber, (byte)1, nameof(PortNumber));
        ArgumentOutOfRangeException.ThrowIfLessThan(SendQueueDepth, 4, nameof(SendQueueDepth));
        ArgumentOutOfRangeException.ThrowIfLessThan(SignalInterval, 1, nameof(SignalInterval));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(SignalInterval, SendQueueDepth / 2, nameof(SignalInterval));
        ArgumentOutOfRangeException.ThrowIfLessThan(StagingBytes, 4096, nameof(StagingBytes));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(CompletionTimeout, TimeSpan.Zero, nameof(CompletionTimeout));
    }
}
