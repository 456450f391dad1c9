namespace RAllocator.KeyValue;

/// <summary>
/// Store-level epoch-based reclamation of objects unlinked by the writer. A reader enters with the current epoch
/// number; each retirement advances the number and tags the retired object with it. A reader that entered before
/// the retirement (number below the tag) may still hold a pointer to the object; a reader that entered after
/// cannot reach it (it was unlinked first). So an object may be freed once every open reader's number is at least
/// its tag.
/// </summary>
/// <remarks>
/// The heap's <c>EnterEpoch</c> guards slab reuse after a slab is returned to its blade; it does not defer object
/// frees: <c>FreeAsync</c> makes an object reusable at once. Hence this table in front of it.
/// </remarks>
internal sealed class ReaderEpochs
{
    private readonly object _gate = new();
    private readonly Dictionary<long, int> _open = [];
    private long _current;

    public long Enter()
    {
        lock (_gate)
        {
            long id = _current;
            _open[id] = _open.TryGetValue(id, out int n) ? n + 1 : 1;
            return id;
        }
    }

    public void Exit(long id)
    {
        lock (_gate)
        {
            int n = _open[id] - 1;
            if (n == 0)
            {
                _open.Remove(id);
            }
            else
            {
                _open[id] = n;
            }
        }
    }

    /// <summary>The tag of an object retired now.</summary>
    public long Retire()
    {
        lock (_gate)
        {
            return ++_current;
        }
    }

    /// <summary>The oldest open reader's number, or <see cref="long.MaxValue"/> when none is open.</summary>
    public long OldestOpen()
    {
        lock (_gate)
        {
            long min = long.MaxValue;
            foreach (long id in _open.Keys)
            {
                min = Math.Min(min, id);
            }

            return min;
        }
    }
}
