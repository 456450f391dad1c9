namespace RAllocator.Protocol;

// Seeded node-side protocol bugs for the checkers (InternalsVisibleTo only, never set in production code).
public sealed partial class BladeClient
{
    internal BladeClientFaults Faults { get; set; } = BladeClientFaults.None;
}

/// <summary>A deliberately broken node-side rule (test hooks only).</summary>
internal sealed record BladeClientFaults
{
    public static readonly BladeClientFaults None = new();

    /// <summary>Durable ownership: post the acknowledgement without persisting it, so a blade crash can lose it.</summary>
    public bool SkipAcknowledgementPersist { get; init; }
}
