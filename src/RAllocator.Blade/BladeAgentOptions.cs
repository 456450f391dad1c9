namespace RAllocator.Blade;

/// <summary>Pacing of the blade agent.</summary>
public sealed record BladeAgentOptions
{
    /// <summary>Pause between passes of <see cref="BladeAgent.RunAsync"/> (default 200 µs).</summary>
    public TimeSpan PassInterval { get; init; } = TimeSpan.FromMicroseconds(200);

    /// <summary>Upper bound on ring entries written in one pass, so one pass never runs long (default 256).</summary>
    public int MaxFillsPerPass { get; init; } = 256;
}

/// <summary>Counts of what the agent has done; read them to measure the blade CPU's share.</summary>
/// <param name="HandlerCalls">Agent passes (each pass is one call of the blade's handler).</param>
/// <param name="SlabsRinged">Slabs placed in the ring.</param>
/// <param name="ExhaustedEntries">Ring entries written as "blade full".</param>
/// <param name="AcksApplied">Acknowledgements applied to the ownership table.</param>
/// <param name="AcksRejected">Acknowledgements that named a slab the node was not given (ignored).</param>
/// <param name="FreesDrained">Free requests drained.</param>
/// <param name="FreesRejected">Free requests for slabs the node did not own (ignored).</param>
/// <param name="SlabsReclaimed">Freed slabs made reusable after their epoch passed.</param>
/// <param name="TicketsReleased">Slabs of taken tickets nobody acknowledged (crashed or abandoned acquisitions) made free again.</param>
/// <param name="EpochAdvances">Global epoch advances.</param>
/// <param name="LeasesExpired">Node leases that expired.</param>
public readonly record struct BladeAgentStats(
    long HandlerCalls,
    long SlabsRinged,
    long ExhaustedEntries,
    long AcksApplied,
    long AcksRejected,
    long FreesDrained,
    long FreesRejected,
    long SlabsReclaimed,
    long TicketsReleased,
    long EpochAdvances,
    long LeasesExpired);
