namespace RAllocator.Fabric.Tests;

/// <summary>The registration model on its own: which ranges admit a modification.</summary>
public sealed class FabricAccessTests
{
    [Theory]
    [InlineData(0x100, 0x80, true)]
    [InlineData(0x100, 0, true)]
    [InlineData(0x180, 0, true)]
    [InlineData(0x0FF, 1, false)]
    [InlineData(0x17F, 2, false)]
    [InlineData(0x180, 1, false)]
    [InlineData(long.MaxValue, 1, false)]
    [InlineData(0x100, -1, false)]
    public void RangeContainsOnlyOperationsLyingEntirelyInsideIt(long offset, long length, bool inside)
    {
        new FabricRange(0x100, 0x80).Contains(offset, length).ShouldBe(inside, $"[{offset:x}+{length}) inside [0x100, 0x180)");
    }

    [Theory]
    [InlineData(-1, 8)]
    [InlineData(0, -8)]
    [InlineData(long.MaxValue, 1)]
    public void InvalidRangesAreRejected(long offset, long length)
    {
        Should.Throw<ArgumentOutOfRangeException>(
            () => new FabricAccess([new FabricRange(offset, length)]),
            "a registration must be a non-negative range that does not overflow");
    }

    [Fact]
    public void AccessKeepsItsOwnCopyOfTheRanges()
    {
        var ranges = new List<FabricRange> { new(0, 8) };
        var access = new FabricAccess(ranges);

        ranges[0] = new FabricRange(0, 4096);

        access.AllowsWrite(8, 8).ShouldBeFalse("changing the caller's list later must not widen a registration");
    }

    [Fact]
    public void UnrestrictedAllowsEveryWriteAndReadOnlyAllowsNone()
    {
        FabricAccess.Unrestricted.AllowsWrite(123, 4567).ShouldBeTrue("unrestricted access may write anywhere");
        FabricAccess.ReadOnly.AllowsWrite(0, 1).ShouldBeFalse("read-only access may write nowhere");
        FabricAccess.ReadOnly.AllowsWrite(0, 0).ShouldBeFalse("read-only access has no range, not even for an empty write");
    }

    [Fact]
    public void DescriptionListsTheRangesButBoundsItsLength()
    {
        var access = new FabricAccess([.. Enumerable.Range(0, 100).Select(i => new FabricRange(i * 16L, 8))]);

        var description = access.ToString();

        description.ShouldContain("[0x0, 0x8)", Case.Sensitive, "the description names the ranges");
        description.ShouldContain("92 more", Case.Sensitive, "a long registration list is summarized, not dumped");
    }
}
