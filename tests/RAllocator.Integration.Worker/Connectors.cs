using RAllocator.Hosting;

internal static class Connectors
{
    public static IFabricConnector For(string fabric) => fabric switch
    {
        "shm" => new SharedMemoryConnector(),
        _ => throw new ArgumentException($"worker: fabric '{fabric}' is not built into this worker"),
    };
}
