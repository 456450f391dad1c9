using System.Text;
using RAllocator.Fabric.Ucx.Interop;

namespace RAllocator.Fabric.Ucx;

/// <summary>
/// One ucp context with one worker, configured from <see cref="UcxOptions"/>. Not thread-safe: the worker is
/// created UCS_THREAD_MODE_SERIALIZED, so its owner serializes every call (a lock) and may make them from any thread.
/// </summary>
internal sealed unsafe class UcxWorkerContext : IDisposable
{
    private UcxWorkerContext(nint context, nint worker)
    {
        Context = context;
        Worker = worker;
    }

    public nint Context { get; private set; }

    public nint Worker { get; private set; }

    public static UcxWorkerContext Create(UcxOptions options, ulong features, string name)
    {
        UcxAvailability.EnsureAvailable();

        nint config;
        UcxException.ThrowIfFailed(Ucp.ucp_config_read(null, null, &config), "ucp_config_read");
        nint context = 0;
        try
        {
            // Per context, not through the environment: .NET's Environment.SetEnvironmentVariable never reaches
            // the native getenv that UCX reads, and two contexts in one process may want different transports.
            if (options.Transports is not null)
            {
                UcxException.ThrowIfFailed(Ucp.ucp_config_modify(config, "TLS", options.Transports), $"ucp_config_modify(TLS={options.Transports})");
            }

            if (options.NetworkDevices is not null)
            {
                UcxException.ThrowIfFailed(Ucp.ucp_config_modify(config, "NET_DEVICES", options.NetworkDevices), $"ucp_config_modify(NET_DEVICES={options.NetworkDevices})");
            }

            var nameBytes = Encoding.UTF8.GetBytes(name + "\0");
            fixed (byte* namePointer = nameBytes)
            {
                var contextParams = new Ucp.ContextParams
                {
                    FieldMask = Ucp.UCP_PARAM_FIELD_FEATURES | Ucp.UCP_PARAM_FIELD_MT_WORKERS_SHARED | Ucp.UCP_PARAM_FIELD_NAME,
                    Features = features,
                    // The owner's lock serializes the worker, but registrations run on other threads than progress.
                    MtWorkersShared = 1,
                    Name = namePointer,
                };
                UcxException.ThrowIfFailed(Ucp.ucp_init_version(Ucp.ApiMajor, Ucp.ApiMinor, &contextParams, config, &context), "ucp_init_version");

                var workerParams = new Ucp.WorkerParams
                {
                    FieldMask = Ucp.UCP_WORKER_PARAM_FIELD_THREAD_MODE | Ucp.UCP_WORKER_PARAM_FIELD_NAME,
                    ThreadMode = Ucp.UCS_THREAD_MODE_SERIALIZED,
                    Name = namePointer,
                };
                nint worker;
                UcxException.ThrowIfFailed(Ucp.ucp_worker_create(context, &workerParams, &worker), "ucp_worker_create");
                return new UcxWorkerContext(context, worker);
            }
        }
        catch
        {
            if (context != 0)
            {
                Ucp.ucp_cleanup(context);
            }

            throw;
        }
        finally
        {
            Ucp.ucp_config_release(config);
        }
    }

    /// <summary>The worker's address, which a peer passes to ucp_ep_create.</summary>
    public byte[] GetWorkerAddress()
    {
        void* address;
        nuint length;
        UcxException.ThrowIfFailed(Ucp.ucp_worker_get_address(Worker, &address, &length), "ucp_worker_get_address");
        try
        {
            return new ReadOnlySpan<byte>(address, checked((int)length)).ToArray();
        }
        finally
        {
            Ucp.ucp_worker_release_address(Worker, address);
        }
    }

    public void Dispose()
    {
        if (Worker != 0)
        {
            Ucp.ucp_worker_destroy(Worker);
            Worker = 0;
        }

        if (Context != 0)
        {
            Ucp.ucp_cleanup(Context);
            Context = 0;
        }
    }
}
