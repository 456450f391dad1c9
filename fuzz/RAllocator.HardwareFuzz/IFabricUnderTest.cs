using RAllocator.Blade;
using RAllocator.Fabric;

namespace RAllocator.HardwareFuzz;

/// <summary>
/// What the hardware fuzzer needs from a fabric: one blade it can connect nodes to, crash and restart, and whose
/// image it can read for checking. Implement it once per fabric (loopback here; UCX and verbs adapters by the lead:
/// connect through <c>VerbsConnection.ConnectAsync</c>, restart by disposing and re-starting the
/// <c>VerbsBladeExporter</c> on the reopened image).
/// </summary>
public interface IFabricUnderTest : IAsyncDisposable
{
    /// <summary>A name for the report ("loopback", "ucx-tcp", "verbs mlx5_0").</summary>
    string Name { get; }

    /// <summary>Connects working node <paramref name="nodeId"/> with its own registrations.</summary>
    Task<IFabricConnection> ConnectAsync(uint nodeId, CancellationToken cancellationToken);

    /// <summary>
    /// Crashes the blade (power failure: stores not yet persisted may be lost, chosen by <paramref name="crashSeed"/>
    /// where the fabric can simulate it), recovers the image and starts a new agent. Every existing connection dies.
    /// </summary>
    Task RestartBladeAsync(int crashSeed, CancellationToken cancellationToken);

    /// <summary>Runs one blade-agent pass (refill the ring, apply acknowledgements, drain frees).</summary>
    void RunAgentPass();

    /// <summary>Scans the blade's image as it is now (every slab, node area and ring entry).</summary>
    BladeState ScanImage();
}
