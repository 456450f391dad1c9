using System.Buffers.Binary;
using RAllocator.Blade;
using RAllocator.Nvm;
using RAllocator.Protocol.Layout;

namespace RAllocator.Fuzz;

public static partial class FuzzTargets
{
    private static readonly Lazy<byte[]> s_areasTemplate = new(FormatAreasTemplate);

    /// <summary>Geometry of the template blade the "areas" target writes into.</summary>
    public static BladeFormatOptions AreasFormat { get; } = new() { MaxNodes = 2, RingCapacity = 4, AckSlotsPerNode = 4, FreeSlotsPerNode = 4 };

    /// <summary>
    /// Arbitrary bytes as what a working node may write into its own areas of a running blade: its header's
    /// acquisition-state, claim, epoch and applied words, its acknowledgement area and its free-request area.
    /// The agent (which parses these with <c>SequencedSlabWord</c> / <c>AckRecord</c> in DrainAcknowledgements and
    /// DrainFrees) must run its passes without an exception and leave a consistent image in which the node owns no
    /// more slabs than it has acknowledgement slots and no slab it was never given.
    /// </summary>
    /// <remarks>
    /// Input layout (cyclic, so any length works): byte 0 picks the node; then the header words AcquireState,
    /// Claim, AcksApplied, FreesApplied, PublishedEpoch (8 bytes each), then the acknowledgement area
    /// (16 bytes a slot) and the free-request area (8 bytes a slot).
    /// </remarks>
    public static void DrainNodeAreas(byte[] input)
    {
        if (input.Length == 0)
        {
            return;
        }

        using var region = SimulatedNvm.FromDurableImage((byte[])s_areasTemplate.Value.Clone());
        var blade = BladeImage.Open(region, BladeOpenMode.ReadWrite);
        var agent = BladeAgent.Start(blade);
        agent.RunOnce();
        var ringedBefore = blade.Scan().Slabs.Where(s => s.State == SlabState.Ringed).Select(s => s.Index).ToHashSet();

        var layout = blade.Layout;
        var geometry = blade.Geometry;
        uint node = input[0] % geometry.MaxNodes;
        int cursor = 1;
        ulong Next()
        {
            Span<byte> word = stackalloc byte[8];
            for (int i = 0; i < 8; i++)
            {
                word[i] = input.Length > 1 ? input[1 + ((cursor - 1 + i) % (input.Length - 1))] : (byte)0;
            }

            cursor += 8;
            return BinaryPrimitives.ReadUInt64LittleEndian(word);
        }

        long header = layout.NodeHeadersElementOffset(node);
        region.StoreUInt64(header + NodeHeader.Offsets.Incarnation, 1);
        region.StoreUInt64(header + NodeHeader.Offsets.AcquireState, Next());
        region.StoreUInt64(header + NodeHeader.Offsets.Claim, Next());
        region.StoreUInt64(header + NodeHeader.Offsets.AcksApplied, Next());
        region.StoreUInt64(header + NodeHeader.Offsets.FreesApplied, Next());
        region.StoreUInt64(header + NodeHeader.Offsets.PublishedEpoch, Next());
        for (long slot = 0; slot < geometry.AckSlotsPerNode; slot++)
        {
            long at = layout.AckSlotsElementOffset((node * geometry.AckSlotsPerNode) + slot);
            region.StoreUInt64(at + AckRecord.Offsets.Word, Next());
            region.StoreUInt64(at + AckRecord.Offsets.Ticket, Next());
        }

        for (long slot = 0; slot < geometry.FreeSlotsPerNode; slot++)
        {
            region.StoreUInt64(layout.FreeSlotsElementOffset((node * geometry.FreeSlotsPerNode) + slot), Next());
        }

        for (int pass = 0; pass < 3; pass++)
        {
            agent.RunOnce();
        }

        var state = blade.Scan();
        if (!state.IsConsistent)
        {
            throw new FuzzFindingException($"the agent left an inconsistent image after draining node {node}'s areas: {string.Join("; ", state.Problems)}");
        }

        var owned = state.Slabs.Where(s => s.State is SlabState.Owned or SlabState.Freeing).ToArray();
        if (owned.Length > geometry.AckSlotsPerNode)
        {
            throw new FuzzFindingException($"node {node} owns {owned.Length} slabs with {geometry.AckSlotsPerNode} acknowledgement slots");
        }

        foreach (var slab in owned)
        {
            if (slab.Node != node || !ringedBefore.Contains(slab.Index))
            {
                throw new FuzzFindingException($"slab {slab.Index} became {slab.State} for node {slab.Node} without having been ringed for node {node}");
            }
        }

        // The agent keeps working: the image reopens and a new agent starts on it.
        BladeAgent.Start(BladeImage.Open(region, BladeOpenMode.ReadWrite)).RunOnce();
    }

    /// <summary>
    /// Seed inputs for the "areas" target: an empty area, and a valid acknowledgement (then its free request) of
    /// the first ringed slab, so that mutations start from records the agent applies.
    /// </summary>
    public static IReadOnlyList<(string Name, byte[] Bytes)> AreasSeeds()
    {
        using var region = SimulatedNvm.FromDurableImage((byte[])s_areasTemplate.Value.Clone());
        var blade = BladeImage.Open(region, BladeOpenMode.ReadWrite);
        BladeAgent.Start(blade).RunOnce();
        var ringed = blade.Scan().Slabs.First(s => s.State == SlabState.Ringed);

        byte[] Build(bool withFree)
        {
            var words = new List<ulong>
            {
                new AcquireStateWord(1, false).Pack(), new ClaimWord(1, ringed.Generation).Pack(), 0, 0, 1,
                new SequencedSlabWord(1, (uint)ringed.Index).Pack(), ringed.Generation, 0, 0, 0, 0, 0, 0,
                withFree ? new SequencedSlabWord(1, (uint)ringed.Index).Pack() : 0, 0, 0, 0,
            };
            var bytes = new byte[1 + (8 * words.Count)];
            for (int i = 0; i < words.Count; i++)
            {
                BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(1 + (8 * i)), words[i]);
            }

            return bytes;
        }

        return [("empty", new byte[1 + (8 * 17)]), ("ack-first-ringed", Build(false)), ("ack-then-free", Build(true))];
    }

    private static byte[] FormatAreasTemplate()
    {
        using var region = new SimulatedNvm(1 << 20);
        BladeImage.Format(region, BladeGeometry.MinSlabSizeBytes, AreasFormat, bladeUid: 7);
        return region.DurableImageCopy();
    }
}
