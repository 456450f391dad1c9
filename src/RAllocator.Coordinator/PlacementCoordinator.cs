using RAllocator.Fabric;

namespace RAllocator.Coordinator;

/// <summary>
/// Reads every blade's utilization one-sided (one 64-byte READ per blade per refresh; the blades' CPUs do nothing
/// for it), computes <see cref="PlacementHints"/> and hands them to the attached <see cref="CoordinatedPlacement"/>
/// policies. It holds soft state only: if it stops refreshing, the policies keep their last hints and the working
/// nodes keep allocating.
/// </summary>
/// <remarks>Thread-safe; refreshes are serialized.</remarks>
public sealed class PlacementCoordinator
{
    private readonly BladeLoadReader[] _readers;
    private readonly CoordinatorOptions _options;
    private readonly List<CoordinatedPlacement> _policies = [];
    private readonly SemaphoreSlim _refreshGate = new(1, 1);
    private PlacementHints? _current;
    private long _version;

    /// <summary>A coordinator over one connection per blade, where list position equals the connection's blade id.</summary>
    /// <exception cref="ArgumentException">No connection, or a connection's blade id differs from its position.</exception>
    public PlacementCoordinator(IReadOnlyList<IFabricConnection> blades, CoordinatorOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(blades);
        if (blades.Count == 0)
        {
            throw new ArgumentException("a coordinator needs at least one blade.", nameof(blades));
        }

        for (int i = 0; i < blades.Count; i++)
        {
            if (blades[i].BladeId != i)
            {
                throw new ArgumentException($"connection at position {i} has blade id {blades[i].BladeId}; ids must equal positions.", nameof(blades));
            }
        }

        _options = options ?? new CoordinatorOptions();
        _options.Validate();
        _readers = blades.Select(c => new BladeLoadReader(c)).ToArray();
    }

    /// <summary>The options in force.</summary>
    public CoordinatorOptions Options => _options;

    /// <summary>The hints of the last refresh, or null before the first.</summary>
    public PlacementHints? Current => Volatile.Read(ref _current);

    /// <summary>The loads read at the last refresh, by blade id.</summary>
    public IReadOnlyList<BladeLoad> Loads => _readers.Select(r => r.Last).ToArray();

    internal CoordinatorFaults Faults { get; set; } = CoordinatorFaults.None;

    /// <summary>The fabric cost of the coordinator so far: every blade connection's counters, summed.</summary>
    public FabricCounterSnapshot Counters()
    {
        var total = default(FabricCounterSnapshot);
        foreach (var reader in _readers)
        {
            total = total.Plus(reader.Connection.Counters.Snapshot());
        }

        return total;
    }

    /// <summary>
    /// Hands every later refresh's hints to <paramref name="policy"/> (and the current ones now, if any). Attach
    /// the policy of each working node in this process; other processes get hints by whatever transport carries
    /// them to <see cref="CoordinatedPlacement.Update"/>.
    /// </summary>
    public void Attach(CoordinatedPlacement policy)
    {
        ArgumentNullException.ThrowIfNull(policy);
        lock (_policies)
        {
            _policies.Add(policy);
        }

        if (Current is { } hints)
        {
            policy.Update(hints);
        }
    }

    /// <summary>Stops handing hints to <paramref name="policy"/>; it keeps the last ones it got.</summary>
    public void Detach(CoordinatedPlacement policy)
    {
        lock (_policies)
        {
            _policies.Remove(policy);
        }
    }

    /// <summary>
    /// Reads every blade (in parallel, one READ each), computes new hints and hands them to the attached policies.
    /// A blade whose read fails is marked unreachable; the refresh itself does not fail.
    /// </summary>
    public async Task<PlacementHints> RefreshAsync(CancellationToken cancellationToken = default)
    {
        await _refreshGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var loads = await Task.WhenAll(_readers.Select(r => r.ReadAsync(cancellationToken))).ConfigureAwait(false);
            var hints = PlacementHints.Compute(++_version, loads, _options.HighWaterMark, Faults);
            Volatile.Write(ref _current, hints);
            CoordinatedPlacement[] policies;
            lock (_policies)
            {
                policies = [.. _policies];
            }

            foreach (var policy in policies)
            {
                policy.Update(hints);
            }

            return hints;
        }
        finally
        {
            _refreshGate.Release();
        }
    }

    /// <summary>Refreshes every <see cref="CoordinatorOptions.RefreshInterval"/> until cancelled.</summary>
    /// <returns>A task that completes when cancelled.</returns>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await RefreshAsync(cancellationToken).ConfigureAwait(false);
                await Task.Delay(_options.RefreshInterval, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
        }
    }
}
