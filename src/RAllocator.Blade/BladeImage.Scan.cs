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
            long slab = (long)p.Intent.SlabIndex;
            ownership[slab] = Target(p.Intent, p.Argument, ownership[slab]);
            ulong bit = 1UL << (int)(slab % 64);
            bitmap[slab / 64].Bits = p.Intent.Kind == BladeIntentKind.Release ? bitmap[slab / 64].Bits & ~bit : bitmap[slab / 64].Bits | bit;
        }

        var slabs = new SlabRecord[slabCount];
        for (long i = 0; i < slabCount; i++)
        {
            var entry = ownership[i];
            bool allocated = (bitmap[i / 64].Bits & (1UL << (int)(i % 64))) != 0;
            var state = (SlabState)entry.State;
            slabs[i] = new SlabRecord((ulong)i, state, allocated, entry.Node, entry.Generation, entry.FreedEpoch, wear[i].HandOuts);
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

        var ringWords = ReadArray<RingEntry>(Layout.RingOffset, Layout.RingCount);
        var ring = new RingSlot[ringWords.Length];
        for (int i = 0; i < ringWords.Length; i++)
        {
            var entry = RingEntryWord.Unpack(ringWords[i].Word);
            ring[i] = new RingSlot(i, entry);
            if (entry.Kind == RingEntryKind.Slab && entry.SlabIndex >= geometry.SlabCount)
            {
                problems.Add($"ring entry {i} names slab {entry.SlabIndex}, beyond the {slabCount} slabs");
            }
        }

        var nodes = ScanNodes(problems);
        var control = BladeControlBlock.Read(Region, BladeLayout.ControlOffset);
        ulong sequencer = Layout.Sequencer(Region).LoadSequencer();
        return new BladeState(geometry, Superblock, slabs, ring, nodes, sequencer, control, pending, problems);
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
