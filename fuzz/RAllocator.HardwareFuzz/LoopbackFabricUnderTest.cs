using RAllocator.Blade;
using RAllocator.Embedded;
using RAllocator.Fabric;
using RAllocator.Nvm;
using RAllocator.Protocol.Layout;

namespace RAllocator.HardwareFuzz;

/// <summary>
/// The in-process fabric: an <see cref="EmbeddedBlade"/> on a <see cref="SimulatedNvm"/>. Fault model: a blade restart
/// is a power failure that keeps each not-yet-persisted store with probability 1/2 (<see cref="SimulatedNvm.Crash(int)"/>);
/// a node crash is the driver abandoning the node's state. No partitions, no torn 8-byte words.
/// </summary>
public sealed class LoopbackFabricUnderTest : IFabricUnderTest
{
    /// <summary>Blade geometry small enough to exhaust: 60-odd 64 KiB slabs, four nodes.</summary>
    public const long RegionBytes = 4 << 20;

    /// <summary>Slab size.</summary>
    public const ulong SlabBytes = 64 << 10;

    private readonly SimulatedNvm _nvm;
    private readonly EmbeddedBlade _blade;

    /// <summary>Formats a fresh blade. Leases are effectively infinite: the driver, not a lease, decides when a node dies.</summary>
    public LoopbackFabricUnderTest()
    {
        _nvm = new SimulatedNvm(RegionBytes);
        _blade = EmbeddedBlade.Format(0, _nvm, SlabBytes, new BladeFormatOptions { MaxNodes = 4, AckSlotsPerNode = 8, FreeSlotsPerNode = 8, NodeLeaseTicks = 1_000_000_000 });
    }

    /// <inheritdoc />
    public string Name => "loopback (SimulatedNvm, power-failure crashes)";

    /// <inheritdoc />
    public Task<IFabricConnection> ConnectAsync(uint nodeId, CancellationToken cancellationToken) =>
        Task.FromResult<IFabricConnection>(_blade.Connect(nodeId));

    /// <inheritdoc />
    public Task RestartBladeAsync(int crashSeed, CancellationToken cancellationToken)
    {
        _blade.Restart(region => ((SimulatedNvm)region).Crash(crashSeed));
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public void RunAgentPass() => _blade.Agent.RunOnce();

    /// <inheritdoc />
    public BladeState ScanImage() => _blade.Image.Scan();

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        _nvm.Dispose();
        return ValueTask.CompletedTask;
    }
}
