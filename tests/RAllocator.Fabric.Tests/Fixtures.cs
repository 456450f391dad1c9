namespace RAllocator.Fabric.Tests;

/// <summary>Builds fabrics over a fresh test region; every test gets its own, so none share state.</summary>
internal static class Fixtures
{
    public const long RegionLength = 4096;

    public static (LoopbackFabric Fabric, ByteArrayNvmRegion Region) NewFabric(LoopbackOptions? options = null)
    {
        var region = new ByteArrayNvmRegion(RegionLength);
        return (new LoopbackFabric(region, options), region);
    }

    public static FabricAccess Writable(params (long Offset, long Length)[] ranges) =>
        new([.. ranges.Select(r => new FabricRange(r.Offset, r.Length))]);

    public static byte[] Pattern(int length, byte seed = 1)
    {
        var bytes = new byte[length];
        for (var i = 0; i < length; i++)
        {
            bytes[i] = (byte)(seed + i);
        }

        return bytes;
    }
}
