using RAllocator.Node;
using RAllocator.Protocol;

namespace RAllocator.Coordinator;

/// <summary>
/// A working node's placement policy driven by the coordinator's <see cref="PlacementHints"/>. Each acquisition
/// tries first a blade picked by smooth weighted round robin over the blades below the high-water mark (weights:
/// headroom bytes below the mark), then the other blades below the mark by weight, then the shed blades by free
/// space, then the blades the coordinator could not reach. Until the first hints arrive, or when the hints do not
/// cover the heap's blades, it uses its fallback policy (round robin). Soft state: the last hints stay in force
/// until new ones arrive, however long that takes.
/// </summary>
/// <remarks>Thread-safe.</remarks>
public sealed class CoordinatedPlacement : IPlacementPolicy
{
    private readonly IPlacementPolicy _fallback;
    private readonly Lock _gate = new();
    private MatchedHints? _matched;
    private PlacementHints? _hints;
    private long[] _current = [];
    private long _currentVersion = -1;

    /// <summary>A policy with no hints yet, using <paramref name="fallback"/> (default round robin) until they arrive.</summary>
    public CoordinatedPlacement(IPlacementPolicy? fallback = null)
    {
        _fallback = fallback ?? new RoundRobinPlacement();
    }

    /// <summary>The hints in force, or null before the first.</summary>
    public PlacementHints? Hints => Volatile.Read(ref _hints);

    /// <summary>Installs newer hints; older or equal versions than those in force are ignored.</summary>
    public void Update(PlacementHints hints)
    {
        ArgumentNullException.ThrowIfNull(hints);
        lock (_gate)
        {
            if (_hints is null || hints.Version > _hints.Version)
            {
                Volatile.Write(ref _hints, hints);
            }
        }
    }

    /// <summary>
    /// Installs <paramref name="hints"/> whatever their version: they come from a new coordinator (a restarted one
    /// counts versions from 1 again), and the versions of the old one say nothing about them.
    /// </summary>
    public void Reset(PlacementHints hints)
    {
        ArgumentNullException.ThrowIfNull(hints);
        lock (_gate)
        {
            Volatile.Write(ref _hints, hints);
        }
    }

    /// <inheritdoc />
    public IEnumerable<int> Order(IReadOnlyList<BladeClient> blades, int sizeClass)
    {
        ArgumentNullException.ThrowIfNull(blades);
        var hints = Hints is { } current ? InNodeOrder(current, blades) : null;
        if (hints is null)
        {
            return _fallback.Order(blades, sizeClass);
        }

        return OrderByHints(hints);
    }

    /// <summary>
    /// The hints with one entry per blade of this node, at the node's positions: matched by each blade's superblock
    /// identity when the coordinator sent it (its <c>--blade</c> list may be in another order), else by position.
    /// Null when they do not describe exactly this node's blades (the node then places round robin).
    /// </summary>
    private PlacementHints? InNodeOrder(PlacementHints hints, IReadOnlyList<BladeClient> blades)
    {
        if (hints.Blades.Count != blades.Count)
        {
            return null;
        }

        if (hints.Blades.All(h => h.BladeUid == 0))
        {
            return hints;
        }

        var cached = Volatile.Read(ref _matched);
        if (cached is not null && ReferenceEquals(cached.From, hints))
        {
            return cached.Matched;
        }

        var byUid = hints.Blades.Where(h => h.BladeUid != 0).GroupBy(h => h.BladeUid).ToDictionary(g => g.Key, g => g.First());
        var matched = new BladeHint[blades.Count];
        for (int i = 0; i < blades.Count; i++)
        {
            if (!byUid.TryGetValue(blades[i].Superblock.BladeUid, out var hint))
            {
                return null;
            }

            matched[i] = hint with { BladeId = i };
        }

        var result = hints with { Blades = matched };
        Volatile.Write(ref _matched, new MatchedHints(hints, result));
        return result;
    }

    /// <summary>The last hints matched to this node's blades, and what they were matched from.</summary>
    private sealed record MatchedHints(PlacementHints From, PlacementHints Matched);

    internal int[] OrderByHints(PlacementHints hints)
    {
        var all = hints.Blades;
        var open = all.Where(h => h.Reachable && !h.Shed && h.Weight > 0).ToList();
        var order = new List<int>(all.Count);
        if (open.Count > 0)
        {
            int first = PickWeighted(hints, open);
            order.Add(first);
            order.AddRange(open.Where(h => h.BladeId != first).OrderByDescending(h => h.Weight).ThenBy(h => h.BladeId).Select(h => h.BladeId));
        }

        order.AddRange(all.Where(h => h.Reachable && !open.Contains(h)).OrderByDescending(h => h.FreeBytes).ThenBy(h => h.BladeId).Select(h => h.BladeId));
        order.AddRange(all.Where(h => !h.Reachable).Select(h => h.BladeId));
        return [.. order];
    }

    // Smooth weighted round robin (as in nginx): every pick adds each weight to its blade's credit and takes the
    // total from the winner's, so picks follow the weights closely and interleave instead of coming in runs.
    private int PickWeighted(PlacementHints hints, List<BladeHint> open)
    {
        lock (_gate)
        {
            if (_currentVersion != hints.Version || _current.Length != hints.Blades.Count)
            {
                _current = new long[hints.Blades.Count];
                _currentVersion = hints.Version;
            }

            // Weights in slabs-worth of 64 KiB keep the credits far from overflow on any blade size.
            long total = 0;
            int best = open[0].BladeId;
            foreach (var hint in open)
            {
                long weight = (long)Math.Max(1, hint.Weight >> 16);
                total += weight;
                _current[hint.BladeId] += weight;
                if (_current[hint.BladeId] > _current[best])
                {
                    best = hint.BladeId;
                }
            }

            _current[best] -= total;
            return best;
        }
    }
}
