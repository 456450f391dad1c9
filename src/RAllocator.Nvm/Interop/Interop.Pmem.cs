using System.Runtime.InteropServices;

namespace RAllocator.Nvm;

internal static partial class Interop
{
    /// <summary>
    /// PMDK libpmem (libpmem.h, PMDK 1.12.1, LIBPMEM_1.0 symbol version). Optional at run time: callers must
    /// check <see cref="IsAvailable"/> before calling any import, because the first call would otherwise
    /// throw <see cref="DllNotFoundException"/>.
    /// </summary>
    internal static unsafe partial class Pmem
    {
        // Flags of pmem_map_file (libpmem.h).
        internal const int PMEM_FILE_CREATE = 1 << 0;
        internal const int PMEM_FILE_EXCL = 1 << 1;
        internal const int PMEM_FILE_SPARSE = 1 << 2;
        internal const int PMEM_FILE_TMPFILE = 1 << 3;

        private static readonly Lazy<string?> s_unavailableReason = new(ProbeLibrary);

        /// <summary>True when libpmem.so.1 can be loaded in this process.</summary>
        internal static bool IsAvailable => s_unavailableReason.Value is null;

        /// <summary>Why libpmem cannot be used, with the install hint; null when it can.</summary>
        internal static string? UnavailableReason => s_unavailableReason.Value;

        private static string? ProbeLibrary() => Probe(Libraries.Pmem);

        /// <summary>Null when <paramref name="libraryName"/> loads, else the fallback reason naming it.</summary>
        internal static string? Probe(string libraryName)
        {
            // TryLoad uses the same probing as the [LibraryImport] resolution below, so a success here means
            // the imports will bind. The handle is deliberately kept: the runtime holds its own reference.
            if (NativeLibrary.TryLoad(libraryName, typeof(Pmem).Assembly, DllImportSearchPath.SafeDirectories, out _))
            {
                return null;
            }

            return $"{libraryName} not found; using mmap + msync. Install it with: apt-get install libpmem1";
        }

        // void *pmem_map_file(const char *path, size_t len, int flags, mode_t mode,
        //                     size_t *mapped_lenp, int *is_pmemp);
        // On Linux the exported symbol is pmem_map_file itself (the U/W suffixes are Windows-only macros).
        // size_t is nuint; mode_t is a 32-bit unsigned int on Linux. len = 0 with flags = 0 maps the whole
        // existing file. The file is always opened O_RDWR and mapped PROT_READ|PROT_WRITE, MAP_SHARED (with
        // MAP_SYNC on a DAX file system), so it cannot serve a read-only mapping. Returns NULL with errno set
        // and a message for pmem_errormsg on failure.
        [LibraryImport(Libraries.Pmem, EntryPoint = "pmem_map_file", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
        private static partial void* pmem_map_file(string path, nuint len, int flags, uint mode, nuint* mapped_lenp, int* is_pmemp);

        // void pmem_persist(const void *addr, size_t len);
        // Cache-line flush (CLWB/CLFLUSHOPT/CLFLUSH) plus SFENCE. Durable only when the mapping is real
        // persistent memory (pmem_is_pmem true): on a page-cache mapping it reaches DRAM, not the file.
        [LibraryImport(Libraries.Pmem, EntryPoint = "pmem_persist")]
        internal static partial void pmem_persist(void* addr, nuint len);

        // int pmem_msync(const void *addr, size_t len);
        // msync(MS_SYNC) after rounding addr down to a page boundary itself (unlike raw msync); 0 or -1/errno.
        [LibraryImport(Libraries.Pmem, EntryPoint = "pmem_msync", SetLastError = true)]
        internal static partial int pmem_msync(void* addr, nuint len);

        // int pmem_is_pmem(const void *addr, size_t len);
        // 1 when the whole range is persistent memory reachable by user-space flushes, else 0.
        // PMEM_IS_PMEM_FORCE=1 in the environment makes it report 1 (testing only: not durable then).
        [LibraryImport(Libraries.Pmem, EntryPoint = "pmem_is_pmem")]
        internal static partial int pmem_is_pmem(void* addr, nuint len);

        // int pmem_unmap(void *addr, size_t len);  0 or -1/errno. len must be the mapped length.
        [LibraryImport(Libraries.Pmem, EntryPoint = "pmem_unmap", SetLastError = true)]
        internal static partial int pmem_unmap(void* addr, nuint len);

        // const char *pmem_errormsg(void);
        // A thread-local, library-owned string describing the last error on this thread: never freed by us.
        [LibraryImport(Libraries.Pmem, EntryPoint = "pmem_errormsg")]
        private static partial byte* pmem_errormsg();

        /// <summary>
        /// Maps the whole of an existing file read-write. Returns the address, or null with
        /// <paramref name="error"/> set to libpmem's message for this thread's failure.
        /// </summary>
        internal static void* MapExistingFile(string path, out nuint mappedLength, out bool isPmemFromMap, out string? error)
        {
            nuint length = 0;
            int isPmem = 0;
            void* address = pmem_map_file(path, 0, 0, 0, &length, &isPmem);
            if (address == null)
            {
                int errno = Marshal.GetLastPInvokeError();
                // pmem_errormsg is thread-local, and nothing ran on this thread since the failing call.
                string message = Marshal.PtrToStringUTF8((nint)pmem_errormsg()) ?? Marshal.GetPInvokeErrorMessage(errno);
                mappedLength = 0;
                isPmemFromMap = false;
                error = $"{message} (errno {errno})";
                return null;
            }

            mappedLength = length;
            isPmemFromMap = isPmem != 0;
            error = null;
            return address;
        }
    }
}
