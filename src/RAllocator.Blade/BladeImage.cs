using RAllocator.Nvm;
using RAllocator.Protocol.Layout;

namespace RAllocator.Blade;

/// <summary>
/// A formatted blade image on an NVM region: its geometry, its layout, the current superblock, and the
/// crash-consistent updates of its bitmap, ownership table and superblock.
/// </summary>
/// <remarks>
/// Only one process may open an image read-write (the blade server); readers such as <c>inspect</c> and
/// <c>check</c> open it with <see cref="BladeOpenMode.ReadOnly"/>, which writes nothing, not even a replay.
/// </remarks>
public sealed partial class BladeImage
{
    private SuperblockChoice _superblock;

    private BladeImage(INvmRegion region, SuperblockChoice superblock, BladeOpenMode mode)
    {
        Region = region;
        _superblock = superblock;
        Mode = mode;
        Geometry = SuperblockCodec.GeometryOf(superblock.Superblock);
        Layout = Geometry.Layout;
    }

    /// <summary>The NVM region holding the image.</summary>
    public INvmRegion Region { get; }

    /// <summary>How the image was opened.</summary>
    public BladeOpenMode Mode { get; }

    /// <summary>The geometry recorded in the superblock.</summary>
    public BladeGeometry Geometry { get; }

    /// <summary>Where every region lives.</summary>
    public BladeLayout Layout { get; }

    /// <summary>The current superblock.</summary>
    public Superblock Superblock => _superblock.Superblock;

    /// <summary>Which superblock copy is current.</summary>
    public SuperblockCopy CurrentSuperblockCopy => _superblock.Copy;

    /// <summary>
    /// Lays out a fresh image over the whole region. Any image already there is destroyed: its superblocks are
    /// invalidated first, so a crash during format leaves no image, the complete new one, or (before the first
    /// persist) the old one untouched; never a mix.
    /// </summary>
    /// <exception cref="BladeGeometryException">The parameters cannot make a valid image for this region.</exception>
    public static BladeImage Format(INvmRegion region, ulong slabSizeBytes, BladeFormatOptions? options = null, ulong? bladeUid = null)
    {
        ArgumentNullException.ThrowIfNull(region);
        var geometry = BladeGeometry.ForRegion((ulong)region.Length, slabSizeBytes, options);
        var layout = geometry.Layout;

        // 1. Invalidate both superblocks, so no later crash can pair an old superblock with new metadata. The older
        //    copy goes first, in its own persist: a crash between the two persists then leaves the old image at its
        //    current superblock, never rolled back to the older copy (whose incarnation the next open would reuse).
        var (olderCopyOffset, currentCopyOffset) = SuperblockOffsetsOlderFirst(region);
        ZeroRange(region, olderCopyOffset, Superblock.SizeBytes);
        region.Persist(olderCopyOffset, Superblock.SizeBytes);
        ZeroRange(region, currentCopyOffset, Superblock.SizeBytes);
        region.Persist(currentCopyOffset, Superblock.SizeBytes);

        // 2. Zero all other metadata (a fresh sparse file already reads as zeros; a reformat must clear it).
        long metadataStart = BladeLayout.SuperblockBOffset + BladeLayout.SuperblockBReserveBytes;
        ZeroRange(region, metadataStart, geometry.DataOffset - metadataStart);
        layout.Control(region).StoreGlobalEpoch(1);
        foreach (var ring in geometry.Rings.All.Skip(1))
        {
            // Each span ring counts its tickets in its own space (SlabRings), so they never meet another ring's.
            region.StoreUInt64(ring.SequencerOffset, ring.FirstTicket);
            region.StoreUInt64(ring.FillMarkOffset, ring.FirstTicket);
        }

        region.Persist(metadataStart, geometry.DataOffset - metadataStart);

        // 3. The superblock is the commit point of a format.
        ulong uid = bladeUid ?? (ulong)Random.Shared.NextInt64(1, long.MaxValue);
        var superblock = SuperblockCodec.Create(geometry, generation: 1, bladeIncarnation: 0, uid, SuperblockFlags.CleanShutdown);
        var view = layout.SuperblockA(region);
        view.Store(superblock);
        view.Persist();
        return new BladeImage(region, new SuperblockChoice(superblock, SuperblockCopy.A, false), BladeOpenMode.ReadWrite);
    }

    /// <summary>
    /// Opens an image: validates the superblocks and geometry. In <see cref="BladeOpenMode.ReadWrite"/> it also
    /// replays an interrupted metadata update and records a new blade incarnation.
    /// </summary>
    /// <exception cref="BladeImageException">The image is not valid; the error names why. Nothing was written.</exception>
    public static BladeImage Open(INvmRegion region, BladeOpenMode mode = BladeOpenMode.ReadWrite)
    {
        ArgumentNullException.ThrowIfNull(region);
        if (region.Length < BladeLayout.FixedRegionsEndOffset)
        {
            throw new BladeImageException(BladeImageError.RegionTooSmall,
                $"the region is {region.Length} bytes, smaller than the {BladeLayout.FixedRegionsEndOffset} bytes of fixed metadata; it is not a blade image.");
        }

        var copyA = Superblock.Read(region, BladeLayout.SuperblockAOffset);
        var copyB = Superblock.Read(region, BladeLayout.SuperblockBOffset);
        var choice = SuperblockCodec.Choose(copyA, copyB, region.Length);
        var image = new BladeImage(region, choice, mode);
        if (mode == BladeOpenMode.ReadWrite)
        {
            image.ReplayIntent();
            image.UpdateSuperblock(sb =>
            {
                sb.BladeIncarnation++;
                sb.Flags &= ~(uint)SuperblockFlags.CleanShutdown;
                return sb;
            });
        }

        return image;
    }

    /// <summary>Marks the image cleanly closed (the blade server calls this at shutdown).</summary>
    public void MarkCleanShutdown() => UpdateSuperblock(sb =>
    {
        sb.Flags |= (uint)SuperblockFlags.CleanShutdown;
        return sb;
    });

    /// <summary>
    /// Updates the superblock crash-consistently: the change is written, with the next generation and a fresh
    /// checksum, over the copy that is not current, then persisted. A crash at any point leaves the current copy
    /// valid; a torn new copy fails its checksum and is ignored.
    /// </summary>
    /// <exception cref="ArgumentException">The change would make a superblock that no open accepts; nothing was written.</exception>
    public void UpdateSuperblock(Func<Superblock, Superblock> change)
    {
        ThrowIfReadOnly();
        var next = change(_superblock.Superblock);
        next.Generation = _superblock.Superblock.Generation + 1;
        next = SuperblockCodec.WithChecksum(next);

        // Paired assertion: never write a copy the next open would reject. It would be ignored there (the image
        // silently rolls back to the older copy), and the update after it would overwrite the last valid copy.
        if (SuperblockCodec.Diagnose(next, Region.Length) is { } problem)
        {
            throw new ArgumentException($"The superblock change is invalid ({problem.Error}): {problem.Reason}. Nothing was written.", nameof(change));
        }

        var target = _superblock.NextCopyToWrite;
        var view = target == SuperblockCopy.A ? Layout.SuperblockA(Region) : Layout.SuperblockB(Region);
        view.Store(next);
        if (!Faults.SkipSuperblockPersist)
        {
            view.Persist();
        }

        _superblock = new SuperblockChoice(next, target, true);
    }

    /// <summary>Byte offset of base slab <paramref name="slabIndex"/>.</summary>
    public long SlabOffset(ulong slabIndex)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(slabIndex, Geometry.SlabCount);
        return Geometry.SlabOffset(slabIndex);
    }

    private void ThrowIfReadOnly()
    {
        if (Mode == BladeOpenMode.ReadOnly)
        {
            throw new InvalidOperationException("This blade image was opened read-only (inspect/check); it cannot be changed.");
        }
    }

    /// <summary>The superblock copies of the image already in <paramref name="region"/>, its non-current copy first.</summary>
    private static (long Older, long Current) SuperblockOffsetsOlderFirst(INvmRegion region)
    {
        try
        {
            var choice = SuperblockCodec.Choose(
                Superblock.Read(region, BladeLayout.SuperblockAOffset), Superblock.Read(region, BladeLayout.SuperblockBOffset), region.Length);
            if (choice.Copy == SuperblockCopy.B)
            {
                return (BladeLayout.SuperblockAOffset, BladeLayout.SuperblockBOffset);
            }
        }
        catch (BladeImageException)
        {
            // No valid image here: nothing can be rolled back, either order will do.
        }

        return (BladeLayout.SuperblockBOffset, BladeLayout.SuperblockAOffset);
    }

    private static void ZeroRange(INvmRegion region, long offset, long length)
    {
        Span<byte> zeros = stackalloc byte[4096];
        zeros.Clear();
        while (length > 0)
        {
            int chunk = (int)Math.Min(length, zeros.Length);
            region.Write(offset, zeros[..chunk]);
            offset += chunk;
            length -= chunk;
        }
    }
}

/// <summary>How to open a blade image.</summary>
public enum BladeOpenMode
{
    /// <summary>The blade server: replays interrupted updates and records a new incarnation.</summary>
    ReadWrite,

    /// <summary>Inspection: nothing is written; a pending update is applied only to the in-memory view.</summary>
    ReadOnly,
}
