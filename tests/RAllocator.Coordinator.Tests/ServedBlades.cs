using System.Net;

namespace RAllocator.Coordinator.Tests;

/// <summary>Blade servers in this process, each on its own formatted image file, reached over shared memory as other processes would.</summary>
internal sealed class ServedBlades : IAsyncDisposable
{
    private readonly TempDirectory _directory = new();
    private readonly List<IFabricConnection> _connections = [];

    public ServedBlades(int blades, int slabs = 48)
    {
        Servers = new BladeServer[blades];
        for (int i = 0; i < blades; i++)
        {
            var path = _directory.File($"blade{i}.img");
            using (var region = MappedFileNvm.Create(path, (long)(Cluster.SlabSize * (ulong)(slabs + 16))))
            {
                Blade.BladeImage.Format(region, Cluster.SlabSize, new BladeFormatOptions { MaxNodes = 4, RingCapacity = 4 });
            }

            Servers[i] = BladeServer.Start(path, new BladeServerOptions { Listen = new IPEndPoint(IPAddress.Loopback, 0), Token = Token, UtilizationReportInterval = TimeSpan.Zero });
        }

        Endpoints = Servers.Select(s => new BladeEndpoint("127.0.0.1", s.LocalEndPoint.Port)).ToArray();
    }

    public AccessToken Token { get; } = AccessToken.FromText("coordinator tests");

    public BladeServer[] Servers { get; }

    public BladeEndpoint[] Endpoints { get; }

    public ulong SlabCount(int blade) => Servers[blade].Geometry.SlabCount;

    /// <summary>One read-only observer connection per blade, as a coordinator process opens them.</summary>
    public async Task<IFabricConnection[]> ObserveAsync()
    {
        var observers = new IFabricConnection[Servers.Length];
        for (int i = 0; i < observers.Length; i++)
        {
            observers[i] = await RemoteBlade.ConnectObserverAsync(Endpoints[i], i, Token, new SharedMemoryConnector(), new RemoteBladeOptions { RetryFor = TimeSpan.Zero, NodeName = "coordinator" });
            _connections.Add(observers[i]);
        }

        return observers;
    }

    /// <summary>A working node's heap on every blade (blade id = position), as another process opens it.</summary>
    public async Task<WorkingNodeHeap> OpenHeapAsync(uint nodeId, IPlacementPolicy placement)
    {
        var heap = await RemoteNode.OpenHeapAsync(Endpoints, nodeId, Token, new SharedMemoryConnector(), new HeapOptions { Placement = placement, EmptySlabThreshold = 0 });
        _connections.AddRange(heap.Blades.Select(b => b.Connection));
        return heap;
    }

    /// <summary>Takes <paramref name="slabs"/> slabs of blade <paramref name="blade"/> with a node bound to it alone.</summary>
    public async Task FillAsync(int blade, int slabs, uint nodeId)
    {
        var heap = await OpenHeapAsync(nodeId, new FixedPlacement(blade));
        for (int i = 0; i < slabs; i++)
        {
            (await heap.AllocateAsync(Cluster.SlabObject)).BladeId.ShouldBe(blade);
        }
    }

    /// <summary>Refreshes until the blades' agents have published what the test did (they publish after each pass).</summary>
    public static async Task<PlacementHints> RefreshUntilAsync(PlacementCoordinator coordinator, Func<IReadOnlyList<BladeLoad>, bool> settled)
    {
        while (true)
        {
            var hints = await coordinator.RefreshAsync();
            if (settled(coordinator.Loads))
            {
                return hints;
            }

            await Task.Delay(1, TestContext.Current.CancellationToken);
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var connection in _connections)
        {
            await connection.DisposeAsync();
        }

        foreach (var server in Servers)
        {
            await server.StopAsync();
        }

        _directory.Dispose();
    }

    public sealed class FixedPlacement(int blade) : IPlacementPolicy
    {
        public IEnumerable<int> Order(IReadOnlyList<BladeClient> blades, int sizeClass) => [blade];
    }
}
