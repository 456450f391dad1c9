namespace RAllocator.Blade;

// Seeded bugs for the checkers: each one breaks a persistence rule on purpose so that a test can show the crash
// properties catch it. Reached through InternalsVisibleTo only; never public, never set in production code.
public sealed partial class BladeImage
{
    internal BladeMetadataFaults Faults { get; set; } = BladeMetadataFaults.None;
}

/// <summary>A deliberately broken persistence rule (test hooks only).</summary>
internal sealed record BladeMetadataFaults
{
    public static readonly BladeMetadataFaults None = new();

    /// <summary>Update the ownership table and bitmap without the redo intent.</summary>
    public bool SkipIntentLog { get; init; }

    /// <summary>Clear the intent before the bitmap word is persisted.</summary>
    public bool SkipBitmapPersist { get; init; }

    /// <summary>Persist only the first ownership entry of a span's update (its head), not every base slab's.</summary>
    public bool PersistOnlySpanHead { get; init; }

    /// <summary>Never persist the new superblock copy.</summary>
    public bool SkipSuperblockPersist { get; init; }
}
