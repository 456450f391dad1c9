namespace RAllocator.Node;

// Seeded compaction bugs for the checkers (InternalsVisibleTo only, never set in production code).
public sealed partial class WorkingNodeHeap
{
    internal CompactionFaults CompactionFaults { get; set; } = CompactionFaults.None;
}

/// <summary>A deliberately broken rule of compaction (test hooks only).</summary>
internal sealed record CompactionFaults
{
    public static readonly CompactionFaults None = new();

    /// <summary>Free the old object (and return its slab once empty) before the relocation callback commits the move:
    /// a crash in between leaves the application referring to a slab the node no longer owns.</summary>
    public bool FreeSourceBeforeCommit { get; init; }

    /// <summary>Write the copy without persisting it, call the relocation callback, then persist: a power failure
    /// after the commit can lose the copy the application now refers to.</summary>
    public bool CommitBeforeCopyPersisted { get; init; }

    /// <summary>Give the destination object back to the free list while the copy and the commit run, and take it again
    /// after: a concurrent allocation in between is handed the same object.</summary>
    public bool ReserveDestinationLate { get; init; }
}
