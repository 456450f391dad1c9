using RAllocator.Nvm.Layout;

namespace RAllocator.Generators.Tests.Samples;

/// <summary>A superblock with every supported field type, two atomic fields and an unused tail.</summary>
[NvmStruct(64)]
public partial struct Superblock
{
    /// <summary>Image magic.</summary>
    [NvmField(0)] public partial ulong Magic { get; set; }

    /// <summary>Format version.</summary>
    [NvmField(8)] public partial uint FormatVersion { get; set; }

    /// <summary>Flag bits.</summary>
    [NvmField(12)] public partial ushort Flags { get; set; }

    /// <summary>Image kind.</summary>
    [NvmField(14)] public partial byte Kind { get; set; }

    /// <summary>A signed byte.</summary>
    [NvmField(15)] public partial sbyte Bias { get; set; }

    /// <summary>Update generation, bumped by remote atomics.</summary>
    [NvmField(16, Atomic = true)] public partial ulong Generation { get; set; }

    /// <summary>A signed 64-bit field that is not atomic.</summary>
    [NvmField(24)] public partial long CreatedTicks { get; set; }

    /// <summary>A signed atomic counter.</summary>
    [NvmField(32, Atomic = true)] public partial long Balance { get; set; }

    /// <summary>A signed 32-bit field.</summary>
    [NvmField(40)] public partial int Temperature { get; set; }

    /// <summary>A signed 16-bit field.</summary>
    [NvmField(44)] public partial short Delta { get; set; }
}

/// <summary>Control words, each its own atomic word.</summary>
[NvmStruct(64)]
public partial struct ControlBlock
{
    /// <summary>Global epoch.</summary>
    [NvmField(0, Atomic = true)] public partial ulong Epoch { get; set; }

    /// <summary>Agent heartbeat.</summary>
    [NvmField(8, Atomic = true)] public partial ulong Heartbeat { get; set; }
}

/// <summary>One ring word.</summary>
[NvmStruct(8)]
public partial struct RingEntry
{
    /// <summary>Packed entry.</summary>
    [NvmField(0, Atomic = true)] public partial ulong Word { get; set; }
}

/// <summary>64 allocation bits.</summary>
[NvmStruct(8)]
public partial struct BitmapWord
{
    /// <summary>The bits.</summary>
    [NvmField(0, Atomic = true)] public partial ulong Bits { get; set; }
}

/// <summary>A 12-byte record whose 8-byte field is aligned only when the record's own offset is 4 mod 8.</summary>
[NvmStruct(12)]
public partial struct PackedRecord
{
    /// <summary>A tag.</summary>
    [NvmField(0)] public partial uint Tag { get; set; }

    /// <summary>An 8-byte payload at offset 4.</summary>
    [NvmField(4)] public partial ulong Payload { get; set; }
}

/// <summary>The layout of the brief: two fixed regions and two array regions.</summary>
[NvmLayout]
[NvmFixedRegion("SuperblockA", typeof(Superblock), Offset = 0, ReserveBytes = 4096)]
[NvmFixedRegion("Control", typeof(ControlBlock), Offset = 8192, ReserveBytes = 64)]
[NvmArrayRegion("Ring", typeof(RingEntry), CountParameter = "ringCapacity")]
[NvmArrayRegion("Bitmap", typeof(BitmapWord), CountParameter = "bitmapWords", Align = 64)]
public sealed partial class BladeLayout
{
}

/// <summary>A count parameter shared by two regions, a default reservation and unusual alignments.</summary>
[NvmLayout]
[NvmFixedRegion("Header", typeof(PackedRecord), Offset = 4)]
[NvmArrayRegion("Records", typeof(PackedRecord), CountParameter = "slots", Align = 1)]
[NvmArrayRegion("Words", typeof(BitmapWord), CountParameter = "slots", Align = 4096)]
internal sealed partial class SharedCountLayout
{
}
