using System.Collections.Concurrent;
using System.Security.Cryptography;

namespace RAllocator.Hosting.Tests;

/// <summary>A formatted image in a temporary directory and helpers to serve it in-process.</summary>
internal sealed class ServedImage : IDisposable
{
    public const ulong SlabSizeBytes = 64 * 1024;

    private readonly TempDirectory _directory = new();

    public ServedImage(int slabs = 64, uint maxNodes = 4, uint leaseTicks = 50_000)
    {
        ImagePath = _directory.File("blade.img");
        var options = new Protocol.Layout.BladeFormatOptions { MaxNodes = maxNodes, NodeLeaseTicks = leaseTicks };
        var length = (long)(SlabSizeBytes * (ulong)(slabs + 16));
        using (var region = MappedFileNvm.Create(ImagePath, length))
        {
            BladeImage.Format(region, SlabSizeBytes, options);
        }
    }

    public string ImagePath { get; }

    public AccessToken Token { get; } = AccessToken.FromText("correct horse battery staple");

    public ConcurrentQueue<string> Log { get; } = new();

    public string File(string name) => _directory.File(name);

    public BladeServer Start(System.Net.IPEndPoint? listen = null, bool fence = false, int maxObservers = 16) => BladeServer.Start(ImagePath, new BladeServerOptions
    {
        Listen = listen ?? new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0),
        Token = Token,
        FenceOnLeaseExpiry = fence,
        MaxObservers = maxObservers,
        Log = Log.Enqueue,
    });

    public static BladeEndpoint EndpointOf(BladeServer server) => new("127.0.0.1", server.LocalEndPoint.Port);

    public byte[] Hash() => SHA256.HashData(System.IO.File.ReadAllBytes(ImagePath));

    public void Dispose() => _directory.Dispose();
}
