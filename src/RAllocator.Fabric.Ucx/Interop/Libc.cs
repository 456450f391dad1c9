using System.Runtime.InteropServices;

namespace RAllocator.Fabric.Ucx.Interop;

/// <summary>The C library calls the blade's progress thread needs: its kernel thread id, and sleeping on the worker's event fd.</summary>
internal static unsafe partial class Libc
{
    /// <summary>The runtime maps the bare name to the real soname (libc.so.6); "libc.so" is a linker script.</summary>
    internal const string Library = "libc";

    internal const short POLLIN = 0x1;
    internal const int SC_CLK_TCK = 2;

    [StructLayout(LayoutKind.Sequential)]
    internal struct PollFd
    {
        public int Fd;
        public short Events;
        public short ReturnedEvents;
    }

    [LibraryImport(Library, EntryPoint = "gettid")]
    internal static partial int gettid();

    [LibraryImport(Library, EntryPoint = "poll", SetLastError = true)]
    internal static partial int poll(PollFd* fds, nuint count, int timeoutMilliseconds);

    [LibraryImport(Library, EntryPoint = "sysconf")]
    internal static partial long sysconf(int name);
}
