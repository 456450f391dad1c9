namespace RAllocator.Coordinator;

/// <summary>Tuning of a <see cref="PlacementCoordinator"/>.</summary>
public sealed record CoordinatorOptions
{
    /// <summary>
    /// Utilization (0 to 1) at or above which a blade sheds new slab requests (default 0.85): nodes try it only
    /// after every blade below the mark has answered that it has no free slab.
    /// </summary>
    public double HighWaterMark { get; init; } = 0.85;

    /// <summary>Pause between refreshes in <see cref="PlacementCoordinator.RunAsync"/> (default 100 ms).</summary>
    public TimeSpan RefreshInterval { get; init; } = TimeSpan.FromMilliseconds(100);

    internal void Validate()
    {
        if (!(HighWaterMark > 0 && HighWaterMark <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(HighWaterMark), HighWaterMark, "the high-water mark must be above 0 and at most 1.");
        }

        if (RefreshInterval < TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(RefreshInterval), RefreshInterval, "the refresh interval must not be negative.");
        }
    }
}

/// <summary>Deliberately broken coordinator rules (test hooks only), so the tests can show they catch them.</summary>
internal sealed record CoordinatorFaults
{
    public static readonly CoordinatorFaults None = new();

    /// <summary>Load shedding: never shed a blade, however full; weight every blade by its whole free space.</summary>
    public bool IgnoreHighWaterMark { get; init; }

    /// <summary>Reachability: treat a blade whose read failed like any other (weighted by its last known free space).</summary>
    public bool IgnoreUnreachable { get; init; }
}
