using RAllocator.Nvm;
using RAllocator.Protocol.Layout;
using static RAllocator.Blade.Tests.TestImages;

namespace RAllocator.Blade.Tests;

/// <summary>
/// Recovery reads metadata, never the data area: the bytes an open and a scan read depend on the slab count and the
/// node areas, not on how large the slabs are. Counted through a decorator, not timed.
/// </summary>
public sealed class RecoveryCostTests
{
    private const ulong SlabCount = 100;

    [Fact]
    public void RecoveryReadsTheSameMetadataBytesWhateverTheSizeOfTheDataArea()
    {
        // Same slab count, data areas from 6.25 MiB to 6.25 GiB (sparse files: the data area is never written).
        var slabSizes = new[] { 64 * KiB, 1 * MiB, 16 * MiB, 64 * MiB };
        var reads = new List<(ulong SlabBytes, long DataBytes, long OpenBytes, long ScanBytes, long ScanEnd, long DataOffset)>();
        using var directory = new TempDirectory();
        foreach (ulong slabBytes in slabSizes)
        {
            long regionBytes = RegionHolding(SlabCount, slabBytes);
            string path = directory.File($"blade-{slabBytes}.nvm");
            using (var region = MappedFileNvm.Create(path, regionBytes))
            {
                var image = BladeImage.Format(region, slabBytes);
                image.Geometry.SlabCount.ShouldBe(SlabCount);
                for (ulong slab = 0; slab < SlabCount; slab += 3)
                {
                    image.MarkRinged(slab, ticket: slab + 1); // some state, so the scan has something to rebuild
                }
            }

            using var reopened = MappedFileNvm.Open(path, NvmAccess.ReadOnly);
            var counting = new CountingNvmRegion(reopened);
            var opened = BladeImage.Open(counting, BladeOpenMode.ReadOnly);
            long openBytes = counting.BytesRead;
            counting.ResetCounts();
            var state = opened.Scan();
            state.IsConsistent.ShouldBeTrue();
            state.Count(SlabState.Ringed).ShouldBe(34L);
            reads.Add((slabBytes, (long)(SlabCount * slabBytes), openBytes, counting.BytesRead, counting.ReadEndOffsetMax, opened.Geometry.DataOffset));
            counting.MutatingCalls.ShouldBe(0);
        }

        string table = string.Join("\n", reads.Select(r =>
            $"slab {r.SlabBytes,10} B, data area {r.DataBytes,12} B: open read {r.OpenBytes} B, scan read {r.ScanBytes} B, "
            + $"highest byte read {r.ScanEnd - 1} < data offset {r.DataOffset}"));
        TestContext.Current.TestOutputHelper?.WriteLine(table);

        reads.Select(r => r.OpenBytes).Distinct().Count().ShouldBe(1, $"an open reads the same bytes for every data-area size:\n{table}");
        reads.Select(r => r.ScanBytes).Distinct().Count().ShouldBe(1, $"a scan reads the same bytes for every data-area size:\n{table}");
        reads.ShouldAllBe(r => r.ScanEnd <= r.DataOffset, $"a scan reads nothing of the data area:\n{table}");
    }

    [Fact]
    public void AScanReadsEachMetadataRegionOnceAndNothingElse()
    {
        var (nvm, image) = FormatSmall();
        var counting = new CountingNvmRegion(nvm);
        var opened = BladeImage.Open(counting, BladeOpenMode.ReadOnly);
        counting.ResetCounts();

        opened.Scan();

        var layout = opened.Layout;
        long expected = layout.BitmapLengthBytes + layout.OwnershipLengthBytes + layout.WearLengthBytes + layout.RingLengthBytes
            + layout.SpanRingEntriesLengthBytes + layout.NodeHeadersLengthBytes + layout.AckSlotsLengthBytes + layout.FreeSlotsLengthBytes
            + BladeControlBlock.SizeBytes + (opened.Geometry.Rings.Count * 2 * sizeof(ulong)) /* each ring's sequencer and fill mark */
            + sizeof(ulong) /* intent word */;
        counting.BytesRead.ShouldBe(expected, "the scan reads the bitmap, ownership, wear, rings and node areas, the control block, "
            + "each ring's sequencer and fill mark and the intent word, each once");
    }

    /// <summary>The region size whose largest fitting geometry has exactly <paramref name="slabCount"/> slabs.</summary>
    private static long RegionHolding(ulong slabCount, ulong slabBytes)
    {
        var options = new BladeFormatOptions();
        var geometry = new BladeGeometry
        {
            RegionSizeBytes = 0,
            SlabSizeBytes = slabBytes,
            SlabCount = slabCount,
            MaxNodes = options.MaxNodes,
            RingCapacity = (uint)Math.Clamp(slabCount, 1, 1024),
            AckSlotsPerNode = options.AckSlotsPerNode,
            FreeSlotsPerNode = options.FreeSlotsPerNode,
            MaxSlabSpan = options.MaxSlabSpan,
            NodeLeaseTicks = options.NodeLeaseTicks,
        };
        return geometry.DataOffset + (long)(slabCount * slabBytes);
    }
}
