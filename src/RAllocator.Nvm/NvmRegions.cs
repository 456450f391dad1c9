namespace RAllocator.Nvm;

/// <summary>Entry points for opening NVM regions.</summary>
public static class NvmRegions
{
    /// <summary>True when libpmem (libpmem.so.1) loads in this process.</summary>
    public static bool IsLibpmemAvailable => Interop.Pmem.IsAvailable;

    /// <summary>Why libpmem cannot be used, with the install hint; null when it can.</summary>
    public static string? LibpmemUnavailableReason => Interop.Pmem.UnavailableReason;

    /// <summary>
    /// Opens the region file at <paramref name="path"/> read-write, or creates it as a sparse file of
    /// <paramref name="lengthBytes"/> bytes when it does not exist. An existing file of another length is an
    /// error rather than being resized: its image belongs to a differently configured blade.
    /// </summary>
    /// <param name="path">The region file.</param>
    /// <param name="lengthBytes">The expected (or new) length in bytes.</param>
    /// <param name="created">True when the file was created (so it holds zeroes and needs formatting).</param>
    public static MappedFileNvm OpenOrCreate(string path, long lengthBytes, out bool created)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(lengthBytes);
        string fullPath = Path.GetFullPath(path);
        if (!File.Exists(fullPath))
        {
            try
            {
                created = true;
                return MappedFileNvm.Create(fullPath, lengthBytes);
            }
            catch (NvmFileExistsException)
            {
                // Another process created it between the check and the create: open theirs.
            }
        }

        created = false;
        var region = MappedFileNvm.Open(fullPath);
        if (region.Length != lengthBytes)
        {
            long actual = region.Length;
            region.Dispose();
            throw new IOException(
                $"NVM file '{fullPath}' holds {actual} bytes, but {lengthBytes} were requested; refusing to resize an existing image.");
        }

        return region;
    }

    /// <summary>Persists the whole region: every store so far becomes durable.</summary>
    public static void PersistAll(this INvmRegion region)
    {
        ArgumentNullException.ThrowIfNull(region);
        region.Persist(0, region.Length);
    }
}
