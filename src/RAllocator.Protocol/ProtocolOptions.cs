namespace RAllocator.Protocol;

/// <summary>Bounds and pacing of the working node's side of the protocol.</summary>
public sealed record ProtocolOptions
{
    /// <summary>
    /// Reads of a ring entry not yet filled for our ticket before the acquisition gives up (default 200, about
    /// two seconds with the default backoff). Every wait in the protocol is bounded.
    /// </summary>
    public int RingReadRetryLimit { get; init; } = 200;

    /// <summary>Reads of the node header while the acknowledgement or free area is full before giving up (default 200).</summary>
    public int AreaFullRetryLimit { get; init; } = 200;

    /// <summary>
    /// How to wait before retry number <c>attempt</c> (0-based). The default yields for the first 8 attempts,
    /// then sleeps 1, 2, 4, 8 then 10 ms. Tests inject their own for determinism.
    /// </summary>
    public Func<int, CancellationToken, Task> Backoff { get; init; } = DefaultBackoff;

    /// <summary>The default backoff described on <see cref="Backoff"/>.</summary>
    public static async Task DefaultBackoff(int attempt, CancellationToken cancellationToken)
    {
        if (attempt < 8)
        {
            await Task.Yield();
            return;
        }

        int sleepMs = Math.Min(1 << Math.Min(attempt - 8, 4), 10);
        await Task.Delay(sleepMs, cancellationToken).ConfigureAwait(false);
    }
}

/// <summary>The blade had no free slab for this node's ticket. Nothing leaked: the ticket carried no slab.</summary>
public sealed class BladeOutOfMemoryException(int bladeId, ulong ticket)
    : Exception($"blade {bladeId} is out of memory: it had no free slab for ticket {ticket}. Free slabs, or add a blade.")
{
    /// <summary>The blade that is full.</summary>
    public int BladeId { get; } = bladeId;
}

/// <summary>Why a protocol step gave up after its retry bound.</summary>
public enum ProtocolStall
{
    /// <summary>The ring entry for our ticket was never filled (the blade agent is stopped or slow, or the blade restarted).</summary>
    RingNotFilled,

    /// <summary>This node's acknowledgement area stayed full: the blade agent is not draining it.</summary>
    AcknowledgementAreaFull,

    /// <summary>This node's free-request area stayed full: the blade agent is not draining it.</summary>
    FreeAreaFull,
}

/// <summary>A protocol step reached its retry bound; the blade agent is probably not running.</summary>
public sealed class ProtocolStallException(ProtocolStall stall, string message) : Exception(message)
{
    /// <summary>What stalled.</summary>
    public ProtocolStall Stall { get; } = stall;
}
