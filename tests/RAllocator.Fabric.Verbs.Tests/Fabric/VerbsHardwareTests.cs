using System.Net;

namespace RAllocator.Fabric.Verbs.Tests;

/// <summary>
/// End to end on a real device (or Soft-RoCE): a blade exporter and a node connection over loopback TCP. Skipped,
/// with the probe's message, where there is no device (see tests/hardware/README.md to run them).
/// </summary>
public sealed class VerbsHardwareTests
{
    private const long RegionBytes = 1 << 20;

    [Fact]
    public async Task EveryVerbReachesTheRegionAndCountsAsTheLoopbackDoes()
    {
        RequireDevice();
        using var region = new NativeRegion(RegionBytes);
        {
            var writable = new FabricAccess([new FabricRange(4096, 4096)]);
            await using var exporter = VerbsBladeExporter.Start(region.Address, RegionBytes, _ => writable, new IPEndPoint(IPAddress.Loopback, 0), Options());
            await using var connection = await VerbsConnection.ConnectAsync("127.0.0.1", exporter.LocalEndpoint.Port, 0, 1, Options(), TestContext.Current.CancellationToken);

            await connection.WriteAsync(4096, new byte[] { 1, 2, 3, 4, 5, 6, 7, 8 }, TestContext.Current.CancellationToken);
            await connection.PersistAsync(4096, 8, TestContext.Current.CancellationToken);
            (await connection.FetchAddAsync(4096 + 8, 5, TestContext.Current.CancellationToken)).ShouldBe(0UL);
            (await connection.CompareSwapAsync(4096 + 8, 5, 9, TestContext.Current.CancellationToken)).ShouldBe(5UL);
            var back = new byte[16];
            await connection.ReadAsync(4096, back, TestContext.Current.CancellationToken);
            back.ShouldBe(new byte[] { 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 0, 0, 0, 0, 0, 0 });

            var refused = await Should.ThrowAsync<FabricException>(() => connection.WriteAsync(0, new byte[8], TestContext.Current.CancellationToken).AsTask());
            refused.Status.ShouldBe(FabricStatus.RemoteAccessError);
            var counters = connection.Counters.Snapshot();
            counters.ShouldBe(new FabricCounterSnapshot(RoundTrips: 6, Reads: 1, Writes: 2, FetchAdds: 1, CompareSwaps: 1, Persists: 1, UnsignaledPosts: 0, BytesToBlade: 8 + 8 + 16, BytesFromBlade: 8 + 8 + 16));
        }
    }

    [Fact]
    public async Task UnsignaledBatchesBeyondTheSignalIntervalNeverOverflowTheSendQueue()
    {
        RequireDevice();
        using var region = new NativeRegion(RegionBytes);
        {
            await using var exporter = VerbsBladeExporter.Start(region.Address, RegionBytes, _ => FabricAccess.Unrestricted, new IPEndPoint(IPAddress.Loopback, 0), Options());
            await using var connection = await VerbsConnection.ConnectAsync("127.0.0.1", exporter.LocalEndpoint.Port, 0, 1, Options(), TestContext.Current.CancellationToken);

            for (int i = 0; i < 1000; i++)
            {
                await connection.CreateBatch().Write(i * 8, BitConverter.GetBytes((ulong)i)).Persist(i * 8, 8).PostUnsignaled(TestContext.Current.CancellationToken);
            }

            var last = new byte[8];
            await connection.ReadAsync(999 * 8, last, TestContext.Current.CancellationToken);
            BitConverter.ToUInt64(last).ShouldBe(999UL, "RC ordering: the read sees every earlier unsignaled write");
            connection.Counters.Snapshot().UnsignaledPosts.ShouldBe(1000);
        }
    }

    private static VerbsOptions Options() => new()
    {
        DeviceName = Environment.GetEnvironmentVariable("RALLOCATOR_VERBS_DEVICE"),
        GidIndex = byte.TryParse(Environment.GetEnvironmentVariable("RALLOCATOR_VERBS_GID_INDEX"), out byte gid) ? gid : (byte)0,
    };

    /// <summary>Page-aligned zeroed native memory standing in for the blade's mapped NVM.</summary>
    private sealed unsafe class NativeRegion(long length) : IDisposable
    {
        public nint Address { get; } = Zeroed(length);

        private static nint Zeroed(long length)
        {
            void* memory = System.Runtime.InteropServices.NativeMemory.AlignedAlloc((nuint)length, 4096);
            System.Runtime.InteropServices.NativeMemory.Clear(memory, (nuint)length);
            return (nint)memory;
        }

        public void Dispose() => System.Runtime.InteropServices.NativeMemory.AlignedFree((void*)Address);
    }

    private static void RequireDevice()
    {
        var probe = VerbsDevices.Probe();
        Assert.SkipUnless(probe.IsAvailable, probe.Message);
    }
}
