namespace RAllocator.Nvm;

// Native library names, in one place (dotnet/runtime Interop.Libraries.cs). The sonames carry the ABI
// major version on purpose: the unversioned "libpmem.so" symlink exists only with the -dev package, while
// the runtime package (libpmem1) ships "libpmem.so.1".
internal static partial class Interop
{
    internal static class Libraries
    {
        /// <summary>PMDK's libpmem, ABI 1 (PMDK 1.x; Debian package <c>libpmem1</c>).</summary>
        internal const string Pmem = "libpmem.so.1";

        /// <summary>
        /// The C library. Not "libc.so": on glibc that is a linker script (and only with libc6-dev), which
        /// dlopen rejects. The runtime's loader maps the bare name "libc" to the real soname (libc.so.6).
        /// </summary>
        internal const string Libc = "libc";
    }
}
