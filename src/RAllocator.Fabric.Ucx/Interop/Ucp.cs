using System.Runtime.InteropServices;

namespace RAllocator.Fabric.Ucx.Interop;

/// <summary>
/// libucp (UCX 1.13.1, ucp/api/ucp.h, x86-64). Every struct below mirrors its C layout with explicit offsets and
/// size; <c>tests/RAllocator.Fabric.Ucx.Tests/native/ucx_probe.c</c> checks them against the installed headers.
/// Call <see cref="UcxAvailability.EnsureAvailable"/> before any import: the first call would otherwise throw
/// <see cref="DllNotFoundException"/> without saying which package is missing.
/// </summary>
/// <remarks>
/// <c>ucs_status_t</c> is a one-byte enum in this ABI, so it is <see cref="sbyte"/> in returns and callbacks.
/// Handles (<c>ucp_context_h</c>, <c>ucp_worker_h</c>, <c>ucp_ep_h</c>, <c>ucp_mem_h</c>, <c>ucp_rkey_h</c>,
/// <c>ucp_config_t*</c>) are opaque pointers, kept as <see cref="nint"/>.
/// </remarks>
internal static unsafe partial class Ucp
{
    /// <summary>The runtime package's soname; the unversioned libucp.so exists only with libucx-dev.</summary>
    internal const string Library = "libucp.so.0";

    // The API version the structs below were written against; ucp_init is an inline wrapper passing these.
    internal const uint ApiMajor = 1;
    internal const uint ApiMinor = 13;

    // ucp_params_field
    internal const ulong UCP_PARAM_FIELD_FEATURES = 1UL << 0;
    internal const ulong UCP_PARAM_FIELD_MT_WORKERS_SHARED = 1UL << 5;
    internal const ulong UCP_PARAM_FIELD_NAME = 1UL << 8;

    // ucp_feature
    internal const ulong UCP_FEATURE_RMA = 1UL << 1;
    internal const ulong UCP_FEATURE_AMO64 = 1UL << 3;
    internal const ulong UCP_FEATURE_WAKEUP = 1UL << 4;

    // ucp_worker_params_field
    internal const ulong UCP_WORKER_PARAM_FIELD_THREAD_MODE = 1UL << 0;
    internal const ulong UCP_WORKER_PARAM_FIELD_NAME = 1UL << 6;

    // ucs_thread_mode_t
    internal const int UCS_THREAD_MODE_SERIALIZED = 1;

    // ucp_ep_params_field
    internal const ulong UCP_EP_PARAM_FIELD_REMOTE_ADDRESS = 1UL << 0;
    internal const ulong UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE = 1UL << 1;
    internal const ulong UCP_EP_PARAM_FIELD_ERR_HANDLER = 1UL << 2;
    internal const ulong UCP_EP_PARAM_FIELD_NAME = 1UL << 7;

    // ucp_err_handling_mode_t
    internal const int UCP_ERR_HANDLING_MODE_NONE = 0;
    internal const int UCP_ERR_HANDLING_MODE_PEER = 1;

    // ucp_ep_close_flags_t
    internal const uint UCP_EP_CLOSE_FLAG_FORCE = 1U << 0;

    // ucp_mem_map_params_field
    internal const ulong UCP_MEM_MAP_PARAM_FIELD_ADDRESS = 1UL << 0;
    internal const ulong UCP_MEM_MAP_PARAM_FIELD_LENGTH = 1UL << 1;
    internal const ulong UCP_MEM_MAP_PARAM_FIELD_PROT = 1UL << 3;
    internal const ulong UCP_MEM_MAP_PARAM_FIELD_MEMORY_TYPE = 1UL << 4;

    // ucp_mem_map_prot_t
    internal const uint UCP_MEM_MAP_PROT_LOCAL_READ = 1U << 0;
    internal const uint UCP_MEM_MAP_PROT_LOCAL_WRITE = 1U << 1;
    internal const uint UCP_MEM_MAP_PROT_REMOTE_READ = 1U << 8;
    internal const uint UCP_MEM_MAP_PROT_REMOTE_WRITE = 1U << 9;

    // ucs_memory_type_t
    internal const int UCS_MEMORY_TYPE_HOST = 0;

    // ucp_op_attr_t (a 32-bit mask in ucp_request_param_t)
    internal const uint UCP_OP_ATTR_FIELD_DATATYPE = 1U << 3;
    internal const uint UCP_OP_ATTR_FIELD_FLAGS = 1U << 4;
    internal const uint UCP_OP_ATTR_FIELD_REPLY_BUFFER = 1U << 5;

    // ucp_atomic_op_t
    internal const int UCP_ATOMIC_OP_ADD = 0;
    internal const int UCP_ATOMIC_OP_CSWAP = 2;

    /// <summary>ucp_dt_make_contig(8): a contiguous datatype of 8-byte elements (the macro shifts the size left by 3).</summary>
    internal const ulong DatatypeContiguous8 = 8UL << 3;

    /// <summary>ucp_params_t: context creation parameters.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 80)]
    internal struct ContextParams
    {
        internal const int SizeBytes = 80;
        [FieldOffset(0)] public ulong FieldMask;
        [FieldOffset(8)] public ulong Features;
        [FieldOffset(48)] public int MtWorkersShared;
        [FieldOffset(72)] public byte* Name;
    }

    /// <summary>ucp_worker_params_t (the 128-byte cpu_mask sits between thread_mode and events).</summary>
    [StructLayout(LayoutKind.Explicit, Size = 200)]
    internal struct WorkerParams
    {
        internal const int SizeBytes = 200;
        [FieldOffset(0)] public ulong FieldMask;
        [FieldOffset(8)] public int ThreadMode;
        [FieldOffset(144)] public uint Events;
        [FieldOffset(176)] public byte* Name;
    }

    /// <summary>ucp_ep_params_t: endpoint to a remote worker address.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 104)]
    internal struct EndpointParams
    {
        internal const int SizeBytes = 104;
        [FieldOffset(0)] public ulong FieldMask;
        [FieldOffset(8)] public void* Address;
        [FieldOffset(16)] public int ErrorMode;
        // ucp_err_handler_t { ucp_err_handler_cb_t cb; void *arg; }
        [FieldOffset(24)] public delegate* unmanaged<void*, nint, sbyte, void> ErrorHandler;
        [FieldOffset(32)] public void* ErrorHandlerArgument;
        [FieldOffset(40)] public void* UserData;
        [FieldOffset(48)] public uint Flags;
        [FieldOffset(80)] public byte* Name;
    }

    /// <summary>ucp_mem_map_params_t: registration of program-owned memory when no ALLOCATE flag is given.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 40)]
    internal struct MemoryMapParams
    {
        internal const int SizeBytes = 40;
        [FieldOffset(0)] public ulong FieldMask;
        [FieldOffset(8)] public void* Address;
        [FieldOffset(16)] public nuint Length;
        [FieldOffset(24)] public uint Flags;
        [FieldOffset(28)] public uint Protection;
        [FieldOffset(32)] public int MemoryType;
    }

    /// <summary>ucp_request_param_t: per-operation attributes of the *_nbx calls.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 72)]
    internal struct RequestParams
    {
        internal const int SizeBytes = 72;
        [FieldOffset(0)] public uint OpAttrMask;
        [FieldOffset(4)] public uint Flags;
        [FieldOffset(8)] public void* Request;
        [FieldOffset(16)] public void* Callback;
        [FieldOffset(24)] public ulong Datatype;
        [FieldOffset(32)] public void* UserData;
        [FieldOffset(40)] public void* ReplyBuffer;
        [FieldOffset(48)] public int MemoryType;
        [FieldOffset(56)] public nuint RecvInfo;
        [FieldOffset(64)] public nint MemoryHandle;
    }

    [LibraryImport(Library, EntryPoint = "ucp_get_version")]
    internal static partial void ucp_get_version(uint* major, uint* minor, uint* release);

    [LibraryImport(Library, EntryPoint = "ucp_config_read")]
    internal static partial sbyte ucp_config_read(byte* envPrefix, byte* fileName, nint* config);

    [LibraryImport(Library, EntryPoint = "ucp_config_modify", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial sbyte ucp_config_modify(nint config, string name, string value);

    [LibraryImport(Library, EntryPoint = "ucp_config_release")]
    internal static partial void ucp_config_release(nint config);

    [LibraryImport(Library, EntryPoint = "ucp_init_version")]
    internal static partial sbyte ucp_init_version(uint apiMajor, uint apiMinor, ContextParams* parameters, nint config, nint* context);

    [LibraryImport(Library, EntryPoint = "ucp_cleanup")]
    internal static partial void ucp_cleanup(nint context);

    [LibraryImport(Library, EntryPoint = "ucp_worker_create")]
    internal static partial sbyte ucp_worker_create(nint context, WorkerParams* parameters, nint* worker);

    [LibraryImport(Library, EntryPoint = "ucp_worker_destroy")]
    internal static partial void ucp_worker_destroy(nint worker);

    [LibraryImport(Library, EntryPoint = "ucp_worker_get_address")]
    internal static partial sbyte ucp_worker_get_address(nint worker, void** address, nuint* length);

    [LibraryImport(Library, EntryPoint = "ucp_worker_release_address")]
    internal static partial void ucp_worker_release_address(nint worker, void* address);

    [LibraryImport(Library, EntryPoint = "ucp_worker_progress")]
    internal static partial uint ucp_worker_progress(nint worker);

    [LibraryImport(Library, EntryPoint = "ucp_worker_get_efd")]
    internal static partial sbyte ucp_worker_get_efd(nint worker, int* fd);

    [LibraryImport(Library, EntryPoint = "ucp_worker_arm")]
    internal static partial sbyte ucp_worker_arm(nint worker);

    /// <summary>Thread-safe by contract (ucp.h): wakes a thread sleeping on the worker's event fd.</summary>
    [LibraryImport(Library, EntryPoint = "ucp_worker_signal")]
    internal static partial sbyte ucp_worker_signal(nint worker);

    [LibraryImport(Library, EntryPoint = "ucp_worker_fence")]
    internal static partial sbyte ucp_worker_fence(nint worker);

    [LibraryImport(Library, EntryPoint = "ucp_ep_create")]
    internal static partial sbyte ucp_ep_create(nint worker, EndpointParams* parameters, nint* endpoint);

    [LibraryImport(Library, EntryPoint = "ucp_ep_close_nbx")]
    internal static partial nint ucp_ep_close_nbx(nint endpoint, RequestParams* parameters);

    [LibraryImport(Library, EntryPoint = "ucp_ep_flush_nbx")]
    internal static partial nint ucp_ep_flush_nbx(nint endpoint, RequestParams* parameters);

    [LibraryImport(Library, EntryPoint = "ucp_mem_map")]
    internal static partial sbyte ucp_mem_map(nint context, MemoryMapParams* parameters, nint* memoryHandle);

    [LibraryImport(Library, EntryPoint = "ucp_mem_unmap")]
    internal static partial sbyte ucp_mem_unmap(nint context, nint memoryHandle);

    [LibraryImport(Library, EntryPoint = "ucp_rkey_pack")]
    internal static partial sbyte ucp_rkey_pack(nint context, nint memoryHandle, void** buffer, nuint* size);

    [LibraryImport(Library, EntryPoint = "ucp_rkey_buffer_release")]
    internal static partial void ucp_rkey_buffer_release(void* buffer);

    [LibraryImport(Library, EntryPoint = "ucp_ep_rkey_unpack")]
    internal static partial sbyte ucp_ep_rkey_unpack(nint endpoint, void* buffer, nint* remoteKey);

    [LibraryImport(Library, EntryPoint = "ucp_rkey_destroy")]
    internal static partial void ucp_rkey_destroy(nint remoteKey);

    [LibraryImport(Library, EntryPoint = "ucp_put_nbx")]
    internal static partial nint ucp_put_nbx(nint endpoint, void* buffer, nuint count, ulong remoteAddress, nint remoteKey, RequestParams* parameters);

    [LibraryImport(Library, EntryPoint = "ucp_get_nbx")]
    internal static partial nint ucp_get_nbx(nint endpoint, void* buffer, nuint count, ulong remoteAddress, nint remoteKey, RequestParams* parameters);

    [LibraryImport(Library, EntryPoint = "ucp_atomic_op_nbx")]
    internal static partial nint ucp_atomic_op_nbx(nint endpoint, int opcode, void* buffer, nuint count, ulong remoteAddress, nint remoteKey, RequestParams* parameters);

    [LibraryImport(Library, EntryPoint = "ucp_request_check_status")]
    internal static partial sbyte ucp_request_check_status(nint request);

    [LibraryImport(Library, EntryPoint = "ucp_request_cancel")]
    internal static partial void ucp_request_cancel(nint worker, nint request);

    [LibraryImport(Library, EntryPoint = "ucp_request_free")]
    internal static partial void ucp_request_free(nint request);
}
