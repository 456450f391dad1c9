using System.Runtime.InteropServices;

namespace RAllocator.Nvm;

internal static partial class Interop
{
    /// <summary>
    /// The few libc calls of the mmap + msync fallback (Linux x86-64 and arm64 values). errno travels through
    /// <c>SetLastError = true</c> and <see cref="Marshal.GetLastPInvokeError"/>; never read it any other way,
    /// because the runtime itself may clobber errno between the call and a later read.
    /// </summary>
    internal static unsafe partial class Libc
    {
        // <fcntl.h>
        internal const int O_RDONLY = 0x0;
        internal const int O_RDWR = 0x2;
        internal const int O_CLOEXEC = 0x80000;

        // <sys/mman.h>
        internal const int PROT_READ = 0x1;
        internal const int PROT_WRITE = 0x2;
        internal const int MAP_SHARED = 0x01;
        internal const int MS_SYNC = 0x4;

        /// <summary>mmap's failure value, (void *)-1: not NULL.</summary>
        internal static readonly void* MAP_FAILED = (void*)-1;

        // <unistd.h>
        internal const int SEEK_END = 2;

        // int open(const char *pathname, int flags, ...);
        // open is variadic. We always pass the optional mode_t as a third fixed int: on the SysV x86-64 and
        // AAPCS64 Linux ABIs variadic integer arguments travel in the same registers as fixed ones (and x86-64
        // %al, the vector-register count, only gates saving XMM registers), so the fixed-signature call is
        // well-defined there. This is why dotnet/runtime routes open through a C shim on other platforms.
        [LibraryImport(Libraries.Libc, EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
        internal static partial int open(string pathname, int flags, uint mode);

        // int close(int fd);
        [LibraryImport(Libraries.Libc, EntryPoint = "close", SetLastError = true)]
        internal static partial int close(int fd);

        // off_t lseek(int fd, off_t offset, int whence);  off_t is 64-bit on LP64 Linux.
        [LibraryImport(Libraries.Libc, EntryPoint = "lseek", SetLastError = true)]
        internal static partial long lseek(int fd, long offset, int whence);

        // void *mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset);
        // Returns MAP_FAILED ((void *)-1), not NULL, on failure. The mapping outlives close(fd).
        [LibraryImport(Libraries.Libc, EntryPoint = "mmap", SetLastError = true)]
        internal static partial void* mmap(void* addr, nuint length, int prot, int flags, int fd, long offset);

        // int msync(void *addr, size_t length, int flags);
        // addr must be page-aligned (EINVAL otherwise): callers round down and extend length to match.
        [LibraryImport(Libraries.Libc, EntryPoint = "msync", SetLastError = true)]
        internal static partial int msync(void* addr, nuint length, int flags);

        // int munmap(void *addr, size_t length);
        [LibraryImport(Libraries.Libc, EntryPoint = "munmap", SetLastError = true)]
        internal static partial int munmap(void* addr, nuint length);
    }
}
