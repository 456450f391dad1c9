using System.Runtime.InteropServices;
using RAllocator.Protocol.Layout;

namespace RAllocator.Blade;

// Rebuilding the in-memory view. Work is proportional to the metadata (bitmap, ownership table, wear, ring and
// node areas), never to the data area: a 64 GiB blade of 1 MiB slabs reads about 3.5 MiB here.
public sealed partial class BladeImage
{
    /// <summary>
    /// Reads the persistent metadata and rebuilds the blade's view, checking that the bitmap, ownership table,
    /// ring and node areas agree. A pending intent is applied to the view (and, read-write, was already replayed).
    /// </summary>
    public BladeState Scan()
    {
        var problems = new List<string>();
        var geometry = Geometry;
        long slabCount = (long)geometry.SlabCount;

        var bitmap = ReadArray<BitmapWord>(Layout.BitmapOffset, Layout.BitmapCount);
        var ownership = ReadArray<OwnershipEntry>(Layout.OwnershipOffset, Layout.OwnershipCount);
        var wear = ReadArray<WearCounter>(Layout.WearOffset, Layout.WearCount);

        (BladeIntent Intent, ulong Argument)? pending = null;
        try
        {
            pending = PendingIntentUnsynchronized();
        }
        catch (BladeImageException ex)
        {
            problems.Add(ex.Message);
        }

        if (pending is { } p)
        {
            // Read-only views show the image as recovery will make it.
            long head = (long)p.Intent.SlabIndex;
            for (uint distance = 0; distance < p.Intent.Span; distance++)
            {
                ownership[head + distance] = Target(p.Intent, p.Argument, ownership[head + distance], distance);
            }

            bitmap[head / 64].Bits = TargetBits(p.Intent, bitmap[head / 64].Bits);
        }

        var slabs = new SlabRecord[slabCount];
        for (long i = 0; i < slabCount; i++)
        {
            var entry = ownership[i];
            bool allocated = (bitmap[i / 64].Bits & (1UL << (int)(i % 64))) != 0;
            var state = (SlabState)entry.State;
            slabs[i] = new SlabRecord((ulong)i, state, allocated, entry.Node, entry.Generation, entry.FreedEpoch, wear[i].HandOuts,
                state == SlabState.Free ? 1u : entry.Span, entry.SpanHeadDistance);
            if (state != SlabState.Free && SpanProblem(i, ownership, geometry) is { } spanProblem)
            {
                problems.Add(spanProblem);
            }

            if (entry.State > (uint)SlabState.Freeing)
            {
                problems.Add($"slab {i} has an unknown state {entry.State} in the ownership table");
            }
            else if (allocated != (state != SlabState.Free))
            {
                problems.Add(allocated
                    ? $"slab {i} is allocated in the bitmap but Free in the ownership table"
                    : $"slab {i} is {state} in the ownership table but free in the bitmap");
            }

            if (state is SlabState.Owned or SlabState.Freeing && entry.Node >= geometry.MaxNodes)
            {
                problems.Add($"slab {i} is owned by node {entry.Node}, beyond the {geometry.MaxNodes} nodes this blade serves");
            }
        }

        for (long w = slabCount; w < Layout.BitmapCount * 64; w++)
        {
            if ((bitmap[w / 64].Bits & (1UL << (int)(w % 64))) != 0)
            {
                problems.Add($"bitmap bit {w} is set but the blade has only {slabCount} slabs");
            }
        }

        var rings = geometry.Rings.All.Select(ring => ScanRing(ring, problems)).ToArray();
        var nodes = ScanNodes(problems);
        var control = BladeControlBlock.Read(Region, BladeLayout.ControlOffset);
        return new BladeState(geometry, Superblock, slabs, rings, nodes, control, pending, problems);
    }

    private RingState ScanRing(SlabRing ring, List<string> problems)
    {
        var words = ReadArray<RingEntry>(ring.EntriesOffset, ring.Capacity);
        var slots = new RingSlot[words.Length];
        string name = ring.SpanClass == 0 ? "ring" : $"span ring {ring.SpanClass}";
        for (int i = 0; i < words.Length; i++)
        {
            var entry = RingEntryWord.Unpack(words[i].Word);
            slots[i] = new RingSlot(i, entry);
            if (entry.Kind == RingEntryKind.Slab && ((ulong)entry.SlabIndex + ring.Span > Geometry.SlabCount || entry.SlabIndex % ring.Span != 0))
            {
                problems.Add($"{name} entry {i} names a slab of {ring.Span} base slabs at {entry.SlabIndex}, unaligned or beyond the {Geometry.SlabCount} slabs");
            }
        }

        ulong sequencer = Region.LoadUInt64(ring.SequencerOffset);
        ulong filledThrough = Region.LoadUInt64(ring.FillMarkOffset);
        if (SlabRings.SpanClassOf(sequencer) != ring.SpanClass || SlabRings.SpanClassOf(filledThrough) != ring.SpanClass)
        {
            problems.Add($"{name}'s sequencer {sequencer} or fill mark {filledThrough} is outside its ticket space (from {ring.FirstTicket})");
        }

        return new RingState(ring, sequencer, filledThrough, slots);
    }

    /// <summary>Why the non-free slab <paramref name="index"/> is not a consistent member of its span, or null.</summary>
    private static string? SpanProblem(long index, OwnershipEntry[] ownership, BladeGeometry geometry)
    {
        var entry = ownership[index];
        if (entry.Span == 0 || !System.Numerics.BitOperations.IsPow2(entry.Span) || entry.Span > geometry.MaxSlabSpan || entry.SpanHeadDistance >= entry.Span)
        {
            return $"slab {index} records span {entry.Span} at distance {entry.SpanHeadDistance}, not a slab size of this image (up to {geometry.MaxSlabSpan})";
        }

        long head = index - entry.SpanHeadDistance;
        if (head % entry.Span != 0 || head + entry.Span > ownership.Length)
        {
            return $"slab {index}'s span of {entry.Span} from {head} is unaligned or beyond the slabs";
        }

        var first = ownership[head];
        if (entry.State != first.State || entry.Node != first.Node || entry.Generation != first.Generation || entry.Span != first.Span || first.SpanHeadDistance != 0)
        {
            return $"slab {index} disagrees with the head {head} of its span ({(SlabState)entry.State} vs {(SlabState)first.State}, generation {entry.Generation} vs {first.Generation})";
        }

        return null;
    }

    private NodeRecord[] ScanNodes(List<string> problems)
    {
        var headers = ReadArray<NodeHeader>(Layout.NodeHeadersOffset, Layout.NodeHeadersCount);
        var acks = ReadArray<AckRecord>(Layout.AckSlotsOffset, Layout.AckSlotsCount);
        var frees = ReadArray<FreeRecord>(Layout.FreeSlotsOffset, Layout.FreeSlotsCount);
        uint ackSlots = Geometry.AckSlotsPerNode;
        uint freeSlots = Geometry.FreeSlotsPerNode;
        var nodes = new NodeRecord[headers.Length];
        for (uint n = 0; n < headers.Length; n++)
        {
            var header = headers[n];
            var pendingAcks = new List<PendingAck>();
            for (ulong s = header.AcksApplied + 1; pendingAcks.Count < ackSlots; s++)
            {
                var record = acks[n * ackSlots + (long)((s - 1) % ackSlots)];
                var word = SequencedSlabWord.Unpack(record.Word);
                if (word.Sequence != (uint)s)
                {
                    break;
                }

                // A node's areas are its input, not the blade's metadata: a record naming a slab that does not exist is
                // listed here and rejected (counted) by the agent when its turn comes, never an image inconsistency,
                // or a node writing garbage into its own area could keep the blade from starting (found by fuzzing).
                pendingAcks.Add(new PendingAck(word.Sequence, word.SlabIndex, record.Ticket));
            }

            var pendingFrees = new List<SequencedSlabWord>();
            for (ulong s = header.FreesApplied + 1; pendingFrees.Count < freeSlots; s++)
            {
                var word = SequencedSlabWord.Unpack(frees[n * freeSlots + (long)((s - 1) % freeSlots)].Word);
                if (word.Sequence != (uint)s)
                {
                    break;
                }

                pendingFrees.Add(word);
            }

            nodes[n] = new NodeRecord(n, header, pendingAcks, pendingFrees);
        }

        return nodes;
    }

    /// <summary>Reads a whole array region in one bulk read.</summary>
    internal T[] ReadArray<T>(long offset, long count)
        where T : unmanaged
    {
        var result = new T[count];
        Region.Read(offset, MemoryMarshal.AsBytes(result.AsSpan()));
        return result;
    }
}
