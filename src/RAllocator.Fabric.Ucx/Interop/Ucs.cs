using System.Runtime.InteropServices;

namespace RAllocator.Fabric.Ucx.Interop;

/// <summary>libucs (UCX 1.13.1, ucs/type/status.h, ucs/debug): status codes, their names, and signal handling.</summary>
internal static unsafe partial class Ucs
{
    internal const string Library = "libucs.so.0";

    // ucs_status_t (a one-byte enum)
    internal const sbyte UCS_OK = 0;
    internal const sbyte UCS_INPROGRESS = 1;
    internal const sbyte UCS_ERR_BUSY = -15;
    internal const sbyte UCS_ERR_CANCELED = -16;

    /// <summary>UCS_ERR_LAST: statuses are encoded in pointers as the values [-100, -1].</summary>
    internal const sbyte UCS_ERR_LAST = -100;

    /// <summary>UCS_PTR_IS_ERR: a ucs_status_ptr_t that carries an error status instead of a request.</summary>
    internal static bool PointerIsError(nint statusPointer) => (nuint)statusPointer >= unchecked((nuint)(nint)UCS_ERR_LAST);

    /// <summary>UCS_PTR_STATUS: the status carried by an error pointer.</summary>
    internal static sbyte PointerStatus(nint statusPointer) => (sbyte)statusPointer;

    /// <summary>
    /// Restores the signal handlers libucs replaced when it was loaded (SIGSEGV, SIGBUS, ... when UCX_HANDLE_ERRORS
    /// asks for backtraces, the default): .NET turns a null dereference into NullReferenceException only with its own.
    /// </summary>
    [LibraryImport(Library, EntryPoint = "ucs_debug_disable_signals")]
    internal static partial void ucs_debug_disable_signals();

    [LibraryImport(Library, EntryPoint = "ucs_status_string")]
    private static partial byte* ucs_status_string_native(sbyte status);

    /// <summary>The status's name as UCX prints it ("Connection reset by remote peer", ...).</summary>
    internal static string StatusString(sbyte status) =>
        Marshal.PtrToStringUTF8((nint)ucs_status_string_native(status)) ?? $"UCX status {status}";
}
