using FsCheck;
using FsCheck.Fluent;
using RAllocator.Nvm;
using RAllocator.Protocol.Layout;
using static RAllocator.Blade.Tests.TestImages;

namespace RAllocator.Blade.Tests;

/// <summary>Bytes of the superblock copies flipped: (copy, byte offset in the copy, xor mask), printed in hex.</summary>
internal sealed record SuperblockCorruption((SuperblockCopy Copy, int Offset, byte Mask)[] Flips)
{
    public override string ToString() =>
        $"SuperblockCorruption [{string.Join(", ", Flips.Select(f => $"{f.Copy}+0x{f.Offset:x2}^0x{f.Mask:x2}"))}]";

    public static Arbitrary<SuperblockCorruption> Arbitrary()
    {
        var flip = from copy in Gen.Elements(SuperblockCopy.A, SuperblockCopy.B)
                   from offset in Gen.Choose(0, Superblock.SizeBytes - 1)
                   from mask in Gen.Choose(1, 255)
                   select (copy, offset, (byte)mask);
        return Arb.From(from n in Gen.Choose(0, 4) from flips in flip.ArrayOf(n) select new SuperblockCorruption(flips));
    }
}

/// <summary>
/// Differential: random byte corruptions of the superblock copies against a reference that needs no decoding (a
/// copy is usable exactly when its bytes are unchanged, since the CRC-64 catches any change). Open must agree with
/// the reference, fail only with a typed error, and write nothing when it fails.
/// </summary>
public sealed class SuperblockCorruptionProperties
{
    private static readonly Lazy<(byte[] Image, long MetadataBytes)> s_image = new(() =>
    {
        var (nvm, image) = FormatSmall();
        return (nvm.DurableImageCopy(), image.Geometry.DataOffset);
    });

    [Fact]
    public void AnyCorruptionOfTheSuperblocksIsDetectedAndTheIntactCopyIfAnyIsUsed()
    {
        var region = new RestorableNvm(s_image.Value.Image, s_image.Value.MetadataBytes);
        SeededCheck.Holds(nameof(AnyCorruptionOfTheSuperblocksIsDetectedAndTheIntactCopyIfAnyIsUsed), SuperblockCorruption.Arbitrary(), corruption =>
        {
            var nvm = region.Restore();
            var original = new[] { ReadCopy(nvm, SuperblockCopy.A), ReadCopy(nvm, SuperblockCopy.B) };
            foreach (var (copy, offset, mask) in corruption.Flips)
            {
                FlipByte(nvm, copy, offset, mask);
            }

            // The reference: usable copies are the unchanged ones; the newest usable generation wins.
            var intact = new[] { SuperblockCopy.A, SuperblockCopy.B }
                .Where(c => SameBytes(ReadCopy(nvm, c), original[(int)c]))
                .OrderByDescending(c => original[(int)c].Generation)
                .ToArray();
            byte[] durable = ReadBytes(nvm, 0, s_image.Value.MetadataBytes);
            var counting = new CountingNvmRegion(nvm);

            if (intact.Length == 0)
            {
                var readOnly = Should.Throw<BladeImageException>(() => BladeImage.Open(counting, BladeOpenMode.ReadOnly), $"{corruption}: no copy is intact");
                var readWrite = Should.Throw<BladeImageException>(() => BladeImage.Open(counting), $"{corruption}: no copy is intact");
                readOnly.Error.ShouldBeOneOf([BladeImageError.WrongMagic, BladeImageError.ChecksumMismatch], $"{corruption}: {readOnly.Message}");
                readWrite.Error.ShouldBe(readOnly.Error);
                counting.MutatingCalls.ShouldBe(0, $"{corruption}: a refused open writes nothing");
                nvm.PendingStores.ShouldBeEmpty($"{corruption}: a refused open stores nothing");
                ReadBytes(nvm, 0, durable.Length).ShouldBe(durable, $"{corruption}: a refused open leaves the metadata untouched");
                return;
            }

            var image = BladeImage.Open(counting, BladeOpenMode.ReadOnly);
            image.CurrentSuperblockCopy.ShouldBe(intact[0], $"{corruption}: the newest intact copy is current");
            SameBytes(image.Superblock, original[(int)intact[0]]).ShouldBeTrue($"{corruption}: the current superblock is the intact copy, byte for byte");
            image.Scan().IsConsistent.ShouldBeTrue($"{corruption}: the metadata is untouched");
            counting.MutatingCalls.ShouldBe(0, $"{corruption}: a read-only open writes nothing");
        }, maxTest: 300);
    }
}
