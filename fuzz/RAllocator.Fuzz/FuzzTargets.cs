using System.Security.Cryptography;
using RAllocator.Blade;
using RAllocator.Nvm;
using RAllocator.Protocol.Layout;

namespace RAllocator.Fuzz;

/// <summary>
/// Fuzz targets. Each takes arbitrary bytes and either returns normally (a typed error is a normal outcome) or
/// throws <see cref="FuzzFindingException"/> for a broken promise; any other exception is a finding too.
/// </summary>
public static class FuzzTargets
{
    /// <summary>All targets by name.</summary>
    public static IReadOnlyDictionary<string, Action<byte[]>> All { get; } = new Dictionary<string, Action<byte[]>>
    {
        ["image"] = OpenImage,
    };

    /// <summary>
    /// Arbitrary bytes as a blade image: a read-only open and scan either fail with <see cref="BladeImageException"/>
    /// or produce a view; the bytes are never modified.
    /// </summary>
    public static void OpenImage(byte[] input)
    {
        // SimulatedNvm needs a whole number of 8-byte words.
        var image = new byte[(input.Length + 7) & ~7];
        input.CopyTo(image, 0);
        byte[] before = SHA256.HashData(image);
        using var region = SimulatedNvm.FromDurableImage(image);
        try
        {
            var blade = BladeImage.Open(region, BladeOpenMode.ReadOnly);
            var state = blade.Scan();
            if (state.Slabs.Count != (int)blade.Geometry.SlabCount)
            {
                throw new FuzzFindingException($"scan returned {state.Slabs.Count} slabs for a geometry of {blade.Geometry.SlabCount}");
            }
        }
        catch (BladeImageException)
        {
            // The typed error is the promised outcome for a bad image.
        }

        if (!SHA256.HashData(region.DurableImageCopy()).AsSpan().SequenceEqual(before))
        {
            throw new FuzzFindingException("a read-only open changed the image");
        }
    }
}

/// <summary>A fuzz target broke a promise (as opposed to rejecting bad input with a typed error).</summary>
public sealed class FuzzFindingException(string message) : Exception(message);
