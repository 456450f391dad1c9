namespace RAllocator.Cli.Tests;

public sealed class ByteSizeTests
{
    [Theory]
    [InlineData("4096", 4096UL)]
    [InlineData("4096B", 4096UL)]
    [InlineData("64KiB", 64UL << 10)]
    [InlineData("64K", 64UL << 10)]
    [InlineData("64kib", 64UL << 10)]
    [InlineData("64MiB", 64UL << 20)]
    [InlineData("1GiB", 1UL << 30)]
    [InlineData("2TiB", 2UL << 40)]
    [InlineData("64KB", 64_000UL)]
    [InlineData("64MB", 64_000_000UL)]
    [InlineData("1GB", 1_000_000_000UL)]
    [InlineData(" 1M ", 1UL << 20)]
    public void SizesAcceptBinaryUnitsAsPowersOf1024AndDecimalUnitsAsPowersOf1000(string text, ulong expected)
    {
        ByteSize.TryParse(text, out ulong bytes, out string? error).ShouldBeTrue(error);
        bytes.ShouldBe(expected);
    }

    [Theory]
    [InlineData("12XB", "unknown unit 'XB'")]
    [InlineData("", "empty")]
    [InlineData("-5", "does not start with a whole number")]
    [InlineData("1.5GiB", "unknown unit '.5GiB'")]
    [InlineData("MiB", "does not start with a whole number")]
    [InlineData("99999999999999999999", "too large")]
    [InlineData("20000000TiB", "too large")]
    public void MalformedSizesAreRejectedWithTheReason(string text, string reason)
    {
        ByteSize.TryParse(text, out _, out string? error).ShouldBeFalse();
        error.ShouldNotBeNull().ShouldContain(reason);
    }

    [Theory]
    [InlineData(512UL, "512 B")]
    [InlineData(1UL << 20, "1 MiB")]
    [InlineData(64UL << 20, "64 MiB")]
    [InlineData(40960UL, "40 KiB")]
    [InlineData(1536UL, "1.5 KiB")]
    public void SizesPrintInBinaryUnits(ulong bytes, string expected) => ByteSize.Format(bytes).ShouldBe(expected);
}
