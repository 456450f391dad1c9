using RAllocator.Protocol;

namespace RAllocator.KeyValue;

/// <summary>
/// The store's persistent structure is not what this library writes: a bad magic number, a node or value whose
/// header or checksum does not match, keys out of order, or a pointer outside this node's slabs. The message says
/// what was wrong and where; <see cref="Pointer"/> is the object at fault.
/// </summary>
public sealed class KvStoreCorruptException : Exception
{
    /// <summary>Creates the exception.</summary>
    public KvStoreCorruptException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public KvStoreCorruptException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and a cause.</summary>
    public KvStoreCorruptException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception for the object at <paramref name="pointer"/>.</summary>
    public KvStoreCorruptException(RemotePtr pointer, string message, Exception? innerException = null)
        : base($"key-value store corrupt at {pointer}: {message}", innerException)
    {
        Pointer = pointer;
    }

    /// <summary>The object at fault (<see cref="RemotePtr.Null"/> when none is known).</summary>
    public RemotePtr Pointer { get; }
}
