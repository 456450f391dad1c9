namespace RAllocator.Fabric.Ucx;

/// <summary>How a UCX context is configured, on the blade and on the node (each process sets its own).</summary>
public sealed record UcxOptions
{
    /// <summary>The transports UCX may use, as a UCX_TLS value: <c>"sm"</c> (shared memory: posix, sysv, cma),
    /// <c>"tcp"</c>, <c>"rc"</c>/<c>"dc"</c> (InfiniBand/RoCE), a comma-separated list, or null for UCX's default
    /// (everything available, or the process's UCX_TLS). Applied to this context only, through ucp_config_modify.</summary>
    public string? Transports { get; init; }

    /// <summary>The network devices UCX may use, as a UCX_NET_DEVICES value (<c>"lo"</c>, <c>"eth0"</c>, <c>"mlx5_0:1"</c>),
    /// or null for UCX's default (all).</summary>
    public string? NetworkDevices { get; init; }

    /// <summary>
    /// The longest a node waits for any completion (an operation, the connection's first flush, closing) before it
    /// declares the blade unreachable: the operation fails with <see cref="FabricStatus.Unreachable"/> and the
    /// connection stays failed. Covers transports that cannot detect a dead peer (shared memory). Default 5 s.
    /// </summary>
    public TimeSpan OperationTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Whether node endpoints use UCP_ERR_HANDLING_MODE_PEER, which fails in-flight operations promptly when the
    /// blade dies instead of leaving them to <see cref="OperationTimeout"/>. UCX 1.13 disables the shared-memory
    /// transports in that mode, so null (the default) enables it exactly when <see cref="Transports"/> names no
    /// shared-memory transport and is not null (an exclusion list such as <c>"^sm"</c> counts as naming none).
    /// </summary>
    public bool? PeerFailureDetection { get; init; }

    /// <summary>How long the blade's progress thread keeps polling after its last event before it sleeps on the
    /// worker's event fd: a wake-up costs a few microseconds, a longer spin costs CPU. Default 50 µs.</summary>
    public TimeSpan BladeSpinBeforeSleep { get; init; } = TimeSpan.FromMicroseconds(50);

    private static readonly string[] s_sharedMemoryTransports = ["sm", "shm", "mm", "posix", "sysv", "cma", "knem", "xpmem", "self"];

    internal bool UsesPeerFailureDetection =>
        PeerFailureDetection ?? (Transports is not null
            && !Transports.StartsWith('^')
            && !Transports.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
                .Any(transport => s_sharedMemoryTransports.Contains(transport, StringComparer.OrdinalIgnoreCase)));

    internal void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(OperationTimeout, TimeSpan.Zero, nameof(OperationTimeout));
        ArgumentOutOfRangeException.ThrowIfLessThan(BladeSpinBeforeSleep, TimeSpan.Zero, nameof(BladeSpinBeforeSleep));
    }
}
