using RAllocator.Nvm.Layout;

namespace RAllocator.Protocol.Layout;

/// <summary>
/// Where everything lives in a blade image (global naming). Fixed regions sit at well-known offsets so that a
/// recovering node or blade finds them with no other information; the arrays follow, sized by the geometry
/// recorded in the superblock. The generator computes every offset; nothing else does.
/// </summary>
[NvmLayout]
[NvmFixedRegion("SuperblockA", typeof(Superblock), Offset = 0, ReserveBytes = 4096)]
[NvmFixedRegion("SuperblockB", typeof(Superblock), Offset = 4096, ReserveBytes = 4096)]
[NvmFixedRegion("Sequencer", typeof(SequencerBlock), Offset = 8192, ReserveBytes = 64)]
[NvmFixedRegion("Control", typeof(BladeControlBlock), Offset = 8256, ReserveBytes = 64)]
[NvmFixedRegion("Intent", typeof(BladeIntentBlock), Offset = 8320, ReserveBytes = 64)]
[NvmArrayRegion("Ring", typeof(RingEntry), CountParameter = "ringCapacity")]
[NvmArrayRegion("Bitmap", typeof(BitmapWord), CountParameter = "bitmapWords")]
[NvmArrayRegion("Ownership", typeof(OwnershipEntry), CountParameter = "slabCount")]
[NvmArrayRegion("Wear", typeof(WearCounter), CountParameter = "slabCount")]
[NvmArrayRegion("NodeHeaders", typeof(NodeHeader), CountParameter = "maxNodes", Align = 4096)]
[NvmArrayRegion("AckSlots", typeof(AckRecord), CountParameter = "ackSlotCount", Align = 4096)]
[NvmArrayRegion("FreeSlots", typeof(FreeRecord), CountParameter = "freeSlotCount", Align = 4096)]
[NvmArrayRegion("SpanRingControls", typeof(SpanRingControl), CountParameter = "spanRingCount", Align = 64)]
[NvmArrayRegion("SpanRingEntries", typeof(RingEntry), CountParameter = "spanRingEntryCount", Align = 64)]
public sealed partial class BladeLayout
{
}
