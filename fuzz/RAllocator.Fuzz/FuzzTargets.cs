using System.Buffers.Binary;
using System.Security.Cryptography;
using RAllocator.Blade;
using RAllocator.Nvm;
using RAllocator.Protocol.Layout;

namespace RAllocator.Fuzz;

/// <summary>
/// Fuzz targets. Each takes arbitrary bytes and either returns normally (a typed error is a normal outcome) or
/// throws <see cref="FuzzFindingException"/> for a broken promise; any other exception is a finding too.
/// </summary>
public static partial class FuzzTargets
{
    /// <summary>All targets by name.</summary>
    public static IReadOnlyDictionary<string, Action<byte[]>> All { get; } = new Dictionary<string, Action<byte[]>>
    {
        ["image"] = OpenImage,
        ["areas"] = DrainNodeAreas,
        ["cli"] = RunCommandLine,
    };

    /// <summary>
    /// Arbitrary bytes as a blade image. A read-only open and scan either fail with <see cref="BladeImageException"/>
    /// or produce a view, and leave the bytes unchanged. Then recovery: a read-write open and
    /// <see cref="BladeAgent.Start"/> on a copy either fail with a typed error, leaving the copy's durable bytes
    /// exactly as they were, or succeed and leave a consistent image that opens again.
    /// </summary>
    public static void OpenImage(byte[] input)
    {
        // SimulatedNvm needs a whole number of 8-byte words.
        var image = new byte[(input.Length + 7) & ~7];
        input.CopyTo(image, 0);
        byte[] before = SHA256.HashData(image);
        using (var region = SimulatedNvm.FromDurableImage(image))
        {
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

        // Recovery on a copy: a read-write open replays the redo intent and writes a new incarnation, and the agent's
        // start repairs the ring and the sequencer. A refusal must come before any write.
        using var copy = SimulatedNvm.FromDurableImage((byte[])image.Clone());
        BladeImage opened;
        try
        {
            opened = BladeImage.Open(copy, BladeOpenMode.ReadWrite);
        }
        catch (BladeImageException)
        {
            RequireUnchanged(copy, before, "a read-write open that failed");
            return;
        }

        try
        {
            BladeAgent.Start(opened);
        }
        catch (BladeImageException)
        {
            // The agent refuses an inconsistent image before changing it (BladeAgent.Start's contract); the open
            // before it may have written its incarnation and replayed an intent, which is what recovery is.
            return;
        }

        var reopened = BladeImage.Open(copy, BladeOpenMode.ReadOnly);
        var recovered = reopened.Scan();
        if (!recovered.IsConsistent)
        {
            throw new FuzzFindingException($"recovery left an inconsistent image: {string.Join("; ", recovered.Problems)}");
        }
    }

    internal static void RequireUnchanged(SimulatedNvm region, byte[] hash, string what)
    {
        if (!SHA256.HashData(region.DurableImageCopy()).AsSpan().SequenceEqual(hash))
        {
            throw new FuzzFindingException($"{what} changed the image");
        }
    }
}

/// <summary>A fuzz target broke a promise (as opposed to rejecting bad input with a typed error).</summary>
public sealed class FuzzFindingException(string message) : Exception(message);
