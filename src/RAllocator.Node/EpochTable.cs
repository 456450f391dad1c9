namespace RAllocator.Node;

/// <summary>
/// This node's side of epoch-based reclamation. A guard pins the node-local epoch current when it was entered;
/// each publication records every blade's global epoch under a new local epoch, and tells each blade the global
/// epoch recorded when the oldest open guard was entered (or the current one when no guard is open).
/// </summary>
internal sealed class EpochTable
{
    private readonly object _gate = new();
    private readonly Dictionary<long, ulong[]> _globalEpochsByLocal = [];
    private readonly Dictionary<long, long> _openGuards = [];
    private long _localEpoch;
    private long _nextGuard;

    public EpochTable(ulong[] initialGlobalEpochs)
    {
        _globalEpochsByLocal[0] = initialGlobalEpochs;
    }

    public EpochGuard Enter()
    {
        lock (_gate)
        {
            long id = ++_nextGuard;
            _openGuards[id] = _localEpoch;
            return new EpochGuard(this, id);
        }
    }

    internal void Exit(long guardId)
    {
        lock (_gate)
        {
            _openGuards.Remove(guardId);
        }
    }

    /// <summary>Records the blades' current epochs; returns, per blade, the epoch this node may publish.</summary>
    public ulong[] Advance(ulong[] currentGlobalEpochs)
    {
        lock (_gate)
        {
            long oldestPinned = _openGuards.Count == 0 ? long.MaxValue : _openGuards.Values.Min();
            _globalEpochsByLocal[++_localEpoch] = currentGlobalEpochs;
            foreach (long local in _globalEpochsByLocal.Keys.Where(l => l < Math.Min(oldestPinned, _localEpoch)).ToArray())
            {
                _globalEpochsByLocal.Remove(local);
            }

            return oldestPinned == long.MaxValue ? currentGlobalEpochs : _globalEpochsByLocal[oldestPinned];
        }
    }
}

/// <summary>An open epoch: references taken inside it stay valid until it is disposed.</summary>
public readonly struct EpochGuard : IDisposable
{
    private readonly EpochTable? _table;
    private readonly long _id;

    internal EpochGuard(EpochTable table, long id)
    {
        _table = table;
        _id = id;
    }

    /// <summary>Closes the epoch.</summary>
    public void Dispose() => _table?.Exit(_id);
}
