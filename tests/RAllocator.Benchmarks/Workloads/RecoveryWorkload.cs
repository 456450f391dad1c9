using System.Runtime.InteropServices;
using RAllocator.Blade;
using RAllocator.Nvm;
using RAllocator.Protocol.Layout;

namespace RAllocator.Benchmarks.Workloads;

/// <summary>
/// Opening a blade image after a restart: a formatted sparse file of a given size is mapped, its superblocks are
/// validated and its metadata scanned (<see cref="BladeImage.Open"/> + <see cref="BladeImage.Scan"/>). The work is
/// proportional to the metadata, never to the data area, which is what this workload shows across region sizes.
/// </summary>
internal sealed partial class RecoveryWorkload : IDisposable
{
    /// <summary>Slab size of every recovery image (1 MiB).</summary>
    public const ulong SlabSizeBytes = 1 << 20;

    private RecoveryWorkload(string path, long regionBytes, BladeGeometry geometry)
    {
        Path = path;
        RegionBytes = regionBytes;
        Geometry = geometry;
    }

    /// <summary>The image file (sparse; deleted on dispose).</summary>
    public string Path { get; }

    /// <summary>Region size in bytes.</summary>
    public long RegionBytes { get; }

    /// <summary>The image's geometry.</summary>
    public BladeGeometry Geometry { get; }

    /// <summary>Bytes before the data area: superblocks, fixed blocks, ring, bitmap, tables and node areas.</summary>
    public long MetadataBytes => Geometry.MetadataBytes;

    /// <summary>Bytes of the arrays <see cref="BladeImage.Scan"/> reads in bulk (plus a few fixed blocks of 64 bytes).</summary>
    public long ScannedArrayBytes => ScannedArrayBytesOf(Geometry);

    /// <summary>Blocks the sparse file really occupies on disk, in bytes.</summary>
    public long AllocatedBytesOnDisk => AllocatedBytes(Path);

    /// <summary>
    /// Creates a sparse file of <paramref name="regionBytes"/> and formats it with 1 MiB slabs (default format
    /// options: 16 nodes, 64 acknowledgement and free slots each, ring of min(slabs, 1024)).
    /// </summary>
    public static RecoveryWorkload Create(long regionBytes)
    {
        string path = BenchBlade.NewTempPath($"recovery-{regionBytes >> 30}g");
        try
        {
            BladeGeometry geometry;
            using (var region = MappedFileNvm.Create(path, regionBytes))
            {
                geometry = BladeImage.Format(region, SlabSizeBytes).Geometry;
            }

            return new RecoveryWorkload(path, regionBytes, geometry);
        }
        catch
        {
            File.Delete(path);
            throw;
        }
    }

    /// <summary>The geometry a region of <paramref name="regionBytes"/> gets (no file needed).</summary>
    public static BladeGeometry GeometryFor(long regionBytes) => BladeGeometry.ForRegion((ulong)regionBytes, SlabSizeBytes);

    /// <summary>Bytes of the arrays <see cref="BladeImage.Scan"/> reads for <paramref name="geometry"/>.</summary>
    public static long ScannedArrayBytesOf(BladeGeometry geometry)
    {
        var layout = geometry.Layout;
        return layout.RingLengthBytes + layout.BitmapLengthBytes + layout.OwnershipLengthBytes + layout.WearLengthBytes
            + layout.NodeHeadersLengthBytes + layout.AckSlotsLengthBytes + layout.FreeSlotsLengthBytes;
    }

    /// <summary>What <c>inspect</c> does: map read-only, validate superblocks and geometry, scan all metadata.</summary>
    public BladeState OpenReadOnlyAndScan()
    {
        using var region = MappedFileNvm.Open(Path, NvmAccess.ReadOnly);
        var image = BladeImage.Open(region, BladeOpenMode.ReadOnly);
        return image.Scan();
    }

    /// <summary>The three steps of <see cref="OpenReadOnlyAndScan"/> timed apart (map + unmap, image open, scan), in ns.</summary>
    public (double MapNs, double ImageOpenNs, double ScanNs, double UnmapNs) OpenReadOnlyAndScanPhases()
    {
        long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
        var region = MappedFileNvm.Open(Path, NvmAccess.ReadOnly);
        long t1 = System.Diagnostics.Stopwatch.GetTimestamp();
        var image = BladeImage.Open(region, BladeOpenMode.ReadOnly);
        long t2 = System.Diagnostics.Stopwatch.GetTimestamp();
        GC.KeepAlive(image.Scan());
        long t3 = System.Diagnostics.Stopwatch.GetTimestamp();
        region.Dispose();
        long t4 = System.Diagnostics.Stopwatch.GetTimestamp();
        double ns = 1e9 / System.Diagnostics.Stopwatch.Frequency;
        return ((t1 - t0) * ns, (t2 - t1) * ns, (t3 - t2) * ns, (t4 - t3) * ns);
    }

    /// <summary>
    /// What a blade server does on restart: map read-write, open (replay, new incarnation: one superblock persist)
    /// and start the agent (scan, consistency check, void in-flight acquisitions, clear the ring).
    /// </summary>
    public long RestartBladeServer()
    {
        using var region = MappedFileNvm.Open(Path, NvmAccess.ReadWrite);
        var image = BladeImage.Open(region, BladeOpenMode.ReadWrite);
        var agent = BladeAgent.Start(image);
        return agent.FreeSlabCount;
    }

    /// <summary>
    /// Drops the file's pages from the page cache (posix_fadvise DONTNEED; needs no privilege), so that the next
    /// open reads metadata from the device, as after a reboot. Returns false where that is not supported.
    /// </summary>
    public bool DropPageCache()
    {
        if (!OperatingSystem.IsLinux())
        {
            return false;
        }

        using var handle = File.OpenHandle(Path, FileMode.Open, FileAccess.Read);
        return Interop.posix_fadvise((int)handle.DangerousGetHandle(), 0, 0, Interop.POSIX_FADV_DONTNEED) == 0;
    }

    public void Dispose() => File.Delete(Path);

    private static long AllocatedBytes(string path)
    {
        if (!OperatingSystem.IsLinux())
        {
            return -1;
        }

        // st_blocks is in 512-byte units; `du --block-size=1` would say the same.
        var info = new FileInfo(path);
        return Interop.BlocksOf(info.FullName) * 512;
    }

    private static partial class Interop
    {
        public const int POSIX_FADV_DONTNEED = 4;

        [LibraryImport("libc", SetLastError = true)]
        public static partial int posix_fadvise(int fd, long offset, long len, int advice);

        /// <summary>st_blocks through <c>stat --format=%b</c>: struct stat's layout is libc- and ABI-specific.</summary>
        public static long BlocksOf(string path)
        {
            using var process = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("stat", ["--format=%b", path])
            {
                RedirectStandardOutput = true,
                UseShellExecute = false,
            })!;
            string output = process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            return long.TryParse(output.Trim(), out long blocks) ? blocks : -1;
        }
    }
}
