using RAllocator.Embedded;
using RAllocator.Nvm;
using RAllocator.Protocol.Layout;

namespace RAllocator.Benchmarks.Workloads;

/// <summary>
/// A blade served in-process, as the benchmarks use it: a sparse temporary file mapped with
/// <see cref="MappedFileNvm"/> (libpmem when present; on a machine without real persistent memory every persist
/// is an msync of the page cache), formatted, behind the loopback fabric. Disposing unmaps and deletes the file.
/// </summary>
internal sealed class BenchBlade : IDisposable
{
    /// <summary>The slab size every benchmark formats with, unless it says otherwise.</summary>
    public const ulong DefaultSlabSizeBytes = 1 << 20;

    private BenchBlade(string path, MappedFileNvm region, EmbeddedBlade blade)
    {
        Path = path;
        Region = region;
        Blade = blade;
    }

    /// <summary>The blade file (deleted on dispose).</summary>
    public string Path { get; }

    /// <summary>The mapped region.</summary>
    public MappedFileNvm Region { get; }

    /// <summary>The served blade (image, agent, loopback fabric).</summary>
    public EmbeddedBlade Blade { get; }

    /// <summary>Creates a sparse file of <paramref name="regionBytes"/> in the temp directory and formats it.</summary>
    public static BenchBlade Create(long regionBytes, ulong slabSizeBytes = DefaultSlabSizeBytes, BladeFormatOptions? options = null)
    {
        string path = NewTempPath("blade");
        var region = MappedFileNvm.Create(path, regionBytes);
        try
        {
            var blade = EmbeddedBlade.Format(0, region, slabSizeBytes, options);
            return new BenchBlade(path, region, blade);
        }
        catch
        {
            region.Dispose();
            File.Delete(path);
            throw;
        }
    }

    /// <summary>A fresh path for a benchmark file in <c>$TMPDIR/rallocator-bench</c>.</summary>
    public static string NewTempPath(string kind)
    {
        string directory = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "rallocator-bench");
        Directory.CreateDirectory(directory);
        return System.IO.Path.Combine(directory, $"{kind}-{Environment.ProcessId}-{Guid.NewGuid():N}.nvm");
    }

    public void Dispose()
    {
        Region.Dispose();
        File.Delete(Path);
    }
}
