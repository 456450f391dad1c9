using System.Buffers.Binary;
using System.Runtime.InteropServices;
using RAllocator.Fabric;
using RAllocator.Protocol.Layout;

namespace RAllocator.Protocol;

/// <summary>
/// A working node's side of the slab protocol with one blade, over one-sided verbs only: acquire a slab
/// (FETCH_AND_ADD + READ, acknowledgement posted), return a slab, publish epochs, and recover this node's slabs
/// after a restart. Never calls code on the blade; every wait is bounded.
/// </summary>
public sealed partial class BladeClient
{
    private readonly IFabricConnection _connection;
    private readonly ProtocolOptions _options;
    private readonly SemaphoreSlim _acquireGate = new(1, 1);
    private readonly SemaphoreSlim _returnGate = new(1, 1);
    private ulong _acquisition;
    private uint _ackSequence;
    private ulong _knownAcksApplied;
    private uint _freeSequence;
    private ulong _knownFreesApplied;
    private ulong _heartbeat;
    private bool _registered;

    private BladeClient(IFabricConnection connection, uint nodeId, Superblock superblock, ProtocolOptions options)
    {
        _connection = connection;
        _options = options;
        NodeId = nodeId;
        Superblock = superblock;
        Geometry = SuperblockCodec.GeometryOf(superblock);
        Layout = Geometry.Layout;
        Rings = Geometry.Rings;
    }

    /// <summary>The blade's id in this node's blade list.</summary>
    public int BladeId => _connection.BladeId;

    /// <summary>This working node's id on the blade.</summary>
    public uint NodeId { get; }

    /// <summary>The blade's superblock as read at connection.</summary>
    public Superblock Superblock { get; }

    /// <summary>The blade's geometry.</summary>
    public BladeGeometry Geometry { get; }

    /// <summary>The blade's layout.</summary>
    public BladeLayout Layout { get; }

    /// <summary>The blade's rings, one per span class (slab size).</summary>
    public SlabRings Rings { get; }

    /// <summary>The connection's verb, byte and round-trip counters.</summary>
    public FabricCounters Counters => _connection.Counters;

    /// <summary>The fabric connection, for object reads and writes.</summary>
    public IFabricConnection Connection => _connection;

    /// <summary>
    /// Reads and validates the blade's superblocks (two READs) and returns a client for <paramref name="nodeId"/>.
    /// </summary>
    /// <exception cref="BladeImageException">The blade's image is not valid.</exception>
    public static async Task<BladeClient> ConnectAsync(IFabricConnection connection, uint nodeId, ProtocolOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(connection);
        var bytes = new byte[Superblock.SizeBytes];
        await connection.ReadAsync(BladeLayout.SuperblockAOffset, bytes, cancellationToken).ConfigureAwait(false);
        var copyA = Superblock.FromBytes(bytes);
        await connection.ReadAsync(BladeLayout.SuperblockBOffset, bytes, cancellationToken).ConfigureAwait(false);
        var copyB = Superblock.FromBytes(bytes);
        var choice = SuperblockCodec.Choose(copyA, copyB, connection.RegionLength);
        if (nodeId >= choice.Superblock.MaxNodes)
        {
            throw new ArgumentOutOfRangeException(nameof(nodeId), nodeId,
                $"blade {connection.BladeId} serves nodes 0 to {choice.Superblock.MaxNodes - 1}; node {nodeId} is out of range.");
        }

        return new BladeClient(connection, nodeId, choice.Superblock, options ?? new ProtocolOptions());
    }

    /// <summary>
    /// Registers this node (a new incarnation), publishes the current epoch, and returns the slabs this node
    /// durably owns: Owned in the blade's table, or acknowledged in this node's area and not yet applied,
    /// minus slabs whose free request is still pending.
    /// </summary>
    public async Task<NodeRecovery> RegisterAsync(CancellationToken cancellationToken = default)
    {
        await _acquireGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var header = await ReadNodeHeaderAsync(cancellationToken).ConfigureAwait(false);
            var acks = await ReadArrayAsync<AckRecord>(AckSlotOffset(0), (int)Geometry.AckSlotsPerNode, cancellationToken).ConfigureAwait(false);
            var frees = await ReadArrayAsync<FreeRecord>(FreeSlotOffset(0), (int)Geometry.FreeSlotsPerNode, cancellationToken).ConfigureAwait(false);
            ulong globalEpoch = await ReadGlobalEpochAsync(cancellationToken).ConfigureAwait(false);

            // Resume sequence numbers after the last record this node ever wrote, applied or not.
            var pendingAcks = PendingRecords(header.AcksApplied, acks.Select(a => a.Word).ToArray(), out _ackSequence);
            var pendingFrees = PendingRecords(header.FreesApplied, frees.Select(f => f.Word).ToArray(), out _freeSequence);
            _knownAcksApplied = header.AcksApplied;
            _knownFreesApplied = header.FreesApplied;
            _acquisition = AcquireStateWord.Unpack(header.AcquireState).Acquisition;

            _heartbeat = header.Heartbeat + 1;

            // One persisted write of the first five header words: epoch, heartbeat, incarnation, acquisition not in
            // flight, and no claim. The in-flight and claim words are posted without a persist, so a blade crash can
            // keep an old claim while the acquisition number that went with it is lost; numbers then repeat, and the
            // agent would take that stale claim for the next acquisition's and release the ticket it is about to
            // acknowledge (found by the Coyote tests). Clearing the claim here leaves no stale claim to mistake.
            var words = new byte[40];
            BinaryPrimitives.WriteUInt64LittleEndian(words.AsSpan(0), globalEpoch);
            BinaryPrimitives.WriteUInt64LittleEndian(words.AsSpan(8), _heartbeat);
            BinaryPrimitives.WriteUInt64LittleEndian(words.AsSpan(16), header.Incarnation + 1);
            BinaryPrimitives.WriteUInt64LittleEndian(words.AsSpan(24), new AcquireStateWord(_acquisition, false).Pack());
            BinaryPrimitives.WriteUInt64LittleEndian(words.AsSpan(32), 0);
            await _connection.CreateBatch()
                .Write(NodeHeaderOffset(NodeHeader.Offsets.PublishedEpoch), words)
                .Persist(NodeHeaderOffset(NodeHeader.Offsets.PublishedEpoch), words.Length)
                .PostAndWaitAsync(cancellationToken).ConfigureAwait(false);

            var ownership = await ReadArrayAsync<OwnershipEntry>(Layout.OwnershipOffset, (int)Geometry.SlabCount, cancellationToken).ConfigureAwait(false);
            // Slabs by their head (a span's other base slabs are part of it, never named on their own).
            var owned = new SortedDictionary<ulong, (ulong Ticket, uint Span)>();
            for (int i = 0; i < ownership.Length; i++)
            {
                if (ownership[i].State == (uint)SlabState.Owned && ownership[i].Node == NodeId && ownership[i].SpanHeadDistance == 0)
                {
                    owned[(ulong)i] = (ownership[i].Generation, Math.Max(1, ownership[i].Span));
                }
            }

            foreach (var (sequence, word) in pendingAcks)
            {
                var ack = acks[(int)((sequence - 1) % Geometry.AckSlotsPerNode)];
                var slab = SequencedSlabWord.Unpack(word).SlabIndex;
                if (slab < Geometry.SlabCount && ownership[slab] is { State: (uint)SlabState.Ringed, SpanHeadDistance: 0 } entry && entry.Generation == ack.Ticket)
                {
                    owned[slab] = (ack.Ticket, Math.Max(1, entry.Span));
                }
            }

            var freeing = pendingFrees.Select(p => (ulong)SequencedSlabWord.Unpack(p.Word).SlabIndex).ToHashSet();
            foreach (var slab in freeing)
            {
                owned.Remove(slab);
            }

            _registered = true;
            return new NodeRecovery(
                owned.Select(kv => new OwnedSlab(kv.Key, kv.Value.Ticket, Geometry.SlabOffset(kv.Key), kv.Value.Span)).ToArray(),
                freeing.Order().ToArray(),
                header.Incarnation + 1,
                globalEpoch,
                RemotePtr.FromPacked(header.RootPointer));
        }
        finally
        {
            _acquireGate.Release();
        }
    }

    /// <summary>
    /// Acquires one slab of 2^<paramref name="spanClass"/> contiguous base slabs (default 0: one base slab) from that
    /// span class's ring: FETCH_AND_ADD on its sequencer, READ of the ring entry for the ticket (2 dependent round
    /// trips, whatever the size: the blade coalesced free neighbours ahead of time), then posts the durable
    /// acknowledgement without waiting. Acquisitions of one node are serialized.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The blade has no ring for <paramref name="spanClass"/>.</exception>
    /// <exception cref="BladeOutOfMemoryException">The blade had no free slab (or free run of that many base slabs) for the ticket.</exception>
    /// <exception cref="ProtocolStallException">The ring entry was not filled within the retry bound.</exception>
    public async Task<OwnedSlab> AcquireSlabAsync(int spanClass = 0, CancellationToken cancellationToken = default)
    {
        ThrowIfNotRegistered();
        if (spanClass < 0 || spanClass >= Rings.Count)
        {
            throw new ArgumentOutOfRangeException(nameof(spanClass), spanClass,
                $"blade {BladeId} serves span classes 0 to {Rings.Count - 1} (slabs of up to {Geometry.MaxSlabSpan} base slabs of {Geometry.SlabSizeBytes} bytes).");
        }

        var ring = Rings[spanClass];
        await _acquireGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await WaitForAreaAsync(isAckArea: true, cancellationToken).ConfigureAwait(false);
            ulong acquisition = ++_acquisition;
            var state = AcquireState.Idle;

            await PostWordAsync(NodeHeaderOffset(NodeHeader.Offsets.AcquireState), new AcquireStateWord(acquisition, true).Pack(), cancellationToken).ConfigureAwait(false);
            state = SlabAcquisitionMachine.Next(state, AcquireTransition.AnnounceAcquire);

            ulong ticket = await _connection.FetchAddAsync(ring.SequencerOffset, 1, cancellationToken).ConfigureAwait(false);
            state = SlabAcquisitionMachine.Next(state, AcquireTransition.FetchTicket);

            await PostWordAsync(NodeHeaderOffset(NodeHeader.Offsets.Claim), new ClaimWord(acquisition, ticket).Pack(), cancellationToken).ConfigureAwait(false);
            state = SlabAcquisitionMachine.Next(state, AcquireTransition.PostClaim);

            long entryOffset = ring.EntryOffset(ticket);
            var entryBytes = new byte[RingEntry.SizeBytes];
            for (int attempt = 0; ; attempt++)
            {
                await _connection.ReadAsync(entryOffset, entryBytes, cancellationToken).ConfigureAwait(false);
                state = SlabAcquisitionMachine.Next(state, AcquireTransition.ReadRingEntry);
                var entry = RingEntryWord.Unpack(BinaryPrimitives.ReadUInt64LittleEndian(entryBytes));
                if (entry.IsFor(ticket) && entry.Kind == RingEntryKind.Slab && entry.SlabIndex + (ulong)ring.Span <= Geometry.SlabCount)
                {
                    state = SlabAcquisitionMachine.Next(state, AcquireTransition.EntryMatches);
                    await PostAcknowledgementAsync(acquisition, entry.SlabIndex, ticket, cancellationToken).ConfigureAwait(false);
                    state = SlabAcquisitionMachine.Next(state, AcquireTransition.PostAcknowledgement);
                    return new OwnedSlab(entry.SlabIndex, ticket, Geometry.SlabOffset(entry.SlabIndex), ring.Span);
                }

                // A later ticket's entry in our slot means ours was overwritten, and the refill overwrites only entries
                // that carry no slab for a live in-flight claim: ours was Exhausted (the blade was full), read too late.
                if ((entry.IsFor(ticket) && entry.Kind == RingEntryKind.Exhausted) || entry.IsForLaterTicketThan(ticket))
                {
                    state = SlabAcquisitionMachine.Next(state, AcquireTransition.EntryExhausted);
                    await PostWordAsync(NodeHeaderOffset(NodeHeader.Offsets.AcquireState), new AcquireStateWord(acquisition, false).Pack(), cancellationToken).ConfigureAwait(false);
                    throw new BladeOutOfMemoryException(BladeId, ticket);
                }

                state = SlabAcquisitionMachine.Next(state, AcquireTransition.EntryNotFilled);
                if (attempt + 1 >= _options.RingReadRetryLimit)
                {
                    state = SlabAcquisitionMachine.Next(state, AcquireTransition.GiveUp);
                    // Withdraw: not in flight, claim left naming the ticket, no acknowledgement, so the blade
                    // releases whatever slab it puts under this ticket.
                    await PostWordAsync(NodeHeaderOffset(NodeHeader.Offsets.AcquireState), new AcquireStateWord(acquisition, false).Pack(), cancellationToken).ConfigureAwait(false);
                    throw new ProtocolStallException(ProtocolStall.RingNotFilled,
                        $"blade {BladeId}: the ring entry for ticket {ticket} was not filled after {_options.RingReadRetryLimit} reads; is the blade agent running? (state {state})");
                }

                await _options.Backoff(attempt, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            _acquireGate.Release();
        }
    }

    /// <summary>
    /// Returns a slab to the blade: the free request is written into this node's area and persisted, posted
    /// unsignaled. The blade reuses the slab only after every live node has passed the epoch of the drain.
    /// Returns of one node are serialized (one posted batch each, so the wait is short).
    /// </summary>
    public async Task ReturnSlabAsync(ulong slabIndex, CancellationToken cancellationToken = default)
    {
        ThrowIfNotRegistered();
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(slabIndex, Geometry.SlabCount);

        // The area check, the sequence number and the post are one step per node, for two reasons (both found by the
        // Coyote tests, tests/RAllocator.Coyote.Tests): two returns could both pass the check with one slot left, and
        // the second would overwrite a request the blade has not drained; and records must land in sequence order,
        // or a crash between two of them leaves a record after a hole, which the next incarnation (resuming its
        // numbering at the hole) collides with, so that the blade drains the stale record and skips the new one.
        await _returnGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await WaitForAreaAsync(isAckArea: false, cancellationToken).ConfigureAwait(false);
            uint sequence = ++_freeSequence;
            long slot = FreeSlotOffset((sequence - 1) % Geometry.FreeSlotsPerNode);
            var bytes = new byte[FreeRecord.SizeBytes];
            BinaryPrimitives.WriteUInt64LittleEndian(bytes, new SequencedSlabWord(sequence, (uint)slabIndex).Pack());
            await _connection.CreateBatch().Write(slot, bytes).Persist(slot, bytes.Length).PostUnsignaled(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _returnGate.Release();
        }
    }

    /// <summary>Reads the blade's global epoch (one READ).</summary>
    public async Task<ulong> ReadGlobalEpochAsync(CancellationToken cancellationToken = default)
    {
        var bytes = new byte[8];
        await _connection.ReadAsync(BladeLayout.ControlOffset + BladeControlBlock.Offsets.GlobalEpoch, bytes, cancellationToken).ConfigureAwait(false);
        return BinaryPrimitives.ReadUInt64LittleEndian(bytes);
    }

    /// <summary>
    /// Publishes that this node holds no reference taken before <paramref name="epoch"/>, and beats its
    /// heartbeat (one 16-byte WRITE, posted). Not persisted: a restarted node registers again.
    /// </summary>
    public Task PublishEpochAsync(ulong epoch, CancellationToken cancellationToken = default)
    {
        ThrowIfNotRegistered();
        var words = new byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(words, epoch);
        BinaryPrimitives.WriteUInt64LittleEndian(words.AsSpan(8), Interlocked.Increment(ref _heartbeat));
        return _connection.CreateBatch().Write(NodeHeaderOffset(NodeHeader.Offsets.PublishedEpoch), words)
            .PostUnsignaled(cancellationToken).AsTask();
    }

    /// <summary>Stores and persists this node's application root pointer on the blade (one round trip).</summary>
    public async Task SetRootAsync(RemotePtr root, CancellationToken cancellationToken = default)
    {
        ThrowIfNotRegistered();
        var bytes = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, root.Packed);
        long offset = NodeHeaderOffset(NodeHeader.Offsets.RootPointer);
        await _connection.CreateBatch().Write(offset, bytes).Persist(offset, 8).PostAndWaitAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task PostAcknowledgementAsync(ulong acquisition, uint slabIndex, ulong ticket, CancellationToken cancellationToken)
    {
        uint sequence = ++_ackSequence;
        long slot = AckSlotOffset((sequence - 1) % Geometry.AckSlotsPerNode);
        var record = new byte[AckRecord.SizeBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(record, new SequencedSlabWord(sequence, slabIndex).Pack());
        BinaryPrimitives.WriteUInt64LittleEndian(record.AsSpan(8), ticket);
        var notInFlight = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(notInFlight, new AcquireStateWord(acquisition, false).Pack());
        // Acknowledgement first and persisted, then "not in flight": the blade never sees a finished acquisition
        // whose acknowledgement is missing unless the node gave up.
        var batch = _connection.CreateBatch().Write(slot, record);
        if (!Faults.SkipAcknowledgementPersist)
        {
            batch.Persist(slot, record.Length);
        }

        await batch.Write(NodeHeaderOffset(NodeHeader.Offsets.AcquireState), notInFlight)
            .PostUnsignaled(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Waits (bounded) until the acknowledgement or free area has a slot the blade has drained.</summary>
    private async Task WaitForAreaAsync(bool isAckArea, CancellationToken cancellationToken)
    {
        uint slots = isAckArea ? Geometry.AckSlotsPerNode : Geometry.FreeSlotsPerNode;
        for (int attempt = 0; ; attempt++)
        {
            ulong next = (isAckArea ? _ackSequence : Volatile.Read(ref _freeSequence)) + 1UL;
            ulong applied = isAckArea ? _knownAcksApplied : Volatile.Read(ref _knownFreesApplied);
            if (next - applied <= slots)
            {
                return;
            }

            if (attempt >= _options.AreaFullRetryLimit)
            {
                var stall = isAckArea ? ProtocolStall.AcknowledgementAreaFull : ProtocolStall.FreeAreaFull;
                throw new ProtocolStallException(stall,
                    $"blade {BladeId}: node {NodeId}'s {(isAckArea ? "acknowledgement" : "free-request")} area stayed full ({slots} slots) after {attempt} checks; is the blade agent running?");
            }

            if (attempt > 0)
            {
                await _options.Backoff(attempt - 1, cancellationToken).ConfigureAwait(false);
            }

            // Only when the area looks full: one READ of the header to learn how far the blade has drained.
            var header = await ReadNodeHeaderAsync(cancellationToken).ConfigureAwait(false);
            if (isAckArea)
            {
                _knownAcksApplied = header.AcksApplied;
            }
            else
            {
                Volatile.Write(ref _knownFreesApplied, header.FreesApplied);
            }
        }
    }

    private async Task<NodeHeader> ReadNodeHeaderAsync(CancellationToken cancellationToken)
    {
        var bytes = new byte[NodeHeader.SizeBytes];
        await _connection.ReadAsync(NodeHeaderOffset(0), bytes, cancellationToken).ConfigureAwait(false);
        return NodeHeader.FromBytes(bytes);
    }

    private async Task<T[]> ReadArrayAsync<T>(long offset, int count, CancellationToken cancellationToken)
        where T : unmanaged
    {
        var result = new T[count];
        var bytes = new byte[count * Marshal.SizeOf<T>()];
        await _connection.ReadAsync(offset, bytes, cancellationToken).ConfigureAwait(false);
        MemoryMarshal.Cast<byte, T>(bytes).CopyTo(result);
        return result;
    }

    private ValueTask PostWordAsync(long offset, ulong value, CancellationToken cancellationToken)
    {
        var bytes = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, value);
        return _connection.CreateBatch().Write(offset, bytes).PostUnsignaled(cancellationToken);
    }

    /// <summary>Records after <paramref name="applied"/> whose sequence numbers follow on; also the last sequence written.</summary>
    private static List<(ulong Sequence, ulong Word)> PendingRecords(ulong applied, ulong[] slots, out uint lastSequence)
    {
        var pending = new List<(ulong, ulong)>();
        ulong sequence = applied;
        while (pending.Count < slots.Length)
        {
            ulong word = slots[(int)(sequence % (ulong)slots.Length)];
            if (SequencedSlabWord.Unpack(word).Sequence != (uint)(sequence + 1))
            {
                break;
            }

            sequence++;
            pending.Add((sequence, word));
        }

        lastSequence = (uint)sequence;
        return pending;
    }

    private long NodeHeaderOffset(int field) => Layout.NodeHeadersElementOffset(NodeId) + field;

    private long AckSlotOffset(long slot) => Layout.AckSlotsElementOffset(NodeId * Geometry.AckSlotsPerNode + slot);

    private long FreeSlotOffset(long slot) => Layout.FreeSlotsElementOffset(NodeId * Geometry.FreeSlotsPerNode + slot);

    private void ThrowIfNotRegistered()
    {
        if (!_registered)
        {
            throw new InvalidOperationException($"node {NodeId} is not registered with blade {BladeId}: call RegisterAsync first.");
        }
    }
}

/// <summary>A slab this node owns.</summary>
/// <param name="SlabIndex">The slab's index on its blade (its first base slab).</param>
/// <param name="Ticket">The ticket (generation) it was taken with.</param>
/// <param name="Offset">Byte offset of the slab in the blade region.</param>
/// <param name="Span">Contiguous base slabs it covers (1 for a base slab).</param>
public readonly record struct OwnedSlab(ulong SlabIndex, ulong Ticket, long Offset, uint Span = 1);

/// <summary>What a node gets back when it registers after a restart.</summary>
/// <param name="OwnedSlabs">Exactly the slabs it durably owns.</param>
/// <param name="PendingFreeSlabs">Slabs it returned whose free the blade has not drained yet (no longer its own).</param>
/// <param name="Incarnation">The node's new incarnation number.</param>
/// <param name="GlobalEpoch">The blade's epoch at registration.</param>
/// <param name="Root">The application root pointer the node last persisted.</param>
public sealed record NodeRecovery(IReadOnlyList<OwnedSlab> OwnedSlabs, IReadOnlyList<ulong> PendingFreeSlabs, ulong Incarnation, ulong GlobalEpoch, RemotePtr Root);
