using RAllocator.Protocol.Layout;

namespace RAllocator.Blade;

// The steps of one agent pass. Each rule's safety argument is in spec/protocol.md under the same heading.
public sealed partial class BladeAgent
{
    private readonly long[] _countByState = new long[4];
    private ulong[] _generations = [];

    private void RecoverAfterRestart(BladeState state)
    {
        _generations = state.Slabs.Select(s => s.Generation).ToArray();
        foreach (var slab in state.Slabs)
        {
            _countByState[(int)slab.State]++;
            if (slab.State == SlabState.Ringed && slab.IsHead)
            {
                _ringedSlabByTicket[slab.Generation] = slab.Index;
            }
        }

        // Durable acknowledgements first: an acknowledged slab is owned whatever else happened.
        foreach (var node in state.Nodes.Where(n => n.Registered))
        {
            DrainAcknowledgements(node.Node, node.Header);
            DrainFrees(node.Node, node.Header);
        }

        var region = _image.Region;
        if (!Faults.SkipRestartRecovery)
        {
            // Every acquisition in flight died with the blade's connections. Empty the rings before freeing the
            // slabs they named, so no entry ever points at a free slab.
            foreach (var ring in _rings.All)
            {
                for (long i = 0; i < ring.Capacity; i++)
                {
                    region.StoreUInt64(ring.EntriesOffset + (i * RingEntry.SizeBytes), 0);
                }

                region.Persist(ring.EntriesOffset, ring.Capacity * RingEntry.SizeBytes);
            }

            foreach (var slab in _ringedSlabByTicket.Values.ToArray())
            {
                Release(slab);
            }

            _ringedSlabByTicket.Clear();

            // Tickets below the old sequencer or fill mark may be held by nodes that have not yet noticed the
            // restart; skipping past them (and past one in-flight ticket per node) keeps every new ticket's tag
            // different from theirs. Each ring moves within its own ticket space.
            foreach (var ring in state.Rings)
            {
                ulong next = Math.Max(ring.Sequencer, ring.FilledThroughTicket) + ring.Ring.Capacity + _geometry.MaxNodes + 1;
                region.StoreUInt64(ring.Ring.SequencerOffset, next);
                region.Persist(ring.Ring.SequencerOffset, sizeof(ulong));
                _filledThrough[ring.Ring.SpanClass] = next;
            }
        }
        else
        {
            foreach (var ring in state.Rings)
            {
                _filledThrough[ring.Ring.SpanClass] = ring.FilledThroughTicket;
            }
        }

        foreach (var ring in _rings.All)
        {
            region.StoreUInt64(ring.FillMarkOffset, _filledThrough[ring.SpanClass]);
            region.Persist(ring.FillMarkOffset, sizeof(ulong));
        }

        var control = _layout.Control(region);
        control.StoreGlobalEpoch(_globalEpoch);
        control.Persist();
    }

    private void UpdateLiveness(NodeHeader[] headers)
    {
        for (uint node = 0; node < headers.Length; node++)
        {
            var header = headers[node];
            var live = _nodes[node];
            if (header.Incarnation != live.Incarnation)
            {
                // A restarted node: its previous incarnation's in-flight acquisition is void, its lease starts over.
                _nodes[node] = new NodeLiveness(header.Heartbeat, header.Incarnation);
                continue;
            }

            if (header.Heartbeat != live.Heartbeat)
            {
                live.Heartbeat = header.Heartbeat;
                live.TicksUnchanged = 0;
                continue;
            }

            if (header.Incarnation != 0 && !live.Expired && ++live.TicksUnchanged >= _geometry.NodeLeaseTicks)
            {
                live.Expired = true;
                _stats = _stats with { LeasesExpired = _stats.LeasesExpired + 1 };
                NodeLeaseExpired?.Invoke(node);
            }
        }
    }

    private bool IsLive(uint node, in NodeHeader header) => header.Incarnation != 0 && !_nodes[node].Expired;

    private void DrainAcknowledgements(uint node, NodeHeader header)
    {
        uint slots = _geometry.AckSlotsPerNode;
        var nodeHeader = _layout.NodeHeaders(_image.Region, node);
        DrainSequencedRecords(
            header.AcksApplied,
            slots,
            slot => _layout.AckSlots(_image.Region, (node * slots) + slot).LoadWord(),
            (slab, slot) =>
            {
                ulong ticket = _layout.AckSlots(_image.Region, (node * slots) + slot).LoadTicket();
                if (IsHead(slab) && _states[slab] == SlabState.Ringed && _generations[slab] != ticket)
                {
                    // The 16-byte record is read while the node's WRITE may still be landing: a new slab word beside
                    // the previous lap's ticket. The node is still in flight (it posts "done" after this record), so
                    // the slab cannot have been released under it; read the record again next pass, do not reject it.
                    return false;
                }

                if (IsHead(slab) && _states[slab] == SlabState.Ringed)
                {
                    _image.MarkOwned(slab, node, ticket, _spanClassOf[slab]);
                    SetState(slab, SlabState.Owned, node);
                    _ringedSlabByTicket.Remove(ticket);
                    _stats = _stats with { AcksApplied = _stats.AcksApplied + 1 };
                }
                else if (!(IsHead(slab) && _states[slab] == SlabState.Owned && _owners[slab] == node && _generations[slab] == ticket))
                {
                    // Not a replay of an applied acknowledgement: the node acknowledged a slab it was not given.
                    _stats = _stats with { AcksRejected = _stats.AcksRejected + 1 };
                }

                return true;
            },
            sequence =>
            {
                nodeHeader.StoreAcksApplied(sequence);
                nodeHeader.PersistAcksApplied();
            });
    }

    private void DrainFrees(uint node, NodeHeader header)
    {
        uint slots = _geometry.FreeSlotsPerNode;
        var nodeHeader = _layout.NodeHeaders(_image.Region, node);
        DrainSequencedRecords(
            header.FreesApplied,
            slots,
            slot => _layout.FreeSlots(_image.Region, (node * slots) + slot).LoadWord(),
            (slab, _) =>
            {
                if (IsHead(slab) && _states[slab] == SlabState.Ringed)
                {
                    // A node acknowledges a slab before it frees it, on one ordered connection, but a pass reads the
                    // node's acknowledgements before its frees while the node keeps writing: an acknowledgement that
                    // landed after DrainAcknowledgements looked is visible now. Apply it before judging this free;
                    // rejecting the free would leave the slab Owned by a node that has returned it, a permanent leak
                    // (found by tests/RAllocator.Coyote.Tests).
                    var current = header;
                    current.AcksApplied = nodeHeader.LoadAcksApplied();
                    DrainAcknowledgements(node, current);
                    if (_states[slab] == SlabState.Ringed)
                    {
                        // Its acknowledgement cannot be applied yet: keep this free, and those after it, for a later pass.
                        return false;
                    }
                }

                if (IsHead(slab) && _states[slab] == SlabState.Owned && _owners[slab] == node)
                {
                    _image.MarkFreeing(slab, node, _globalEpoch, _spanClassOf[slab]);
                    SetState(slab, SlabState.Freeing, node);
                    _freedEpochBySlab[slab] = _globalEpoch;
                    _stats = _stats with { FreesDrained = _stats.FreesDrained + 1 };
                }
                else if (!(IsHead(slab) && _states[slab] == SlabState.Freeing && _owners[slab] == node))
                {
                    _stats = _stats with { FreesRejected = _stats.FreesRejected + 1 };
                }

                return true;
            },
            sequence =>
            {
                nodeHeader.StoreFreesApplied(sequence);
                nodeHeader.PersistFreesApplied();
            });
    }

    /// <summary>
    /// Walks a node's ring of sequenced records (acknowledgements or free requests) from the first one not yet
    /// applied: each record whose sequence number follows on is applied, then the applied mark is persisted, so a
    /// crash replays at most the record in hand (and <paramref name="apply"/> recognizes a replay).
    /// </summary>
    /// <param name="applied">The node's applied mark.</param>
    /// <param name="slots">Slots in the node's area.</param>
    /// <param name="loadWord">Loads the sequenced word of a slot.</param>
    /// <param name="apply">Applies a record (slab, slot); false to stop and retry it next pass.</param>
    /// <param name="markApplied">Stores and persists the new applied mark.</param>
    private static void DrainSequencedRecords(ulong applied, uint slots, Func<long, ulong> loadWord, Func<ulong, long, bool> apply, Action<ulong> markApplied)
    {
        for (ulong sequence = applied + 1; sequence <= applied + slots; sequence++)
        {
            long slot = (long)((sequence - 1) % slots);
            var word = SequencedSlabWord.Unpack(loadWord(slot));
            if (word.Sequence != (uint)sequence || !apply(word.SlabIndex, slot))
            {
                return;
            }

            markApplied(sequence);
        }
    }

    /// <summary>
    /// Frees the slab of a taken ticket that nobody will acknowledge. A ticket below its ring's sequencer
    /// is held by the node whose current claim names it; if that node is still in flight it may yet acknowledge,
    /// otherwise (finished, restarted or lease expired) it never will. An unclaimed ticket may belong to any live
    /// node that is in flight without a claim yet, so it waits until no such node exists.
    /// </summary>
    private void ReleaseAbandonedTickets(ulong[] sequencers, NodeHeader[] headers)
    {
        if (_ringedSlabByTicket.Count == 0 || Faults.NeverReleaseAbandonedTickets)
        {
            return;
        }

        bool someoneMayHoldUnclaimedTicket = false;
        for (uint node = 0; node < headers.Length; node++)
        {
            var acquire = AcquireStateWord.Unpack(headers[node].AcquireState);
            if (IsLive(node, headers[node]) && acquire.InFlight && !ClaimWord.Unpack(headers[node].Claim).IsFor(acquire.Acquisition))
            {
                someoneMayHoldUnclaimedTicket = true;
            }
        }

        foreach (var (ticket, slab) in _ringedSlabByTicket.Where(kv => kv.Key < sequencers[SlabRings.SpanClassOf(kv.Key)]).ToArray())
        {
            bool mayStillBeAcknowledged = false;
            bool claimed = false;
            for (uint node = 0; node < headers.Length; node++)
            {
                var claim = ClaimWord.Unpack(headers[node].Claim);
                var acquire = AcquireStateWord.Unpack(headers[node].AcquireState);
                if (claim.IsFor(acquire.Acquisition) && claim.Names(ticket) && headers[node].Incarnation != 0)
                {
                    claimed = true;
                    mayStillBeAcknowledged |= acquire.InFlight && IsLive(node, headers[node]);
                }
            }

            if (Faults.ReleaseIgnoresInFlight)
            {
                mayStillBeAcknowledged = false;
                someoneMayHoldUnclaimedTicket = false;
            }

            if (mayStillBeAcknowledged || (!claimed && someoneMayHoldUnclaimedTicket))
            {
                continue;
            }

            _ringedSlabByTicket.Remove(ticket);
            Release(slab);
            _stats = _stats with { TicketsReleased = _stats.TicketsReleased + 1 };
        }
    }

    /// <summary>
    /// Fills <paramref name="ring"/>'s entries for the next tickets, at most one ring ahead of the sequencer and
    /// never over an entry whose ticket is still unresolved. The fill mark is persisted before the entries, so
    /// after a crash the sequencer can be moved past every ticket that may have read an entry.
    /// </summary>
    private void Refill(SlabRing ring, ulong sequencer)
    {
        ulong capacity = ring.Capacity;
        var plan = new List<(ulong Ticket, ulong? Slab)>();
        ulong firstTicket = _filledThrough[ring.SpanClass];
        ulong ticket = firstTicket;
        Queue<ulong>? runs = null;
        while (plan.Count < _options.MaxFillsPerPass && ticket < sequencer + capacity)
        {
            // An entry planned earlier in this pass is as unresolved as one ringed before it: when the sequencer has
            // run ahead of the fill mark the window is longer than the ring, and ticket t + capacity would overwrite
            // the entry of ticket t, which a node has taken and not read yet (it then stalls, and t's slab waits).
            bool slotBusy = ticket - ring.FirstTicket >= capacity
                && (ticket - capacity >= firstTicket || _ringedSlabByTicket.ContainsKey(ticket - capacity));
            if (slotBusy)
            {
                break;
            }

            ulong? slab = ring.SpanClass == 0 ? TakeLeastWornFreeSlab(plan.Count) : TakeFreeRun(ring, runs ??= FreeRunsLeastWornFirst(ring));
            if (slab is null && ring.SpanClass > 0)
            {
                // Nothing to coalesce: skip the scan in later passes until a base slab is freed.
                _noRunSinceFreeSetVersion[ring.SpanClass] = _freeSetVersion;
            }

            if (slab is not null)
            {
                plan.Add((ticket, slab));
            }
            else if (ticket < sequencer)
            {
                plan.Add((ticket, null));
            }
            else
            {
                break;
            }

            ticket++;
        }

        if (plan.Count == 0)
        {
            return;
        }

        _image.Region.StoreUInt64(ring.FillMarkOffset, ticket);
        _image.Region.Persist(ring.FillMarkOffset, sizeof(ulong));
        _filledThrough[ring.SpanClass] = ticket;

        foreach (var (entryTicket, slab) in plan)
        {
            long entryOffset = ring.EntryOffset(entryTicket);
            if (slab is { } s)
            {
                if (!Faults.RingEntryBeforeMetadata)
                {
                    _image.MarkRinged(s, entryTicket, ring.SpanClass);
                }

                _image.Region.StoreUInt64(entryOffset, RingEntryWord.ForSlab(entryTicket, (uint)s).Pack());
                _image.Region.Persist(entryOffset, RingEntry.SizeBytes);
                if (Faults.RingEntryBeforeMetadata)
                {
                    _image.MarkRinged(s, entryTicket, ring.SpanClass);
                }

                for (ulong member = s; member < s + ring.Span; member++)
                {
                    _generations[member] = entryTicket;
                    _wear[member]++;
                    _spanClassOf[member] = (byte)ring.SpanClass;
                    _isTail[member] = member != s;
                }

                SetState(s, SlabState.Ringed, 0);
                _ringedSlabByTicket[entryTicket] = s;
                _stats = _stats with { SlabsRinged = _stats.SlabsRinged + 1 };
            }
            else
            {
                _image.Region.StoreUInt64(entryOffset, RingEntryWord.ForExhausted(entryTicket).Pack());
                _image.Region.Persist(entryOffset, RingEntry.SizeBytes);
                _stats = _stats with { ExhaustedEntries = _stats.ExhaustedEntries + 1 };
            }
        }
    }

    /// <summary>The least worn free base slab, taken out of the free set; null when none is free.</summary>
    private ulong? TakeLeastWornFreeSlab(int plannedThisPass)
    {
        if (_free.Count == 0)
        {
            return null;
        }

        var leastWorn = _free.Min;
        if (!Faults.RefillLeavesSlabInFreeSet || plannedThisPass % 2 == 1)
        {
            _free.Remove(leastWorn);
        }

        return leastWorn.Slab;
    }

    /// <summary>
    /// Coalescing: every aligned run of <paramref name="ring"/>'s span whose base slabs are all free, least worn
    /// (by its most worn member) first. Free neighbours are joined only here, when a span ring needs a slab, so the
    /// free set stays a set of base slabs and a span's members go back to it one by one when it is released.
    /// </summary>
    private Queue<ulong> FreeRunsLeastWornFirst(SlabRing ring)
    {
        var runs = new List<(ulong Wear, ulong Head)>();
        if (_noRunSinceFreeSetVersion[ring.SpanClass] == _freeSetVersion || (ulong)_free.Count < ring.Span)
        {
            // The scan is proportional to the slab count, and a full blade would repeat it every pass for nothing.
            return new Queue<ulong>();
        }

        ulong span = ring.Span;
        for (ulong head = 0; head + span <= _geometry.SlabCount; head += span)
        {
            ulong worst = 0;
            bool free = true;
            for (ulong member = head; member < head + span && free; member++)
            {
                free = _states[member] == SlabState.Free || (Faults.SpanRunTakesOwnedMembers && _states[member] == SlabState.Owned);
                worst = Math.Max(worst, _wear[member]);
            }

            if (free)
            {
                runs.Add((worst, head));
            }
        }

        return new Queue<ulong>(runs.OrderBy(r => r.Wear).ThenBy(r => r.Head).Select(r => r.Head));
    }

    /// <summary>Takes the next run whose members are all still free (the base ring may have taken some this pass).</summary>
    private ulong? TakeFreeRun(SlabRing ring, Queue<ulong> runs)
    {
        while (runs.TryDequeue(out ulong head))
        {
            bool stillFree = true;
            for (ulong member = head; member < head + ring.Span && stillFree; member++)
            {
                stillFree = _free.Contains((_freeKey[member], member)) || (Faults.SpanRunTakesOwnedMembers && _states[member] == SlabState.Owned);
            }

            if (!stillFree)
            {
                continue;
            }

            for (ulong member = head; member < head + ring.Span; member++)
            {
                _free.Remove((_freeKey[member], member));
            }

            return head;
        }

        return null;
    }

    /// <summary>
    /// Advances the global epoch once every live node has published it, and reclaims freed slabs whose drain
    /// epoch every live node has passed. Nodes whose lease expired are fenced and do not hold reclamation back.
    /// </summary>
    private void AdvanceEpochAndReclaim(NodeHeader[] headers)
    {
        ulong minPublished = _globalEpoch;
        bool anyLive = false;
        for (uint node = 0; node < headers.Length; node++)
        {
            if (IsLive(node, headers[node]))
            {
                minPublished = anyLive ? Math.Min(minPublished, headers[node].PublishedEpoch) : headers[node].PublishedEpoch;
                anyLive = true;
            }
        }

        if (minPublished >= _globalEpoch)
        {
            _globalEpoch++;
            var control = _layout.Control(_image.Region);
            control.StoreGlobalEpoch(_globalEpoch);
            control.PersistGlobalEpoch();
            _stats = _stats with { EpochAdvances = _stats.EpochAdvances + 1 };
        }

        foreach (var (slab, freedEpoch) in _freedEpochBySlab.ToArray())
        {
            if (minPublished > freedEpoch || Faults.ReuseBeforeEpoch)
            {
                _freedEpochBySlab.Remove(slab);
                Release(slab);
                _stats = _stats with { SlabsReclaimed = _stats.SlabsReclaimed + 1 };
            }
        }
    }

    /// <summary>Makes the slab headed by <paramref name="slab"/> free again, every base slab of it.</summary>
    private void Release(ulong slab)
    {
        int spanClass = _spanClassOf[slab];
        _image.MarkFree(slab, spanClass);
        SetState(slab, SlabState.Free, 0);
        for (ulong member = slab; member < slab + (1UL << spanClass); member++)
        {
            if (Faults.RefillFirstInFirstOut)
            {
                _releaseSequence = Math.Max(_releaseSequence, _free.Count > 0 ? _free.Max.Wear : 0) + 1;
                AddFree(member, _releaseSequence);
            }
            else
            {
                AddFree(member, _wear[member]);
            }

            _spanClassOf[member] = 0;
            _isTail[member] = false;
        }
    }

    /// <summary>Puts a base slab in the free set under <paramref name="key"/> (its wear, or its release order for the FIFO baseline).</summary>
    private void AddFree(ulong slab, ulong key)
    {
        _freeSetVersion++;
        _freeKey[slab] = key;
        _free.Add((key, slab));
    }

    /// <summary>Sets the state of the slab headed by <paramref name="slab"/>: every base slab of it.</summary>
    private void SetState(ulong slab, SlabState state, uint owner)
    {
        for (ulong member = slab; member < slab + (1UL << _spanClassOf[slab]); member++)
        {
            _countByState[(int)_states[member]]--;
            _countByState[(int)state]++;
            _states[member] = state;
            _owners[member] = owner;
        }
    }

    /// <summary>Whether <paramref name="slab"/> is a slab index a record may name: inside the image and a slab's head.</summary>
    private bool IsHead(ulong slab) => slab < _geometry.SlabCount && !_isTail[slab];

    private void PublishUtilization()
    {
        var control = _layout.Control(_image.Region);
        control.StoreOwnedSlabs((ulong)_countByState[(int)SlabState.Owned]);
        control.StoreRingedSlabs((ulong)_countByState[(int)SlabState.Ringed]);
        control.StoreFreeingSlabs((ulong)_countByState[(int)SlabState.Freeing]);
    }

    private sealed class NodeLiveness(ulong heartbeat, ulong incarnation)
    {
        public ulong Heartbeat { get; set; } = heartbeat;

        public ulong Incarnation { get; } = incarnation;

        public uint TicksUnchanged { get; set; }

        public bool Expired { get; set; }
    }
}
