using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace RAllocator.Nvm;

/// <summary>
/// An <see cref="INvmRegion"/> over a memory-mapped file: the blade's NVM image on disk or on a DAX file
/// system.
/// </summary>
/// <remarks>
/// <para>Backends, chosen at <see cref="Open(string, NvmAccess)"/>:</para>
/// <list type="bullet">
/// <item><description><c>libpmem</c>: the file is mapped with <c>pmem_map_file</c>. When <c>pmem_is_pmem</c>
/// reports real persistent memory, <see cref="Persist"/> is <c>pmem_persist</c> (cache-line flushes plus a
/// fence, no system call) and the domain is <see cref="NvmPersistenceDomain.PersistentMemory"/>. Otherwise
/// the mapping is the page cache, where flushing cache lines reaches only DRAM, so <see cref="Persist"/> is
/// <c>pmem_msync</c> and the domain is <see cref="NvmPersistenceDomain.MappedFileMsync"/>.</description></item>
/// <item><description><c>mmap+msync</c>: libpmem is absent, the mapping is read-only, or
/// <c>RALLOCATOR_NVM_BACKEND=msync</c> forces it; <c>mmap(MAP_SHARED)</c> and <c>msync(MS_SYNC)</c>.
/// <see cref="FallbackReason"/> says why.</description></item>
/// </list>
/// <para>Every member may be called from many threads at once. Each access holds a reference on the mapping
/// (as <see cref="System.IO.MemoryMappedFiles.MemoryMappedViewAccessor"/> does), so a <see cref="Dispose"/>
/// racing with an access unmaps only after that access finishes and can never turn into a segmentation
/// fault; accesses that start after <see cref="Dispose"/> throw <see cref="ObjectDisposedException"/>.</para>
/// <para><see cref="Dispose"/> unmaps without persisting: stores not covered by a <see cref="Persist"/> are not
/// guaranteed durable.</para>
/// </remarks>
public sealed unsafe class MappedFileNvm : INvmRegion
{
    /// <summary>
    /// The environment variable that chooses the backend: <c>auto</c> (default), <c>libpmem</c> (fail if it
    /// is missing) or <c>msync</c> (force mmap + msync even when libpmem is present).
    /// </summary>
    public const string BackendEnvironmentVariable = "RALLOCATOR_NVM_BACKEND";

    /// <summary>The <see cref="Backend"/> name of the libpmem backend.</summary>
    public const string LibpmemBackend = "libpmem";

    /// <summary>The <see cref="Backend"/> name of the mmap + msync backend.</summary>
    public const string MsyncBackend = "mmap+msync";

    private readonly MappingHandle _mapping;

    // The mapping's base address. Page-aligned (mmap and pmem_map_file both return page-aligned addresses),
    // so an 8-byte-aligned offset is an 8-byte-aligned address, which is what makes the word accesses atomic.
    private readonly byte* _base;

    // How Persist reaches durability; fixed at open so the hot path is one switch on a readonly field.
    private readonly PersistMethod _persistMethod;

    private MappedFileNvm(
        string path,
        NvmAccess access,
        MappingHandle mapping,
        long length,
        PersistMethod persistMethod,
        string? fallbackReason)
    {
        Path = path;
        Access = access;
        _mapping = mapping;
        _base = (byte*)mapping.DangerousGetHandle();
        Length = length;
        _persistMethod = persistMethod;
        FallbackReason = fallbackReason;
    }

    private enum PersistMethod
    {
        None,
        PmemPersist,
        PmemMsync,
        Msync,
    }

    /// <summary>The full path of the mapped file.</summary>
    public string Path { get; }

    /// <summary>Whether the file is mapped read-only or read-write.</summary>
    public NvmAccess Access { get; }

    /// <summary>
    /// The mapping backend: <see cref="LibpmemBackend"/> (<c>"libpmem"</c>) or <see cref="MsyncBackend"/>
    /// (<c>"mmap+msync"</c>).
    /// </summary>
    public string Backend => FallbackReason is null ? LibpmemBackend : MsyncBackend;

    /// <summary>Why the region does not use libpmem, with what to do about it; null when it does.</summary>
    public string? FallbackReason { get; }

    /// <inheritdoc />
    public long Length { get; }

    /// <inheritdoc />
    public NvmPersistenceDomain PersistenceDomain =>
        _persistMethod == PersistMethod.PmemPersist ? NvmPersistenceDomain.PersistentMemory : NvmPersistenceDomain.MappedFileMsync;

    /// <inheritdoc />
    public string Description =>
        $"{Backend} '{Path}' ({Length} bytes, {(Access == NvmAccess.ReadOnly ? "read-only" : "read-write")}, {PersistenceDomain})"
        + (FallbackReason is null ? string.Empty : $": {FallbackReason}");

    /// <summary>
    /// Creates a new sparse file of <paramref name="lengthBytes"/> zero bytes and maps it read-write. Sparse:
    /// no block is allocated until written, so an 8 GiB region is created instantly.
    /// </summary>
    /// <exception cref="NvmFileExistsException">The path already exists.</exception>
    public static MappedFileNvm Create(string path, long lengthBytes) => Create(path, lengthBytes, BackendRequestFromEnvironment());

    /// <summary>
    /// Maps the whole of an existing file. <see cref="NvmAccess.ReadOnly"/> maps it <c>PROT_READ</c>, so the
    /// image cannot be modified through this region.
    /// </summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    public static MappedFileNvm Open(string path, NvmAccess access = NvmAccess.ReadWrite) =>
        Open(path, access, BackendRequestFromEnvironment());

    /// <summary><see cref="Create(string, long)"/> with an explicit backend request, for tests.</summary>
    internal static MappedFileNvm Create(string path, long lengthBytes, NvmBackendRequest request)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(lengthBytes);
        string fullPath = System.IO.Path.GetFullPath(path);

        FileStream stream;
        try
        {
            stream = new FileStream(fullPath, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e) when (File.Exists(fullPath) || Directory.Exists(fullPath))
        {
            throw new NvmFileExistsException(fullPath, e);
        }

        try
        {
            // SetLength is ftruncate on Unix: it extends the file with a hole, allocating no blocks.
            using (stream)
            {
                stream.SetLength(lengthBytes);
            }

            return Open(fullPath, NvmAccess.ReadWrite, request);
        }
        catch
        {
            // Create is all or nothing: a half-made file would make the retry fail with "already exists".
            File.Delete(fullPath);
            throw;
        }
    }

    /// <summary><see cref="Open(string, NvmAccess)"/> with an explicit backend request, for tests.</summary>
    internal static MappedFileNvm Open(string path, NvmAccess access, NvmBackendRequest request)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (access is not (NvmAccess.ReadOnly or NvmAccess.ReadWrite))
        {
            throw new ArgumentOutOfRangeException(nameof(access), access, "Unknown NvmAccess.");
        }

        string fullPath = System.IO.Path.GetFullPath(path);
        if (!File.Exists(fullPath))
        {
            throw new FileNotFoundException($"NVM file '{fullPath}' does not exist. Create it with MappedFileNvm.Create.", fullPath);
        }

        if (request == NvmBackendRequest.Libpmem && !Interop.Pmem.IsAvailable)
        {
            throw new InvalidOperationException(
                $"{BackendEnvironmentVariable}=libpmem requires libpmem, but {Interop.Pmem.UnavailableReason}");
        }

        string? fallbackReason =
            access == NvmAccess.ReadOnly
                ? "read-only mapping: pmem_map_file always maps read-write, so mmap(PROT_READ) is used"
                : request == NvmBackendRequest.Msync
                    ? $"{BackendEnvironmentVariable}=msync forces mmap + msync"
                    : Interop.Pmem.UnavailableReason;

        return fallbackReason is null
            ? OpenWithLibpmem(fullPath)
            : OpenWithMmap(fullPath, access, fallbackReason);
    }

    /// <summary>Reads <see cref="BackendEnvironmentVariable"/>.</summary>
    internal static NvmBackendRequest BackendRequestFromEnvironment()
    {
        string? value = Environment.GetEnvironmentVariable(BackendEnvironmentVariable);
        return value?.Trim().ToLowerInvariant() switch
        {
            null or "" or "auto" => NvmBackendRequest.Auto,
            "libpmem" => NvmBackendRequest.Libpmem,
            "msync" or "mmap+msync" => NvmBackendRequest.Msync,
            _ => throw new InvalidOperationException(
                $"{BackendEnvironmentVariable}='{value}' is not one of: auto, libpmem, msync."),
        };
    }

    private static MappedFileNvm OpenWithLibpmem(string fullPath)
    {
        void* address = Interop.Pmem.MapExistingFile(fullPath, out nuint mappedLength, out _, out string? error);
        if (address == null)
        {
            throw new IOException($"libpmem could not map NVM file '{fullPath}': {error}");
        }

        var mapping = new MappingHandle(address, mappedLength, viaLibpmem: true);
        if (mappedLength == 0)
        {
            mapping.Dispose();
            throw new IOException($"NVM file '{fullPath}' is empty; a region needs at least one byte.");
        }

        // pmem_is_pmem decides durability: user-space flushes are durable only on real persistent memory.
        // On a page-cache mapping pmem_persist stops at DRAM, so that case must msync.
        bool isPmem = Interop.Pmem.pmem_is_pmem(address, mappedLength) != 0;
        return new MappedFileNvm(
            fullPath,
            NvmAccess.ReadWrite,
            mapping,
            checked((long)mappedLength),
            isPmem ? PersistMethod.PmemPersist : PersistMethod.PmemMsync,
            fallbackReason: null);
    }

    private static MappedFileNvm OpenWithMmap(string fullPath, NvmAccess access, string fallbackReason)
    {
        bool readOnly = access == NvmAccess.ReadOnly;
        int fd = Interop.Libc.open(fullPath, (readOnly ? Interop.Libc.O_RDONLY : Interop.Libc.O_RDWR) | Interop.Libc.O_CLOEXEC, 0);
        if (fd < 0)
        {
            throw ErrnoException(Marshal.GetLastPInvokeError(), $"open NVM file '{fullPath}'", fullPath);
        }

        try
        {
            long length = Interop.Libc.lseek(fd, 0, Interop.Libc.SEEK_END);
            if (length < 0)
            {
                throw ErrnoException(Marshal.GetLastPInvokeError(), $"find the length of NVM file '{fullPath}'", fullPath);
            }

            if (length == 0)
            {
                throw new IOException($"NVM file '{fullPath}' is empty; a region needs at least one byte.");
            }

            int prot = readOnly ? Interop.Libc.PROT_READ : Interop.Libc.PROT_READ | Interop.Libc.PROT_WRITE;
            void* address = Interop.Libc.mmap(null, (nuint)length, prot, Interop.Libc.MAP_SHARED, fd, 0);
            if (address == Interop.Libc.MAP_FAILED)
            {
                throw ErrnoException(Marshal.GetLastPInvokeError(), $"mmap NVM file '{fullPath}' ({length} bytes)", fullPath);
            }

            return new MappedFileNvm(
                fullPath,
                access,
                new MappingHandle(address, (nuint)length, viaLibpmem: false),
                length,
                readOnly ? PersistMethod.None : PersistMethod.Msync,
                fallbackReason);
        }
        finally
        {
            // The mapping keeps its own reference to the file; the descriptor is not needed any more.
            Interop.Libc.close(fd);
        }
    }

    /// <inheritdoc />
    public ulong LoadUInt64(long offset)
    {
        ThrowIfDisposed();
        NvmRangeChecks.CheckWord(offset, Length);
        bool added = false;
        try
        {
            _mapping.DangerousAddRef(ref added);
            return Volatile.Read(ref Word(offset));
        }
        finally
        {
            if (added)
            {
                _mapping.DangerousRelease();
            }
        }
    }

    /// <inheritdoc />
    public void StoreUInt64(long offset, ulong value)
    {
        ThrowIfDisposed();
        NvmRangeChecks.CheckWord(offset, Length);
        ThrowIfReadOnly();
        bool added = false;
        try
        {
            _mapping.DangerousAddRef(ref added);
            Volatile.Write(ref Word(offset), value);
        }
        finally
        {
            if (added)
            {
                _mapping.DangerousRelease();
            }
        }
    }

    /// <inheritdoc />
    public ulong CompareExchangeUInt64(long offset, ulong expected, ulong desired)
    {
        ThrowIfDisposed();
        NvmRangeChecks.CheckWord(offset, Length);
        ThrowIfReadOnly();
        bool added = false;
        try
        {
            _mapping.DangerousAddRef(ref added);
            return Interlocked.CompareExchange(ref Word(offset), desired, expected);
        }
        finally
        {
            if (added)
            {
                _mapping.DangerousRelease();
            }
        }
    }

    /// <inheritdoc />
    public ulong FetchAddUInt64(long offset, ulong delta)
    {
        ThrowIfDisposed();
        NvmRangeChecks.CheckWord(offset, Length);
        ThrowIfReadOnly();
        bool added = false;
        try
        {
            _mapping.DangerousAddRef(ref added);

            // Interlocked.Add returns the new value; unsigned wrap-around makes new - delta the old value.
            return unchecked(Interlocked.Add(ref Word(offset), delta) - delta);
        }
        finally
        {
            if (added)
            {
                _mapping.DangerousRelease();
            }
        }
    }

    /// <inheritdoc />
    public void Read(long offset, Span<byte> destination)
    {
        ThrowIfDisposed();
        NvmRangeChecks.CheckRange(offset, destination.Length, Length);
        bool added = false;
        try
        {
            _mapping.DangerousAddRef(ref added);
            CopyOutWordAtomic(_base + offset, destination);
        }
        finally
        {
            if (added)
            {
                _mapping.DangerousRelease();
            }
        }
    }

    /// <inheritdoc />
    public void Write(long offset, ReadOnlySpan<byte> source)
    {
        ThrowIfDisposed();
        NvmRangeChecks.CheckRange(offset, source.Length, Length);
        ThrowIfReadOnly();
        bool added = false;
        try
        {
            _mapping.DangerousAddRef(ref added);
            CopyInWordAtomic(source, _base + offset);
        }
        finally
        {
            if (added)
            {
                _mapping.DangerousRelease();
            }
        }
    }

    /// <inheritdoc />
    public void Persist(long offset, long length)
    {
        ThrowIfDisposed();
        NvmRangeChecks.CheckRange(offset, length, Length);
        if (length == 0 || _persistMethod == PersistMethod.None)
        {
            // Nothing to flush: an empty range, or a read-only mapping that no store can have dirtied.
            return;
        }

        bool added = false;
        try
        {
            _mapping.DangerousAddRef(ref added);
            switch (_persistMethod)
            {
                case PersistMethod.PmemPersist:
                    Interop.Pmem.pmem_persist(_base + offset, (nuint)length);
                    break;

                case PersistMethod.PmemMsync:
                    // pmem_msync rounds the start down to a page itself.
                    if (Interop.Pmem.pmem_msync(_base + offset, (nuint)length) != 0)
                    {
                        ThrowPersistFailed(Marshal.GetLastPInvokeError(), offset, length);
                    }

                    break;

                default:
                    // msync wants a page-aligned start (EINVAL otherwise): round down and extend the length
                    // so the range still ends where the caller's does.
                    long pageMask = Environment.SystemPageSize - 1L;
                    long start = offset & ~pageMask;
                    if (Interop.Libc.msync(_base + start, (nuint)(offset + length - start), Interop.Libc.MS_SYNC) != 0)
                    {
                        ThrowPersistFailed(Marshal.GetLastPInvokeError(), offset, length);
                    }

                    break;
            }
        }
        finally
        {
            if (added)
            {
                _mapping.DangerousRelease();
            }
        }
    }

    /// <summary>Unmaps the file (after any access still in flight). Does not persist.</summary>
    public void Dispose() => _mapping.Dispose();

    /// <inheritdoc />
    public override string ToString() => Description;

    /// <summary>
    /// Pins the mapping and returns its base address, for a fabric that registers the region with a NIC or a
    /// network engine (UCX <c>ucp_mem_map</c>, <c>ibv_reg_mr</c>). The mapping stays valid until the returned
    /// pin is disposed, even if this region is disposed first: registered memory must never be unmapped under
    /// a device that may still access it.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The region was disposed.</exception>
    public MappedFilePin Pin()
    {
        ThrowIfDisposed();
        var added = false;
        _mapping.DangerousAddRef(ref added);
        return new MappedFilePin(_mapping, (nint)_base, Length);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ref ulong Word(long offset) => ref *(ulong*)(_base + offset);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void ThrowIfDisposed()
    {
        // A cheap early check for a clear message. The reference taken afterwards is what makes a racing
        // Dispose safe; in that narrow race DangerousAddRef throws its own ObjectDisposedException.
        if (_mapping.IsClosed)
        {
            ThrowDisposed();
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void ThrowIfReadOnly()
    {
        if (Access == NvmAccess.ReadOnly)
        {
            ThrowReadOnly();
        }
    }

    /// <summary>
    /// Copies out of the mapping so that every aligned 8-byte word is read by one 8-byte load. A plain
    /// memmove may read a word in two pieces (its overlapping head and tail blocks), and a concurrent atomic
    /// store between the pieces would give a torn word, which the interface promises never happens.
    /// </summary>
    private static void CopyOutWordAtomic(byte* source, Span<byte> destination)
    {
        int count = destination.Length;
        ref byte target = ref MemoryMarshal.GetReference(destination);
        int i = 0;
        while (i < count && ((nuint)(source + i) & 7) != 0)
        {
            Unsafe.Add(ref target, i) = source[i];
            i++;
        }

        for (; count - i >= sizeof(ulong); i += sizeof(ulong))
        {
            Unsafe.WriteUnaligned(ref Unsafe.Add(ref target, i), *(ulong*)(source + i));
        }

        for (; i < count; i++)
        {
            Unsafe.Add(ref target, i) = source[i];
        }
    }

    /// <summary>Copies into the mapping with one 8-byte store per aligned word (see <see cref="CopyOutWordAtomic"/>).</summary>
    private static void CopyInWordAtomic(ReadOnlySpan<byte> source, byte* destination)
    {
        int count = source.Length;
        ref byte from = ref MemoryMarshal.GetReference(source);
        int i = 0;
        while (i < count && ((nuint)(destination + i) & 7) != 0)
        {
            destination[i] = Unsafe.Add(ref from, i);
            i++;
        }

        for (; count - i >= sizeof(ulong); i += sizeof(ulong))
        {
            *(ulong*)(destination + i) = Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref from, i));
        }

        for (; i < count; i++)
        {
            destination[i] = Unsafe.Add(ref from, i);
        }
    }

    private static Exception ErrnoException(int errno, string what, string fullPath)
    {
        const int EPERM = 1, ENOENT = 2, EACCES = 13;
        string message = $"Could not {what}: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno}).";
        return errno switch
        {
            ENOENT => new FileNotFoundException(message, fullPath),
            EACCES or EPERM => new UnauthorizedAccessException(message),
            _ => new IOException(message),
        };
    }

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowDisposed() =>
        throw new ObjectDisposedException(nameof(MappedFileNvm), $"The NVM mapping of '{Path}' has been disposed.");

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowReadOnly() =>
        throw new InvalidOperationException($"NVM file '{Path}' is mapped read-only; stores are refused so the image cannot change.");

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowPersistFailed(int errno, long offset, long length) =>
        throw new IOException(
            $"Persist of [{offset}, {offset}+{length}) in NVM file '{Path}' failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno}). The range is not durable.");

    /// <summary>
    /// Owns the mapping. Unmapping only when the last in-flight access releases its reference is what makes
    /// Dispose safe to race with accesses; the critical finalizer unmaps a region that was never disposed.
    /// </summary>
    private sealed class MappingHandle : SafeHandle
    {
        private readonly nuint _length;
        private readonly bool _viaLibpmem;

        internal MappingHandle(void* address, nuint length, bool viaLibpmem)
            : base(IntPtr.Zero, ownsHandle: true)
        {
            _length = length;
            _viaLibpmem = viaLibpmem;
            SetHandle((nint)address);
        }

        public override bool IsInvalid => handle == IntPtr.Zero;

        protected override bool ReleaseHandle() =>
            (_viaLibpmem
                ? Interop.Pmem.pmem_unmap((void*)handle, _length)
                : Interop.Libc.munmap((void*)handle, _length)) == 0;
    }
}

/// <summary>Which backend <see cref="MappedFileNvm"/> should use.</summary>
internal enum NvmBackendRequest
{
    /// <summary>libpmem when it loads, else mmap + msync.</summary>
    Auto,

    /// <summary>libpmem or fail.</summary>
    Libpmem,

    /// <summary>mmap + msync even when libpmem is present.</summary>
    Msync,
}
