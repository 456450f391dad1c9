using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using RAllocator.Fabric.Ucx.Interop;

namespace RAllocator.Fabric.Ucx.Tests;

/// <summary>
/// The bindings' struct sizes, field offsets and constants against the installed UCX headers: native/ucx_probe.c is
/// compiled with gcc and prints what C sees. A mismatch would corrupt memory silently, so a missing compiler or
/// header fails this test loudly rather than skipping it.
/// </summary>
public sealed class UcxLayoutTests
{
    private static long Offset<T>(string field) => Marshal.OffsetOf<T>(field).ToInt64();

    private static readonly Dictionary<string, long> s_bindings = new()
    {
        ["sizeof(ucs_status_t)"] = sizeof(sbyte),

        ["sizeof(ucp_params_t)"] = Unsafe.SizeOf<Ucp.ContextParams>(),
        ["offsetof(ucp_params_t,field_mask)"] = Offset<Ucp.ContextParams>(nameof(Ucp.ContextParams.FieldMask)),
        ["offsetof(ucp_params_t,features)"] = Offset<Ucp.ContextParams>(nameof(Ucp.ContextParams.Features)),
        ["offsetof(ucp_params_t,mt_workers_shared)"] = Offset<Ucp.ContextParams>(nameof(Ucp.ContextParams.MtWorkersShared)),
        ["offsetof(ucp_params_t,name)"] = Offset<Ucp.ContextParams>(nameof(Ucp.ContextParams.Name)),

        ["sizeof(ucp_worker_params_t)"] = Unsafe.SizeOf<Ucp.WorkerParams>(),
        ["offsetof(ucp_worker_params_t,thread_mode)"] = Offset<Ucp.WorkerParams>(nameof(Ucp.WorkerParams.ThreadMode)),
        ["offsetof(ucp_worker_params_t,events)"] = Offset<Ucp.WorkerParams>(nameof(Ucp.WorkerParams.Events)),
        ["offsetof(ucp_worker_params_t,name)"] = Offset<Ucp.WorkerParams>(nameof(Ucp.WorkerParams.Name)),

        ["sizeof(ucp_ep_params_t)"] = Unsafe.SizeOf<Ucp.EndpointParams>(),
        ["offsetof(ucp_ep_params_t,address)"] = Offset<Ucp.EndpointParams>(nameof(Ucp.EndpointParams.Address)),
        ["offsetof(ucp_ep_params_t,err_mode)"] = Offset<Ucp.EndpointParams>(nameof(Ucp.EndpointParams.ErrorMode)),
        ["offsetof(ucp_ep_params_t,err_handler)"] = Offset<Ucp.EndpointParams>(nameof(Ucp.EndpointParams.ErrorHandler)),
        ["offsetof(ucp_ep_params_t,user_data)"] = Offset<Ucp.EndpointParams>(nameof(Ucp.EndpointParams.UserData)),
        ["offsetof(ucp_ep_params_t,flags)"] = Offset<Ucp.EndpointParams>(nameof(Ucp.EndpointParams.Flags)),
        ["offsetof(ucp_ep_params_t,name)"] = Offset<Ucp.EndpointParams>(nameof(Ucp.EndpointParams.Name)),

        ["sizeof(ucp_mem_map_params_t)"] = Unsafe.SizeOf<Ucp.MemoryMapParams>(),
        ["offsetof(ucp_mem_map_params_t,address)"] = Offset<Ucp.MemoryMapParams>(nameof(Ucp.MemoryMapParams.Address)),
        ["offsetof(ucp_mem_map_params_t,length)"] = Offset<Ucp.MemoryMapParams>(nameof(Ucp.MemoryMapParams.Length)),
        ["offsetof(ucp_mem_map_params_t,flags)"] = Offset<Ucp.MemoryMapParams>(nameof(Ucp.MemoryMapParams.Flags)),
        ["offsetof(ucp_mem_map_params_t,prot)"] = Offset<Ucp.MemoryMapParams>(nameof(Ucp.MemoryMapParams.Protection)),
        ["offsetof(ucp_mem_map_params_t,memory_type)"] = Offset<Ucp.MemoryMapParams>(nameof(Ucp.MemoryMapParams.MemoryType)),

        ["sizeof(ucp_request_param_t)"] = Unsafe.SizeOf<Ucp.RequestParams>(),
        ["offsetof(ucp_request_param_t,op_attr_mask)"] = Offset<Ucp.RequestParams>(nameof(Ucp.RequestParams.OpAttrMask)),
        ["offsetof(ucp_request_param_t,flags)"] = Offset<Ucp.RequestParams>(nameof(Ucp.RequestParams.Flags)),
        ["offsetof(ucp_request_param_t,request)"] = Offset<Ucp.RequestParams>(nameof(Ucp.RequestParams.Request)),
        ["offsetof(ucp_request_param_t,cb)"] = Offset<Ucp.RequestParams>(nameof(Ucp.RequestParams.Callback)),
        ["offsetof(ucp_request_param_t,datatype)"] = Offset<Ucp.RequestParams>(nameof(Ucp.RequestParams.Datatype)),
        ["offsetof(ucp_request_param_t,user_data)"] = Offset<Ucp.RequestParams>(nameof(Ucp.RequestParams.UserData)),
        ["offsetof(ucp_request_param_t,reply_buffer)"] = Offset<Ucp.RequestParams>(nameof(Ucp.RequestParams.ReplyBuffer)),
        ["offsetof(ucp_request_param_t,memory_type)"] = Offset<Ucp.RequestParams>(nameof(Ucp.RequestParams.MemoryType)),
        ["offsetof(ucp_request_param_t,recv_info)"] = Offset<Ucp.RequestParams>(nameof(Ucp.RequestParams.RecvInfo)),
        ["offsetof(ucp_request_param_t,memh)"] = Offset<Ucp.RequestParams>(nameof(Ucp.RequestParams.MemoryHandle)),

        ["UCP_API_MAJOR"] = Ucp.ApiMajor,
        ["UCP_API_MINOR"] = Ucp.ApiMinor,
        ["UCS_OK"] = Ucs.UCS_OK,
        ["UCS_INPROGRESS"] = Ucs.UCS_INPROGRESS,
        ["UCS_ERR_BUSY"] = Ucs.UCS_ERR_BUSY,
        ["UCS_ERR_CANCELED"] = Ucs.UCS_ERR_CANCELED,
        ["UCS_ERR_LAST"] = Ucs.UCS_ERR_LAST,
        ["ucp_dt_make_contig(8)"] = (long)Ucp.DatatypeContiguous8,
        ["UCP_FEATURE_RMA"] = (long)Ucp.UCP_FEATURE_RMA,
        ["UCP_FEATURE_AMO64"] = (long)Ucp.UCP_FEATURE_AMO64,
        ["UCP_FEATURE_WAKEUP"] = (long)Ucp.UCP_FEATURE_WAKEUP,
        ["UCS_THREAD_MODE_SERIALIZED"] = Ucp.UCS_THREAD_MODE_SERIALIZED,
        ["UCP_ERR_HANDLING_MODE_PEER"] = Ucp.UCP_ERR_HANDLING_MODE_PEER,
        ["UCP_ATOMIC_OP_ADD"] = Ucp.UCP_ATOMIC_OP_ADD,
        ["UCP_ATOMIC_OP_CSWAP"] = Ucp.UCP_ATOMIC_OP_CSWAP,
        ["UCP_EP_CLOSE_FLAG_FORCE"] = Ucp.UCP_EP_CLOSE_FLAG_FORCE,
        ["UCS_MEMORY_TYPE_HOST"] = Ucp.UCS_MEMORY_TYPE_HOST,
        ["UCP_MEM_MAP_PARAM_FIELD_PROT"] = (long)Ucp.UCP_MEM_MAP_PARAM_FIELD_PROT,
        ["UCP_MEM_MAP_PROT_LOCAL_READ"] = Ucp.UCP_MEM_MAP_PROT_LOCAL_READ,
        ["UCP_MEM_MAP_PROT_LOCAL_WRITE"] = Ucp.UCP_MEM_MAP_PROT_LOCAL_WRITE,
        ["UCP_MEM_MAP_PROT_REMOTE_READ"] = Ucp.UCP_MEM_MAP_PROT_REMOTE_READ,
        ["UCP_MEM_MAP_PROT_REMOTE_WRITE"] = Ucp.UCP_MEM_MAP_PROT_REMOTE_WRITE,
    };

    [Fact]
    public void Bindings_match_the_installed_headers()
    {
        var probed = RunProbe();

        var mismatches = s_bindings
            .Where(binding => !probed.TryGetValue(binding.Key, out var value) || value != binding.Value)
            .Select(binding => $"{binding.Key}: C# {binding.Value}, C {(probed.TryGetValue(binding.Key, out var value) ? value : "not printed")}")
            .ToList();
        mismatches.ShouldBeEmpty();

        // Every line the probe prints is checked: a new probe line without a binding entry is a forgotten check.
        probed.Keys.Except(s_bindings.Keys).ShouldBeEmpty();
        Unsafe.SizeOf<Ucp.RequestParams>().ShouldBe(Ucp.RequestParams.SizeBytes);
        Unsafe.SizeOf<Ucp.ContextParams>().ShouldBe(Ucp.ContextParams.SizeBytes);
        Unsafe.SizeOf<Ucp.WorkerParams>().ShouldBe(Ucp.WorkerParams.SizeBytes);
        Unsafe.SizeOf<Ucp.EndpointParams>().ShouldBe(Ucp.EndpointParams.SizeBytes);
        Unsafe.SizeOf<Ucp.MemoryMapParams>().ShouldBe(Ucp.MemoryMapParams.SizeBytes);
    }

    [Fact]
    public void Status_pointers_are_decoded_as_ucs_ptr_is_err_does()
    {
        Ucs.PointerIsError(0).ShouldBeFalse();
        Ucs.PointerIsError(unchecked((nint)0x7f00_0000_1000L)).ShouldBeFalse();
        Ucs.PointerIsError(-101).ShouldBeFalse();
        Ucs.PointerIsError(-100).ShouldBeTrue();
        Ucs.PointerIsError(-1).ShouldBeTrue();
        Ucs.PointerStatus(-25).ShouldBe((sbyte)-25);
    }

    private static Dictionary<string, long> RunProbe()
    {
        var source = Path.Combine(AppContext.BaseDirectory, "native", "ucx_probe.c");
        File.Exists(source).ShouldBeTrue($"probe source missing at {source}");
        using var directory = new TempDirectory();
        var executable = directory.File("ucx_probe");

        var (compileExit, _, compileErrors) = Run("gcc", ["-o", executable, source]);
        compileExit.ShouldBe(0, $"gcc could not compile the UCX layout probe (install gcc and libucx-dev: apt-get install gcc libucx-dev):\n{compileErrors}");

        var (exit, output, errors) = Run(executable, []);
        exit.ShouldBe(0, $"the UCX layout probe failed:\n{errors}");
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => line.Split(' '))
            .ToDictionary(parts => parts[0], parts => long.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture));
    }

    private static (int ExitCode, string Output, string Errors) Run(string program, string[] arguments)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception missing)
        {
            throw new InvalidOperationException($"Cannot run '{program}' ({missing.Message}); install gcc and libucx-dev: apt-get install gcc libucx-dev", missing);
        }

        using (process)
        {
            var errors = process.StandardError.ReadToEndAsync();
            var output = process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            return (process.ExitCode, output, errors.Result);
        }
    }
}
