using RAllocator.Protocol;

namespace RAllocator.Node;

/// <summary>
/// The relocation callback threw (its exception is <see cref="Exception.InnerException"/>): compaction freed the copy
/// at <see cref="To"/>, kept the object at <see cref="From"/>, put the unfinished source slabs back into allocation
/// and stopped. The heap is consistent; moves committed before this one stay done.
/// </summary>
public sealed class RelocationFailedException : Exception
{
    /// <summary>Creates the exception for the move of <paramref name="from"/> to <paramref name="to"/>.</summary>
    public RelocationFailedException(RemotePtr from, RemotePtr to, Exception inner)
        : base($"the relocation callback failed moving {from} to {to}; {from} is kept and {to} freed: {inner.Message}", inner)
    {
        From = from;
        To = to;
    }

    /// <summary>The object that stays where it was.</summary>
    public RemotePtr From { get; }

    /// <summary>The copy that was freed.</summary>
    public RemotePtr To { get; }

    /// <summary>What compaction had done before it stopped.</summary>
    public CompactionReport? Report { get; internal set; }
}
