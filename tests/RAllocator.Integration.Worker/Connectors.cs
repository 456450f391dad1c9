using RAllocator.Fabric.Ucx;
using RAllocator.Hosting;

internal static class Connectors
{
    /// <summary>shm, or ucx with its transports after a colon (ucx:tcp, ucx:sm).</summary>
    public static IFabricConnector For(string fabric) => fabric.Split(':') switch
    {
        ["shm"] => new SharedMemoryConnector(),
        ["ucx"] => new UcxConnector(),
        ["ucx", var transports] => new UcxConnector(new UcxOptions { Transports = transports }),
        _ => throw new ArgumentException($"worker: fabric '{fabric}' is not shm, ucx or ucx:TRANSPORTS"),
    };
}
