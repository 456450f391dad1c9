namespace RAllocator.KeyValue;

/// <summary>How a <see cref="PersistentKvStore"/> is created and opened.</summary>
public sealed record KvStoreOptions
{
    /// <summary>Largest height a skip-list node may have (1 to 32; default 20, enough for about 4^20 keys).</summary>
    public const int MaxSupportedHeight = 32;

    /// <summary>
    /// Largest key, in bytes (1 to 32768; default 256). Recorded in the store when it is created; an existing
    /// store keeps the limit it was created with.
    /// </summary>
    public int MaxKeyBytes { get; init; } = 256;

    /// <summary>
    /// Largest value, in bytes (0 to 262136, and the value object of 8 + this many bytes must fit in a slab of
    /// every blade; default 16384). Recorded in the store when it is created; an existing store keeps its limit.
    /// </summary>
    public int MaxValueBytes { get; init; } = 16 * 1024;

    /// <summary>Largest skip-list height (1 to <see cref="MaxSupportedHeight"/>; default 20). Used at creation only.</summary>
    public int MaxHeight { get; init; } = 20;

    /// <summary>The blade whose root pointer of this node names the store (default 0).</summary>
    public int RootBladeId { get; init; }

    /// <summary>Create an empty store when the root pointer is null (default true); otherwise opening fails.</summary>
    public bool CreateIfMissing { get; init; } = true;

    /// <summary>
    /// Read every value on open and check its length and checksum (default true). Without it recovery reads
    /// only the value headers; a damaged value is then reported when it is read.
    /// </summary>
    public bool VerifyValuesOnOpen { get; init; } = true;

    /// <summary>Seed of the node-height generator (default: random). Fixed seeds make layouts reproducible in tests.</summary>
    public int? Seed { get; init; }

    /// <summary>A deliberately broken write order, for tests that must catch it. Never set outside tests.</summary>
    internal KvSeededBug SeededBug { get; init; }
}

/// <summary>Deliberate crash-consistency bugs, each of which the crash tests must detect.</summary>
internal enum KvSeededBug
{
    /// <summary>No bug.</summary>
    None,

    /// <summary>Publish the pointer to a new value (or node) before the value's bytes are persisted.</summary>
    PublishBeforePersist,

    /// <summary>Free the old value version before the pointer swing that replaces it is persisted.</summary>
    FreeBeforePublish,
}
