using Microsoft.Coyote.Random;
using Microsoft.Coyote.Specifications;

namespace RAllocator.Coyote.Tests.Simulation;

/// <summary>
/// The specification side of the simulation: what every node holds, according to the protocol's own promises, and
/// the checks of the invariants against it. Every check is a <see cref="Specification.Assert(bool, string)"/> whose
/// message starts with the <see cref="Invariant"/> it guards and ends with the last events seen, so a failing
/// schedule can be read without replaying it.
/// </summary>
/// <remarks>
/// <para><b>What "holds" means.</b> A node holds a slab from the moment its acknowledgement batch (WRITE + PERSIST,
/// the last step of <c>AcquireSlabAsync</c>) has executed, until the WRITE of its free request is about to execute:
/// that is when the slab can change hands, so that is where <see cref="ObservedConnection"/> reports it. Slabs whose
/// acknowledgement or free was in flight when the node died are <em>uncertain</em>: recovery may return them or not.</para>
/// <para><b>Deaths.</b> A node incarnation ("life") dies when it is crashed by the test, fenced by the blade after
/// its lease expired, or when the blade crashes (every connection dies with it). Events from a dead life are
/// ignored: that process no longer exists, even if its continuations still run in the simulation.</para>
/// <para>No locks: Coyote runs one operation at a time, and nothing here is a scheduling point.</para>
/// </remarks>
internal sealed class AllocatorOracle
{
    private const int HistoryLines = 120;

    private readonly NodeFacts[] _nodes;
    private readonly Dictionary<RemotePtr, (uint Node, ulong Slab)> _liveObjects = [];
    private readonly Dictionary<long, GuardFacts> _guards = [];
    private readonly Queue<string> _history = new();
    private readonly ClusterStats _stats;
    private readonly Func<string> _describeBlade;
    private long _nextGuardId;

    public AllocatorOracle(int nodeCount, ClusterStats stats, Func<string> describeBlade)
    {
        _describeBlade = describeBlade;
        _nodes = Enumerable.Range(0, nodeCount).Select(_ => new NodeFacts()).ToArray();
        _stats = stats;
    }

    /// <summary>How many times the blade crashed and restarted in this iteration.</summary>
    public int BladeLife { get; private set; }

    public bool IsCurrent(uint node, int life) => _nodes[node].Alive && _nodes[node].Life == life;

    public bool IsAlive(uint node) => _nodes[node].Alive;

    public IReadOnlyCollection<ulong> HeldBy(uint node) => _nodes[node].Held;

    /// <summary>Writes a line into the event history quoted by failure messages.</summary>
    public void Record(string line)
    {
        _history.Enqueue(line);
        if (_history.Count > HistoryLines)
        {
            _history.Dequeue();
        }
    }

    // ---------------------------------------------------------------- node lives

    /// <summary>
    /// A node (re)opened its heap: registration returned <paramref name="recovered"/>. Durable ownership: that is
    /// exactly what it held, give or take the slabs whose acknowledgement or free was in flight when it died.
    /// </summary>
    public void NodeOpened(uint node, int life, IReadOnlyDictionary<ulong, uint> recoveredSpans, int bladeLifeAtConnect, bool stillAlive)
    {
        var facts = _nodes[node];
        // Held sets are of base slabs: a span is held as every base slab it covers.
        var recovered = recoveredSpans.SelectMany(kv => Members(kv.Key, kv.Value)).ToArray();
        foreach (var (head, span) in recoveredSpans)
        {
            facts.SpanOf[head] = span;
        }

        Check(!facts.Alive, "Harness", $"node {node} opened life {life} while life {facts.Life} is still alive.");
        var lost = facts.Held.Except(recovered).Order().ToArray();
        var extra = recovered.Except(facts.Held).Except(facts.Uncertain).Order().ToArray();
        Record($"node {node} life {life} opened: recovered [{Join(recovered)}], held [{Join(facts.Held)}], uncertain [{Join(facts.Uncertain)}]");
        Check(lost.Length == 0, Invariant.DurableOwnership,
            $"node {node} restarted (life {life}) without slab(s) [{Join(lost)}], which it held: their acquisition had completed " +
            $"(acknowledgement written and persisted) and they were never returned. Recovered [{Join(recovered)}].");
        Check(extra.Length == 0, Invariant.DurableOwnership,
            $"node {node} restarted (life {life}) with slab(s) [{Join(extra)}], which it did not hold and had no acquisition " +
            $"in flight for. Held [{Join(facts.Held)}], uncertain [{Join(facts.Uncertain)}].");
        foreach (ulong slab in recovered)
        {
            CheckNotHeldByAnotherLiveNode(node, slab, "recovered");
        }

        _stats.Reopens += facts.Life > 0 ? 1 : 0;
        facts.Life = life;
        if (bladeLifeAtConnect != BladeLife)
        {
            // The blade crashed during the open: the recovered set was read before the crash and this life is dead.
            facts.Uncertain.UnionWith(recovered.Except(facts.Held));
            facts.Alive = false;
            return;
        }

        facts.Held.Clear();
        facts.Held.UnionWith(recovered);
        facts.Uncertain.Clear();
        facts.Alive = stillAlive;
    }

    /// <summary>A node life ended (crashed, fenced, or its blade crashed). What was in flight becomes uncertain.</summary>
    public void NodeDied(uint node, int life, string reason)
    {
        var facts = _nodes[node];
        if (!IsCurrent(node, life))
        {
            return;
        }

        facts.Alive = false;
        facts.Uncertain.UnionWith(facts.Acquiring);
        facts.Uncertain.UnionWith(facts.Returning);
        facts.Acquiring.Clear();
        facts.Returning.Clear();
        foreach (var ptr in _liveObjects.Where(kv => kv.Value.Node == node).Select(kv => kv.Key).ToArray())
        {
            _liveObjects.Remove(ptr);
        }

        foreach (var id in _guards.Where(kv => kv.Value.Node == node).Select(kv => kv.Key).ToArray())
        {
            _guards.Remove(id);
        }

        Record($"node {node} life {life} died ({reason}): held [{Join(facts.Held)}], uncertain [{Join(facts.Uncertain)}]");
    }

    /// <summary>The blade lost power: every connection dies, so every live node life dies with it.</summary>
    public void BladeCrashed(string where, int crashSeed)
    {
        BladeLife++;
        _stats.BladeCrashes++;
        Record($"blade crashed ({where}, crash seed {crashSeed})");
        for (uint node = 0; node < _nodes.Length; node++)
        {
            if (_nodes[node].Alive)
            {
                NodeDied(node, _nodes[node].Life, "blade crash");
            }
        }
    }

    // ---------------------------------------------------------------- slabs

    public void AcknowledgementPosting(uint node, int life, ulong head, uint span)
    {
        if (IsCurrent(node, life))
        {
            _nodes[node].Acquiring.UnionWith(Members(head, span));
            _nodes[node].SpanOf[head] = span;
            Record($"node {node} life {life} posts acknowledgement of slab {head} (span {span})");
        }
    }

    /// <summary>The acknowledgement batch executed: the node now holds every base slab of the slab. No double allocation, safe reuse.</summary>
    public void AcknowledgementPosted(uint node, int life, ulong head, uint span)
    {
        if (!IsCurrent(node, life))
        {
            return;
        }

        Record($"node {node} life {life} acquired slab {head} (span {span})");
        foreach (ulong slab in Members(head, span))
        {
            BaseSlabAcquired(node, life, slab);
        }

        _stats.SlabsAcquired++;
    }

    private void BaseSlabAcquired(uint node, int life, ulong slab)
    {
        var facts = _nodes[node];
        facts.Acquiring.Remove(slab);
        Check(!facts.Held.Contains(slab), Invariant.NoDoubleAllocation,
            $"slab {slab} was handed to node {node} (life {life}) a second time while it still holds it.");
        CheckNotHeldByAnotherLiveNode(node, slab, "acquired");
        foreach (var (id, guard) in _guards)
        {
            if (guard.References.TryGetValue(slab, out var ptr))
            {
                Check(false, Invariant.SafeReuse,
                    $"slab {slab} was re-acquired by node {node} (life {life}) while epoch guard #{id} of node {guard.Node}, " +
                    $"opened before the slab was freed, still holds a reference into it ({ptr}).");
            }
        }

        facts.Held.Add(slab);
    }

    /// <summary>
    /// No double allocation, at the source: the rings never offer a base slab that a live node holds, nor one base
    /// slab under two tickets (two takers would then share it).
    /// </summary>
    public void CheckOffersHoldNothingHeld(IEnumerable<(ulong Head, uint Span, ulong Ticket)> offers)
    {
        var offeredUnder = new Dictionary<ulong, ulong>();
        foreach (var (head, span, ticket) in offers)
        {
            foreach (ulong slab in Members(head, span))
            {
                if (offeredUnder.TryGetValue(slab, out ulong other))
                {
                    Check(false, Invariant.NoDoubleAllocation,
                        $"the rings offer base slab {slab} under two tickets, {other} and {ticket} (slab {head}, span {span}).");
                }

                offeredUnder[slab] = ticket;
                for (uint node = 0; node < _nodes.Length; node++)
                {
                    if (_nodes[node].Alive && _nodes[node].Held.Contains(slab))
                    {
                        Check(false, Invariant.NoDoubleAllocation,
                            $"the ring offers slab {head} (span {span}) under ticket {ticket}, but live node {node} (life {_nodes[node].Life}) holds its base slab {slab}.");
                    }
                }
            }
        }
    }

    /// <summary>AcquireSlabAsync returned to its caller: the slab must be held already (cross-check of the observer).</summary>
    public void AcquisitionReturned(uint node, int life, ulong slab)
    {
        if (IsCurrent(node, life))
        {
            Check(_nodes[node].Held.Contains(slab), "Harness",
                $"AcquireSlabAsync returned slab {slab} to node {node} but no acknowledgement of it was observed.");
        }
    }

    public void FreePosting(uint node, int life, ulong head)
    {
        if (!IsCurrent(node, life))
        {
            return;
        }

        var facts = _nodes[node];
        uint span = facts.SpanOf.GetValueOrDefault(head, 1u);
        Record($"node {node} life {life} returns slab {head} (span {span})");
        foreach (ulong slab in Members(head, span))
        {
            Check(facts.Held.Remove(slab), Invariant.NoDoubleAllocation,
                $"node {node} (life {life}) returned slab {slab}, which it does not hold: the blade would free a slab that is not its own.");
            facts.Returning.Add(slab);
            if (_guards.Values.Any(g => g.References.ContainsKey(slab)))
            {
                // The window safe reuse is about: a reference into a slab being freed.
                _stats.GuardedFrees++;
            }
        }

        _stats.SlabsReturned++;
    }

    public void FreePosted(uint node, int life, ulong head)
    {
        if (IsCurrent(node, life))
        {
            _nodes[node].Returning.ExceptWith(Members(head, _nodes[node].SpanOf.GetValueOrDefault(head, 1u)));
        }
    }

    private static IEnumerable<ulong> Members(ulong head, uint span)
    {
        for (ulong slab = head; slab < head + Math.Max(1u, span); slab++)
        {
            yield return slab;
        }
    }

    private void CheckNotHeldByAnotherLiveNode(uint node, ulong slab, string how)
    {
        for (uint other = 0; other < _nodes.Length; other++)
        {
            if (other != node && _nodes[other].Alive && _nodes[other].Held.Contains(slab))
            {
                Check(false, Invariant.NoDoubleAllocation,
                    $"slab {slab} was {how} by node {node} while live node {other} (life {_nodes[other].Life}) still holds it.");
            }
        }
    }

    // ---------------------------------------------------------------- objects

    public void ObjectAllocated(uint node, int life, RemotePtr ptr, ulong slab)
    {
        if (!IsCurrent(node, life))
        {
            return;
        }

        if (_liveObjects.TryGetValue(ptr, out var owner))
        {
            Check(false, Invariant.NoDoubleAllocation,
                $"object {ptr} was handed out to node {node} (life {life}) while it is live at node {owner.Node}.");
        }

        Check(_nodes[node].Held.Contains(slab), Invariant.NoDoubleAllocation,
            $"object {ptr} was handed out to node {node} (life {life}) from slab {slab}, which that node does not hold.");
        _liveObjects[ptr] = (node, slab);
        _stats.ObjectsAllocated++;
    }

    public void ObjectFreeing(uint node, RemotePtr ptr)
    {
        Check(_liveObjects.TryGetValue(ptr, out var owner) && owner.Node == node, "Harness", $"node {node} frees {ptr}, which it does not own.");
        _liveObjects.Remove(ptr);
    }

    public bool TryPickObject(uint node, bool own, Generator random, out RemotePtr ptr, out ulong slab)
    {
        var candidates = _liveObjects.Where(kv => (kv.Value.Node == node) == own).ToArray();
        if (candidates.Length == 0)
        {
            (ptr, slab) = (RemotePtr.Null, 0);
            return false;
        }

        var pick = candidates[random.NextInteger(candidates.Length)];
        (ptr, slab) = (pick.Key, pick.Value.Slab);
        return true;
    }

    public RemotePtr[] ObjectsOf(uint node) => _liveObjects.Where(kv => kv.Value.Node == node).Select(kv => kv.Key).ToArray();

    // ---------------------------------------------------------------- epoch guards

    public long GuardOpened(uint node)
    {
        long id = ++_nextGuardId;
        _guards[id] = new GuardFacts(node);
        return id;
    }

    public void ReferenceTaken(long guard, RemotePtr ptr, ulong slab)
    {
        if (_guards.TryGetValue(guard, out var facts))
        {
            facts.References[slab] = ptr;
            Record($"node {facts.Node} guard #{guard} takes a reference to {ptr} (slab {slab})");
        }
    }

    public void GuardClosed(long guard) => _guards.Remove(guard);

    // ---------------------------------------------------------------- quiesce

    /// <summary>
    /// No permanent leak, after a quiesce: every slab is Free, or Ringed under a ticket nobody has taken yet (in the
    /// ring), or (when <paramref name="allowOwnedByDeadNodes"/>) Owned by a dead node that holds it and will get it
    /// back when it restarts.
    /// </summary>
    public void CheckNoPermanentLeak(BladeState state, string phase, bool allowOwnedByDeadNodes)
    {
        Check(state.IsConsistent, Invariant.NoPermanentLeak, $"{phase}: the blade's metadata is inconsistent: {string.Join("; ", state.Problems)}");
        foreach (var slab in state.Slabs)
        {
            switch (slab.State)
            {
                case SlabState.Free:
                    break;
                case SlabState.Ringed:
                    // A span's head is in its ring's entry; its other base slabs follow the head (the scan checked they agree).
                    ulong head = slab.Index - slab.SpanHeadDistance;
                    var ring = state.Rings[SlabRings.SpanClassOf(slab.Generation)];
                    var entry = ring.Slots[(int)ring.Ring.SlotOf(slab.Generation)].Entry;
                    bool inRing = slab.Generation >= ring.Sequencer && entry.IsFor(slab.Generation)
                        && entry.Kind == RingEntryKind.Slab && entry.SlabIndex == head;
                    Check(inRing, Invariant.NoPermanentLeak,
                        $"{phase}: slab {slab.Index} is Ringed under ticket {slab.Generation}, but its ring's sequencer is at {ring.Sequencer}: " +
                        "the ticket was taken and never acknowledged, and the slab is neither in the ring nor free.");
                    break;
                case SlabState.Owned:
                    var owner = slab.Node < _nodes.Length ? _nodes[slab.Node] : null;
                    bool recoverable = allowOwnedByDeadNodes && owner is { Alive: false }
                        && (owner.Held.Contains(slab.Index) || owner.Uncertain.Contains(slab.Index));
                    Check(recoverable, Invariant.NoPermanentLeak,
                        $"{phase}: slab {slab.Index} is Owned by node {slab.Node} " +
                        (owner is null ? "(no such node)" : owner.Alive ? "(alive, which returned everything it holds)" : "(dead, and it never held it)") +
                        ": nobody will ever use or free it.");
                    break;
                case SlabState.Freeing:
                    Check(false, Invariant.NoPermanentLeak,
                        $"{phase}: slab {slab.Index} is still Freeing (freed by node {slab.Node} in epoch {slab.FreedEpoch}; global epoch {state.GlobalEpoch}): " +
                        "every live node passed its epoch, so it should be free.");
                    break;
            }
        }
    }

    // ---------------------------------------------------------------- helpers

    public void Check(bool condition, string invariant, string message)
    {
        if (!condition)
        {
            string report = $"{invariant} violated: {message}{Environment.NewLine}Blade: {_describeBlade()}{Environment.NewLine}" +
                $"Recent events, oldest first:{Environment.NewLine}  {string.Join(Environment.NewLine + "  ", _history)}";

            // Coyote formats the message (string.Format), so braces must be escaped.
            Specification.Assert(false, report.Replace("{", "{{").Replace("}", "}}"));
        }
    }

    private static string Join(IEnumerable<ulong> slabs) => string.Join(", ", slabs.Order());

    private sealed class NodeFacts
    {
        public int Life;
        public bool Alive;
        public readonly HashSet<ulong> Held = [];
        public readonly HashSet<ulong> Acquiring = [];
        public readonly HashSet<ulong> Returning = [];
        public readonly HashSet<ulong> Uncertain = [];
        public readonly Dictionary<ulong, uint> SpanOf = [];
    }

    private sealed class GuardFacts(uint node)
    {
        public uint Node { get; } = node;

        public Dictionary<ulong, RemotePtr> References { get; } = [];
    }
}
