using RAllocator.Nvm;

namespace RAllocator.Fabric.Loopback;

/// <summary>
/// The blade side of an in-process fabric: hands out <see cref="LoopbackConnection"/>s whose one-sided verbs act
/// directly on an <see cref="INvmRegion"/>, checked against each node's registrations.
/// </summary>
/// <remarks>
/// <para>Deterministic by construction: no threads and no timers (beyond the optional
/// <see cref="LoopbackOptions.RoundTripLatency"/>). Every verb executes on the caller's thread before its call
/// returns, which makes RC queue-pair ordering hold trivially. Concurrency comes only from concurrent callers, and
/// the region's 8-byte atomics are what keep them correct, as the NIC's atomics do on hardware.</para>
/// <para>The fabric does not own the region: disposing it stays with whoever created it.</para>
/// </remarks>
public sealed class LoopbackFabric
{
    private int _connectionsOpened;

    // Read on every verb from any thread; a stale value only delays the simulated failure by one verb, which a
    // real fabric's detection latency also allows.
    private volatile bool _reachable = true;

    /// <summary>Creates a fabric in front of <paramref name="region"/>.</summary>
    public LoopbackFabric(INvmRegion region, LoopbackOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(region);
        Region = region;
        Options = options ?? new LoopbackOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(Options.RoundTripLatency, TimeSpan.Zero, nameof(options));
    }

    /// <summary>The blade's region every connection addresses.</summary>
    public INvmRegion Region { get; }

    /// <summary>Timing and scheduling behaviour shared by every connection.</summary>
    public LoopbackOptions Options { get; }

    /// <summary>False while the blade is simulated as failed: every connection's operations fail with <see cref="FabricStatus.Unreachable"/>.</summary>
    public bool IsReachable => _reachable;

    /// <summary>
    /// Simulates the blade failing (<c>false</c>) or coming back (<c>true</c>). Operations already executing finish;
    /// later ones, and the remaining verbs of a batch in progress, fail with <see cref="FabricStatus.Unreachable"/>.
    /// The region keeps its contents, as NVM does across a blade's outage.
    /// </summary>
    public void SetReachable(bool reachable) => _reachable = reachable;

    /// <summary>
    /// Connects a working node holding the registrations <paramref name="access"/>. The returned connection is an
    /// <see cref="IFabricConnection"/>; its concrete type adds a per-link partition switch for tests.
    /// </summary>
    /// <param name="bladeId">The blade's index in the connecting node's blade list, reported as <see cref="IFabricConnection.BladeId"/>.</param>
    /// <param name="access">The node's registrations: where it may write, update atomically and persist.</param>
    /// <param name="nodeName">Names the node in error messages; defaults to a connection number.</param>
    /// <exception cref="ArgumentOutOfRangeException">A writable range extends past the region: no blade would register it.</exception>
    public LoopbackConnection Connect(int bladeId, FabricAccess access, string? nodeName = null)
    {
        ArgumentNullException.ThrowIfNull(access);
        foreach (var range in access.WritableRanges)
        {
            if (range.End > Region.Length)
            {
                ThrowHelper.ThrowRangeOutsideRegion(range, Region.Length);
            }
        }

        var connectionNumber = Interlocked.Increment(ref _connectionsOpened);
        return new LoopbackConnection(this, bladeId, access, nodeName ?? $"connection {connectionNumber}");
    }
}
