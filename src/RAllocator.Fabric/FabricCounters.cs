namespace RAllocator.Fabric;

/// <summary>
/// What the hardware would charge, counted per connection: verbs by kind, payload bytes each way, and round
/// trips (completions a caller waited on). Thread-safe; read a consistent-enough view with <see cref="Snapshot"/>.
/// </summary>
public sealed class FabricCounters
{
    private readonly long[] _verbs = new long[Enum.GetValues<FabricVerb>().Length];
    private long _roundTrips;
    private long _bytesToBlade;
    private long _bytesFromBlade;
    private long _unsignaledPosts;

    /// <summary>Counts one verb of <paramref name="verb"/> kind.</summary>
    public void CountVerb(FabricVerb verb) => Interlocked.Increment(ref _verbs[(int)verb]);

    /// <summary>Counts one completion that a caller waited on.</summary>
    public void CountRoundTrip() => Interlocked.Increment(ref _roundTrips);

    /// <summary>Counts one batch posted without a completion to wait on.</summary>
    public void CountUnsignaledPost() => Interlocked.Increment(ref _unsignaledPosts);

    /// <summary>Counts payload bytes sent to the blade (writes, atomic operands).</summary>
    public void CountBytesToBlade(long bytes) => Interlocked.Add(ref _bytesToBlade, bytes);

    /// <summary>Counts payload bytes returned by the blade (reads, atomic results).</summary>
    public void CountBytesFromBlade(long bytes) => Interlocked.Add(ref _bytesFromBlade, bytes);

    /// <summary>A copy of the current values.</summary>
    public FabricCounterSnapshot Snapshot() => new(
        RoundTrips: Interlocked.Read(ref _roundTrips),
        Reads: Interlocked.Read(ref _verbs[(int)FabricVerb.Read]),
        Writes: Interlocked.Read(ref _verbs[(int)FabricVerb.Write]),
        FetchAdds: Interlocked.Read(ref _verbs[(int)FabricVerb.FetchAdd]),
        CompareSwaps: Interlocked.Read(ref _verbs[(int)FabricVerb.CompareSwap]),
        Persists: Interlocked.Read(ref _verbs[(int)FabricVerb.Persist]),
        UnsignaledPosts: Interlocked.Read(ref _unsignaledPosts),
        BytesToBlade: Interlocked.Read(ref _bytesToBlade),
        BytesFromBlade: Interlocked.Read(ref _bytesFromBlade));
}

/// <summary>Counter values at one instant; subtract two snapshots to measure an interval.</summary>
public readonly record struct FabricCounterSnapshot(
    long RoundTrips,
    long Reads,
    long Writes,
    long FetchAdds,
    long CompareSwaps,
    long Persists,
    long UnsignaledPosts,
    long BytesToBlade,
    long BytesFromBlade)
{
    /// <summary>All verbs of every kind.</summary>
    public long TotalVerbs => Reads + Writes + FetchAdds + CompareSwaps + Persists;

    /// <summary>This snapshot's counts plus <paramref name="other"/>'s (several connections, several intervals).</summary>
    public FabricCounterSnapshot Plus(FabricCounterSnapshot other) => new(
        RoundTrips + other.RoundTrips,
        Reads + other.Reads,
        Writes + other.Writes,
        FetchAdds + other.FetchAdds,
        CompareSwaps + other.CompareSwaps,
        Persists + other.Persists,
        UnsignaledPosts + other.UnsignaledPosts,
        BytesToBlade + other.BytesToBlade,
        BytesFromBlade + other.BytesFromBlade);

    /// <summary>The counts accrued between <paramref name="earlier"/> and this snapshot.</summary>
    public FabricCounterSnapshot Since(FabricCounterSnapshot earlier) => new(
        RoundTrips - earlier.RoundTrips,
        Reads - earlier.Reads,
        Writes - earlier.Writes,
        FetchAdds - earlier.FetchAdds,
        CompareSwaps - earlier.CompareSwaps,
        Persists - earlier.Persists,
        UnsignaledPosts - earlier.UnsignaledPosts,
        BytesToBlade - earlier.BytesToBlade,
        BytesFromBlade - earlier.BytesFromBlade);
}
