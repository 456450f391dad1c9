namespace RAllocator.Coordinator.Tests;

/// <summary>In-process blades with their agents running, plus a coordinator reading them over read-only connections.</summary>
internal sealed class Cluster : IAsyncDisposable
{
    // 64 KiB slabs and objects of the largest class that fits: every allocation takes a slab of its own.
    public const ulong SlabSize = 64 * 1024;
    public const int SlabObject = 57344;

    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _agents = [];

    public Cluster(int blades, long regionBytes = 4 << 20)
    {
        Blades = Enumerable.Range(0, blades)
            .Select(id => EmbeddedBlade.Format(id, new SimulatedNvm(regionBytes), SlabSize, new BladeFormatOptions { MaxNodes = 4, RingCapacity = 4 }))
            .ToArray();
        StartAgents();
    }

    public EmbeddedBlade[] Blades { get; }

    public ulong SlabCount(int blade) => Blades[blade].Image.Geometry.SlabCount;

    public PlacementCoordinator Coordinator(CoordinatorOptions? options = null) =>
        new(Blades.Select(b => (IFabricConnection)b.Fabric.Connect(b.BladeId, FabricAccess.ReadOnly, "coordinator")).ToArray(), options);

    public void StartAgents()
    {
        _agents.AddRange(Blades.Select(b => b.RunAgentAsync(_stop.Token)));
    }

    /// <summary>Stops every agent loop and waits for it: no agent pass runs after this returns.</summary>
    public async Task StopAgentsAsync()
    {
        await _stop.CancelAsync();
        await Task.WhenAll(_agents);
        _agents.Clear();
    }

    /// <summary>Lets every agent finish one more full pass (so published counters reflect every applied ack/free).</summary>
    public async Task SettleAsync()
    {
        foreach (var blade in Blades)
        {
            long target = blade.Agent.HandlerCalls + 2;
            while (blade.Agent.HandlerCalls < target)
            {
                await Task.Delay(1);
            }
        }
    }

    /// <summary>Fills blade <paramref name="blade"/> to <paramref name="slabs"/> owned slabs with a node bound to it alone.</summary>
    public async Task<WorkingNodeHeap> FillAsync(int blade, int slabs, uint nodeId)
    {
        var heap = await EmbeddedNode.OpenHeapAsync(Blades.Take(blade + 1).ToArray(), nodeId,
            new HeapOptions { Placement = new FixedPlacement(blade) });
        for (int i = 0; i < slabs; i++)
        {
            (await heap.AllocateAsync(SlabObject)).BladeId.ShouldBe(blade);
        }

        return heap;
    }

    public async ValueTask DisposeAsync()
    {
        await StopAgentsAsync();
    }

    private sealed class FixedPlacement(int blade) : IPlacementPolicy
    {
        public IEnumerable<int> Order(IReadOnlyList<BladeClient> blades, int sizeClass) => [blade];
    }
}
