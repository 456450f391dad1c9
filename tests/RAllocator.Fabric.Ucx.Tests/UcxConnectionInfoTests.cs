namespace RAllocator.Fabric.Ucx.Tests;

public sealed class UcxConnectionInfoTests
{
    private static UcxConnectionInfo Sample() => new([1, 2, 3], 4096, [
        new UcxRemoteRange(0, 4096, false, 0x7f00_0000_0000, [9, 8]),
        new UcxRemoteRange(64, 8, true, 0x7f00_0000_0040, [7]),
    ]);

    [Fact]
    public void Round_trips_through_bytes()
    {
        var decoded = UcxConnectionInfo.FromBytes(Sample().ToBytes());

        decoded.WorkerAddress.ShouldBe(new byte[] { 1, 2, 3 });
        decoded.RegionLength.ShouldBe(4096);
        decoded.Ranges.Count.ShouldBe(2);
        decoded.Ranges[1].ShouldBe(Sample().Ranges[1] with { PackedRemoteKey = decoded.Ranges[1].PackedRemoteKey });
        decoded.Ranges[1].PackedRemoteKey.ShouldBe(new byte[] { 7 });
        decoded.Access.WritableRanges.ShouldBe([new FabricRange(64, 8)]);
    }

    [Fact]
    public void Rejects_truncated_or_foreign_bytes()
    {
        var bytes = Sample().ToBytes();

        Should.Throw<FormatException>(() => UcxConnectionInfo.FromBytes(bytes.AsSpan(0, bytes.Length - 1)));
        Should.Throw<FormatException>(() => UcxConnectionInfo.FromBytes([.. bytes, 0]));
        bytes[0] ^= 0xff;
        Should.Throw<FormatException>(() => UcxConnectionInfo.FromBytes(bytes));
    }

    [Fact]
    public void Rejects_ranges_outside_the_region()
    {
        Should.Throw<ArgumentOutOfRangeException>(() => new UcxConnectionInfo([1], 4096, [new UcxRemoteRange(4090, 8, true, 0, [1])]));
    }
}
