namespace RAllocator.Fabric;

/// <summary>Why a fabric operation failed: the status a work completion would carry.</summary>
public enum FabricStatus
{
    /// <summary>The operation completed.</summary>
    Success,
    /// <summary>The address range is outside the region or not registered for this node.</summary>
    RemoteAccessError,
    /// <summary>An atomic was given a misaligned address.</summary>
    RemoteAlignmentError,
    /// <summary>The blade cannot be reached or the connection was closed.</summary>
    Unreachable,
    /// <summary>The fabric injected a failure (fault-injection decorators, tests).</summary>
    InjectedFault,
}

/// <summary>A fabric operation completed with an error status.</summary>
public sealed class FabricException : Exception
{
    /// <summary>Creates the exception for a completion with <paramref name="status"/>.</summary>
    public FabricException(FabricStatus status, string message)
        : base(message)
    {
        Status = status;
    }

    /// <summary>Creates the exception for a completion with <paramref name="status"/> caused by <paramref name="innerException"/>.</summary>
    public FabricException(FabricStatus status, string message, Exception? innerException)
        : base(message, innerException)
    {
        Status = status;
    }

    /// <summary>The completion status.</summary>
    public FabricStatus Status { get; }
}
