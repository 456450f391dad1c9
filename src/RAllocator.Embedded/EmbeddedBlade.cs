using RAllocator.Blade;
using RAllocator.Fabric;
using RAllocator.Fabric.Loopback;
using RAllocator.Nvm;
using RAllocator.Protocol;
using RAllocator.Protocol.Layout;

namespace RAllocator.Embedded;

/// <summary>
/// A blade served in-process: its image on an NVM region, its agent, and a loopback fabric that working nodes
/// connect to with per-node registrations (each node may write only its own areas, the sequencer and slab data).
/// </summary>
public sealed class EmbeddedBlade
{
    private readonly LoopbackOptions _fabricOptions;
    private readonly List<LoopbackConnection> _connections = [];

    private EmbeddedBlade(int bladeId, INvmRegion region, BladeImage image, BladeAgent agent, LoopbackOptions fabricOptions)
    {
        BladeId = bladeId;
        Region = region;
        Image = image;
        Agent = agent;
        _fabricOptions = fabricOptions;
        Fabric = new LoopbackFabric(region, fabricOptions);
    }

    /// <summary>The blade's id in every node's blade list.</summary>
    public int BladeId { get; }

    /// <summary>The blade's NVM.</summary>
    public INvmRegion Region { get; }

    /// <summary>The blade's image.</summary>
    public BladeImage Image { get; private set; }

    /// <summary>The blade's agent.</summary>
    public BladeAgent Agent { get; private set; }

    /// <summary>The fabric nodes connect through (replaced when the blade restarts).</summary>
    public LoopbackFabric Fabric { get; private set; }

    /// <summary>Formats <paramref name="region"/> as a fresh blade and starts serving it.</summary>
    public static EmbeddedBlade Format(int bladeId, INvmRegion region, ulong slabSizeBytes, BladeFormatOptions? formatOptions = null, LoopbackOptions? fabricOptions = null, BladeAgentOptions? agentOptions = null)
    {
        BladeImage.Format(region, slabSizeBytes, formatOptions);
        return Open(bladeId, region, fabricOptions, agentOptions);
    }

    /// <summary>Opens (recovers) an existing blade image and starts serving it.</summary>
    /// <exception cref="BladeImageException">The image is not valid.</exception>
    public static EmbeddedBlade Open(int bladeId, INvmRegion region, LoopbackOptions? fabricOptions = null, BladeAgentOptions? agentOptions = null)
    {
        var image = BladeImage.Open(region, BladeOpenMode.ReadWrite);
        var agent = BladeAgent.Start(image, agentOptions);
        return new EmbeddedBlade(bladeId, region, image, agent, fabricOptions ?? new LoopbackOptions());
    }

    /// <summary>
    /// Restarts the blade on the same region (after <paramref name="crash"/> has been applied to it, e.g. a simulated
    /// power failure): every existing connection dies, the image is recovered and a new agent starts.
    /// </summary>
    public void Restart(Action<INvmRegion>? crash = null, BladeAgentOptions? agentOptions = null)
    {
        Fabric.SetReachable(false);
        lock (_connections)
        {
            _connections.Clear();
        }

        crash?.Invoke(Region);
        Image = BladeImage.Open(Region, BladeOpenMode.ReadWrite);
        Agent = BladeAgent.Start(Image, agentOptions);
        Fabric = new LoopbackFabric(Region, _fabricOptions);
    }

    /// <summary>Connects working node <paramref name="nodeId"/> with its own registrations.</summary>
    public LoopbackConnection Connect(uint nodeId)
    {
        var connection = Fabric.Connect(BladeId, AccessFor(nodeId), $"node {nodeId}");
        lock (_connections)
        {
            _connections.Add(connection);
        }

        return connection;
    }

    /// <summary>
    /// What node <paramref name="nodeId"/> may write (<see cref="NodeRegistrations.For"/>).
    /// </summary>
    public FabricAccess AccessFor(uint nodeId) => NodeRegistrations.For(Image.Geometry, Image.Layout, nodeId);

    /// <summary>Runs agent passes until cancelled.</summary>
    public Task RunAgentAsync(CancellationToken cancellationToken) => Agent.RunAsync(cancellationToken);
}
