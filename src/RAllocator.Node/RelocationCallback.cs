using RAllocator.Protocol;

namespace RAllocator.Node;

/// <summary>
/// Called by <see cref="WorkingNodeHeap.CompactAsync"/> once the object at <paramref name="from"/> has been copied,
/// durably, to <paramref name="to"/>: the application redirects every reference it keeps from
/// <paramref name="from"/> to <paramref name="to"/> and makes that durable before it returns. The call is the commit
/// point of the move.
/// </summary>
/// <param name="from">Where the object is now; still allocated, and its bytes untouched, until the call returns.</param>
/// <param name="to">Where its copy is: same size class, same bytes, already persisted.</param>
/// <param name="cancellationToken">The token passed to <see cref="WorkingNodeHeap.CompactAsync"/>.</param>
/// <returns>A task that completes once the redirection is durable.</returns>
/// <remarks>
/// <para>If the callback throws, it must not have redirected anything: compaction frees <paramref name="to"/>,
/// keeps <paramref name="from"/> and stops (<see cref="RelocationFailedException"/>). A crash <em>during</em> the
/// call is fine either way: both addresses hold the same durable bytes, and recovery by reachability keeps whichever
/// one the application's data refers to.</para>
/// <para>Compaction calls it once at a time, never concurrently with itself.</para>
/// </remarks>
public delegate ValueTask RelocationCallback(RemotePtr from, RemotePtr to, CancellationToken cancellationToken);
