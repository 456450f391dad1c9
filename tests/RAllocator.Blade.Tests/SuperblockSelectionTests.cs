using RAllocator.Nvm;
using RAllocator.Protocol.Layout;
using static RAllocator.Blade.Tests.TestImages;

namespace RAllocator.Blade.Tests;

/// <summary>Of the two superblock copies, the valid one with the newest generation is current; a torn copy is never trusted.</summary>
public sealed class SuperblockSelectionTests
{
    [Fact]
    public void ATornSuperblockUpdateOpensFromTheOtherCopyAndTheNextOpenRepairsIt()
    {
        var (nvm, image) = FormatSmall();
        var before = image.Superblock;
        var target = image.CurrentSuperblockCopy == SuperblockCopy.A ? SuperblockCopy.B : SuperblockCopy.A;

        // Power fails at the update's persist and only the first half of the new copy's words reach NVM.
        nvm.BeforePersist = index => throw new SimulatedPowerFailure(index);
        Should.Throw<SimulatedPowerFailure>(() => image.UpdateSuperblock(sb =>
        {
            sb.BladeIncarnation += 10;
            sb.NodeLeaseTicks = 77;
            return sb;
        }));
        nvm.BeforePersist = null;
        var pending = nvm.PendingStores;
        pending.ShouldAllBe(s => s.Offset >= CopyOffset(target) && s.Offset < CopyOffset(target) + Superblock.SizeBytes,
            "an update writes only the copy that is not current");
        nvm.Crash(pending.Take(pending.Count / 2).Select(s => s.Index));

        var readOnly = BladeImage.Open(nvm, BladeOpenMode.ReadOnly);
        readOnly.CurrentSuperblockCopy.ShouldNotBe(target, "the torn copy fails its checksum and is not trusted");
        SameBytes(readOnly.Superblock, before).ShouldBeTrue($"the open finds the superblock from before the update, not {Describe(readOnly.Superblock)}");
        SuperblockCodec.Diagnose(ReadCopy(nvm, target), nvm.Length)!.Value.Error.ShouldBe(BladeImageError.ChecksumMismatch);

        var reopened = BladeImage.Open(nvm);
        reopened.CurrentSuperblockCopy.ShouldBe(target, "the next update overwrites the torn copy");
        reopened.Superblock.Generation.ShouldBe(before.Generation + 1);
        SuperblockCodec.Diagnose(ReadCopy(nvm, SuperblockCopy.A), nvm.Length).ShouldBeNull("both copies are valid again");
        SuperblockCodec.Diagnose(ReadCopy(nvm, SuperblockCopy.B), nvm.Length).ShouldBeNull("both copies are valid again");
    }

    [Theory]
    [InlineData(SuperblockCopy.A)]
    [InlineData(SuperblockCopy.B)]
    public void ACorruptCopyIsSkippedAndTheOtherCopyOpens(SuperblockCopy corrupted)
    {
        var (nvm, _) = FormatSmall();
        var other = corrupted == SuperblockCopy.A ? SuperblockCopy.B : SuperblockCopy.A;
        var survivor = ReadCopy(nvm, other);
        FlipByte(nvm, corrupted, Superblock.Offsets.SlabCount);

        var image = BladeImage.Open(nvm, BladeOpenMode.ReadOnly);

        image.CurrentSuperblockCopy.ShouldBe(other);
        SameBytes(image.Superblock, survivor).ShouldBeTrue();
        image.Scan().IsConsistent.ShouldBeTrue();
    }

    [Theory]
    [InlineData(5UL, 7UL, SuperblockCopy.B)]
    [InlineData(9UL, 4UL, SuperblockCopy.A)]
    [InlineData(1UL, 1000UL, SuperblockCopy.B)]
    public void TheValidCopyWithTheNewestGenerationWins(ulong generationA, ulong generationB, SuperblockCopy expected)
    {
        var (nvm, image) = FormatSmall();
        var template = image.Superblock;
        WriteCopy(nvm, SuperblockCopy.A, WithGeneration(template, generationA, incarnation: 100 + generationA));
        WriteCopy(nvm, SuperblockCopy.B, WithGeneration(template, generationB, incarnation: 100 + generationB));

        var opened = BladeImage.Open(nvm, BladeOpenMode.ReadOnly);

        opened.CurrentSuperblockCopy.ShouldBe(expected);
        opened.Superblock.Generation.ShouldBe(Math.Max(generationA, generationB));
        opened.Superblock.BladeIncarnation.ShouldBe(100 + Math.Max(generationA, generationB));

        // The newer copy torn: the older one is all that is left, and it opens.
        FlipByte(nvm, expected, Superblock.Offsets.Checksum);
        BladeImage.Open(nvm, BladeOpenMode.ReadOnly).Superblock.Generation.ShouldBe(Math.Min(generationA, generationB));
    }

    [Fact]
    public void SuccessiveUpdatesAlternateBetweenTheCopiesWithIncreasingGenerations()
    {
        var (nvm, image) = FormatSmall();
        for (int i = 0; i < 5; i++)
        {
            var before = image.CurrentSuperblockCopy;
            ulong generation = image.Superblock.Generation;

            image.UpdateSuperblock(sb =>
            {
                sb.BladeIncarnation++;
                return sb;
            });

            image.CurrentSuperblockCopy.ShouldNotBe(before, "an update never overwrites the current copy");
            image.Superblock.Generation.ShouldBe(generation + 1);
            var reopened = BladeImage.Open(nvm, BladeOpenMode.ReadOnly);
            SameBytes(reopened.Superblock, image.Superblock).ShouldBeTrue("an update that returned is durable and current");
        }
    }

    [Theory]
    [InlineData("slab count 0")]
    [InlineData("region size changed")]
    [InlineData("format version 2")]
    [InlineData("magic changed")]
    public void AnUpdateThatNoOpenWouldAcceptIsRefusedBeforeAnythingIsWritten(string change)
    {
        // Without the check, such an update returned, was ignored by the next open (a silent rollback), and the
        // update after it overwrote the last valid copy: two returned updates left an image no open accepts.
        var (nvm, image) = FormatSmall();
        var before = image.Superblock;
        string hash = Hash(nvm);
        Func<Superblock, Superblock> bad = change switch
        {
            "slab count 0" => sb => { sb.SlabCount = 0; return sb; },
            "region size changed" => sb => { sb.RegionSizeBytes *= 2; return sb; },
            "format version 2" => sb => { sb.FormatVersion = 2; return sb; },
            _ => sb => { sb.Magic = 0; return sb; },
        };

        Should.Throw<ArgumentException>(() => image.UpdateSuperblock(bad));
        image.UpdateSuperblock(sb => sb);

        Hash(nvm).ShouldNotBe(hash, "the valid update after the refused one is written");
        var reopened = BladeImage.Open(nvm, BladeOpenMode.ReadOnly);
        reopened.Superblock.Generation.ShouldBe(before.Generation + 1, "the refused change took no generation and wrote no copy");
        SuperblockCodec.Diagnose(ReadCopy(nvm, SuperblockCopy.A), nvm.Length).ShouldBeNull();
        SuperblockCodec.Diagnose(ReadCopy(nvm, SuperblockCopy.B), nvm.Length).ShouldBeNull();
    }

    private static Superblock WithGeneration(Superblock superblock, ulong generation, ulong incarnation)
    {
        superblock.Generation = generation;
        superblock.BladeIncarnation = incarnation;
        return SuperblockCodec.WithChecksum(superblock);
    }
}
