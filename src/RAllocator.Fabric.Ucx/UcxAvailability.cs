using System.Runtime.InteropServices;
using RAllocator.Fabric.Ucx.Interop;

namespace RAllocator.Fabric.Ucx;

/// <summary>
/// Whether UCX can be used in this process. Every UCX type checks this first, so that a machine without UCX gets
/// one clear <see cref="UcxUnavailableException"/> naming the package to install instead of a
/// <see cref="DllNotFoundException"/> from deep inside an operation.
/// </summary>
public static class UcxAvailability
{
    private static string? s_version;

    private static readonly Lazy<string?> s_unavailableReason = new(Initialize, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>True when libucp and libucs load and report an API this binding supports.</summary>
    public static bool IsAvailable => s_unavailableReason.Value is null;

    /// <summary>Why UCX cannot be used, with the command that fixes it; null when it can.</summary>
    public static string? UnavailableReason => s_unavailableReason.Value;

    /// <summary>The loaded libucp version ("1.13.1"), or null when UCX is unavailable.</summary>
    public static string? Version
    {
        get
        {
            _ = s_unavailableReason.Value;
            return s_version;
        }
    }

    /// <summary>Throws <see cref="UcxUnavailableException"/> unless UCX is usable.</summary>
    /// <exception cref="UcxUnavailableException">libucp or libucs cannot be loaded, or reports an older API.</exception>
    public static void EnsureAvailable()
    {
        if (s_unavailableReason.Value is { } reason)
        {
            throw new UcxUnavailableException(reason);
        }
    }

    /// <summary>Null when every library loads, else the reason naming the first that does not, with the install hint.</summary>
    internal static string? ProbeLibraries(IEnumerable<string> libraries)
    {
        foreach (var library in libraries)
        {
            // The same probing as the [LibraryImport] resolution, so a success here means the imports will bind.
            if (!NativeLibrary.TryLoad(library, typeof(UcxAvailability).Assembly, DllImportSearchPath.SafeDirectories, out _))
            {
                return $"UCX is not installed: {library} cannot be loaded. Install it with: apt-get install libucx0 "
                    + "(or libucx-dev, which also brings the headers the layout test compiles against).";
            }
        }

        return null;
    }

    private static string? Initialize()
    {
        if (ProbeLibraries([Ucs.Library, Ucp.Library]) is { } missing)
        {
            return missing;
        }

        // Before any context exists: libucs replaced SIGSEGV/SIGBUS handlers when it loaded, and with them in place a
        // null dereference anywhere in this process would crash with a UCX backtrace instead of throwing.
        Ucs.ucs_debug_disable_signals();

        unsafe
        {
            uint major, minor, release;
            Ucp.ucp_get_version(&major, &minor, &release);
            s_version = $"{major}.{minor}.{release}";
            if (major != Ucp.ApiMajor || minor < Ucp.ApiMinor)
            {
                return $"libucp {s_version} is older than the UCX {Ucp.ApiMajor}.{Ucp.ApiMinor} API these bindings use. "
                    + "Install UCX 1.13 or newer (apt-get install libucx0 on Debian 12).";
            }
        }

        return null;
    }
}

/// <summary>UCX cannot be used in this process; the message says what is missing and how to install it.</summary>
public sealed class UcxUnavailableException(string message) : Exception(message);

/// <summary>A UCX call failed while setting up a context, worker, endpoint or registration.</summary>
public sealed class UcxException : Exception
{
    /// <summary>Creates the exception for <paramref name="call"/> failing with the ucs_status_t <paramref name="status"/>.</summary>
    public UcxException(string call, int status, string statusText)
        : base($"{call} failed: {statusText} (ucs_status_t {status}).")
    {
        Call = call;
        Status = status;
    }

    /// <summary>The UCX function that failed.</summary>
    public string Call { get; }

    /// <summary>The ucs_status_t it returned (negative).</summary>
    public int Status { get; }

    internal static void ThrowIfFailed(sbyte status, string call)
    {
        if (status != Ucs.UCS_OK)
        {
            throw new UcxException(call, status, Ucs.StatusString(status));
        }
    }
}
