namespace RAllocator.KeyValue;

/// <summary>
/// An ordered key-value store with byte-string keys compared ordinally (unsigned bytes, shorter prefix first).
/// <see cref="PersistentKvStore"/> is the persistent implementation; the YCSB driver runs against this interface.
/// </summary>
public interface IKeyValueStore
{
    /// <summary>The value of <paramref name="key"/>, or null when it is absent.</summary>
    ValueTask<byte[]?> GetAsync(ReadOnlyMemory<byte> key, CancellationToken cancellationToken = default);

    /// <summary>Inserts or replaces the value of <paramref name="key"/>; durable when the returned task completes.</summary>
    ValueTask PutAsync(ReadOnlyMemory<byte> key, ReadOnlyMemory<byte> value, CancellationToken cancellationToken = default);

    /// <summary>Removes <paramref name="key"/>; returns whether it was present. Durable when the task completes.</summary>
    ValueTask<bool> DeleteAsync(ReadOnlyMemory<byte> key, CancellationToken cancellationToken = default);

    /// <summary>
    /// The entries with <paramref name="from"/> &lt;= key &lt; <paramref name="to"/> in key order (null: unbounded),
    /// at most <paramref name="limit"/> of them.
    /// </summary>
    ValueTask<IReadOnlyList<KeyValuePair<byte[], byte[]>>> ScanAsync(byte[]? from, byte[]? to, int limit = int.MaxValue, CancellationToken cancellationToken = default);
}
