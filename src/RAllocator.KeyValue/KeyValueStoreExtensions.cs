using System.Text;

namespace RAllocator.KeyValue;

/// <summary>Text keys and values (UTF-8) on any <see cref="IKeyValueStore"/>.</summary>
public static class KeyValueStoreExtensions
{
    /// <summary>The value of <paramref name="key"/> (UTF-8) as UTF-8 text, or null when it is absent.</summary>
    public static async ValueTask<string?> GetAsync(this IKeyValueStore store, string key, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(key);
        var value = await store.GetAsync(Encoding.UTF8.GetBytes(key), cancellationToken).ConfigureAwait(false);
        return value is null ? null : Encoding.UTF8.GetString(value);
    }

    /// <summary>Inserts or replaces the value of <paramref name="key"/>, both as UTF-8.</summary>
    public static ValueTask PutAsync(this IKeyValueStore store, string key, string value, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(value);
        return store.PutAsync(Encoding.UTF8.GetBytes(key), Encoding.UTF8.GetBytes(value), cancellationToken);
    }

    /// <summary>Removes <paramref name="key"/> (UTF-8); returns whether it was present.</summary>
    public static ValueTask<bool> DeleteAsync(this IKeyValueStore store, string key, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(key);
        return store.DeleteAsync(Encoding.UTF8.GetBytes(key), cancellationToken);
    }
}
