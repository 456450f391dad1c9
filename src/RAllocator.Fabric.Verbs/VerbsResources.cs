using System.Runtime.InteropServices;
using RAllocator.Fabric.Verbs.Interop;
using static RAllocator.Fabric.Verbs.Interop.IbVerbs;

namespace RAllocator.Fabric.Verbs;

/// <summary>An opened device, its protection domain and the chosen port's addressing. Owns them; disposal closes them.</summary>
internal sealed unsafe class VerbsDeviceContext : IDisposable
{
    private VerbsDeviceContext(ibv_context* context, ibv_pd* pd, string name, byte port, byte gidIndex, ushort lid, VerbsGid gid, ibv_mtu mtu, byte maxRdAtomic)
    {
        Context = context;
        Pd = pd;
        Name = name;
        PortNumber = port;
        GidIndex = gidIndex;
        Lid = lid;
        Gid = gid;
        ActiveMtu = mtu;
        MaxRdAtomic = maxRdAtomic;
    }

    public ibv_context* Context { get; private set; }

    public ibv_pd* Pd { get; private set; }

    public string Name { get; }

    public byte PortNumber { get; }

    public byte GidIndex { get; }

    public ushort Lid { get; }

    public VerbsGid Gid { get; }

    public ibv_mtu ActiveMtu { get; }

    /// <summary>Outstanding READs/atomics per QP: the device's limit, at most <see cref="VerbsQpTransitions.DefaultRdAtomic"/>.</summary>
    public byte MaxRdAtomic { get; }

    /// <summary>Opens the device named in <paramref name="options"/> (or the first), after probing that one exists.</summary>
    public static VerbsDeviceContext Open(VerbsOptions options)
    {
        var probe = VerbsDevices.Probe();
        if (!probe.IsAvailable)
        {
            throw new FabricException(FabricStatus.Unreachable, probe.Message);
        }

        int count = 0;
        var list = ibv_get_device_list(&count);
        if (list is null)
        {
            throw Failure("ibv_get_device_list");
        }

        ibv_context* context = null;
        string name = "";
        try
        {
            for (int i = 0; i < count && context is null; i++)
            {
                string candidate = Utf8(ibv_get_device_name(list[i]));
                if (options.DeviceName is null || options.DeviceName == candidate)
                {
                    name = candidate;
                    context = ibv_open_device(list[i]);
                    if (context is null)
                    {
                        throw Failure($"ibv_open_device({candidate})");
                    }
                }
            }
        }
        finally
        {
            ibv_free_device_list(list);
        }

        if (context is null)
        {
            throw new FabricException(FabricStatus.Unreachable, $"RDMA device '{options.DeviceName}' not found; {probe.Message}");
        }

        ibv_pd* pd = null;
        try
        {
            ibv_device_attr device = default;
            Check(ibv_query_device(context, &device), "ibv_query_device");

            // The exported ibv_query_port fills the compat prefix only; zeroing first is what the header's inline does.
            ibv_port_attr port = default;
            Check(ibv_query_port(context, options.PortNumber, &port), $"ibv_query_port(port {options.PortNumber})");
            if (port.state != ibv_port_state.IBV_PORT_ACTIVE)
            {
                throw new FabricException(FabricStatus.Unreachable, $"RDMA device {name} port {options.PortNumber} is {port.state}, not IBV_PORT_ACTIVE (check the link: ibv_devinfo)");
            }

            ibv_gid gid = default;
            Check(ibv_query_gid(context, options.PortNumber, options.GidIndex, &gid), $"ibv_query_gid(port {options.PortNumber}, index {options.GidIndex})");
            pd = ibv_alloc_pd(context);
            if (pd is null)
            {
                throw Failure("ibv_alloc_pd");
            }

            byte rdAtomic = (byte)Math.Clamp(Math.Min(device.max_qp_rd_atom, device.max_qp_init_rd_atom), 1, VerbsQpTransitions.DefaultRdAtomic);
            return new VerbsDeviceContext(context, pd, name, options.PortNumber, options.GidIndex, port.lid, VerbsGid.FromBytes(new ReadOnlySpan<byte>(gid.raw, 16)), port.active_mtu, rdAtomic);
        }
        catch
        {
            if (pd is not null)
            {
                ibv_dealloc_pd(pd);
            }

            ibv_close_device(context);
            throw;
        }
    }

    /// <summary>Registers [address, address + length) with <paramref name="access"/>.</summary>
    public VerbsMemoryRegion Register(nint address, long length, ibv_access_flags access)
    {
        var mr = ibv_reg_mr(Pd, (void*)address, (nuint)length, (int)access);
        if (mr is null)
        {
            throw Failure($"ibv_reg_mr(0x{address:x}, {length} bytes, {access})");
        }

        return new VerbsMemoryRegion(mr);
    }

    public void Dispose()
    {
        if (Pd is not null)
        {
            ibv_dealloc_pd(Pd);
            Pd = null;
        }

        if (Context is not null)
        {
            ibv_close_device(Context);
            Context = null;
        }
    }

    internal static void Check(int result, string call)
    {
        if (result != 0)
        {
            // Verbs return an errno value (or -1 with errno set): report both, one of them is the cause.
            throw new FabricException(FabricStatus.Unreachable, $"{call} failed: returned {result}, errno {Marshal.GetLastSystemError()}");
        }
    }

    internal static FabricException Failure(string call) =>
        new(FabricStatus.Unreachable, $"{call} failed: errno {Marshal.GetLastSystemError()}");
}

/// <summary>A registered memory region; disposal deregisters it, which revokes its rkey at once.</summary>
internal sealed unsafe class VerbsMemoryRegion(ibv_mr* mr) : IDisposable
{
    private ibv_mr* _mr = mr;

    public uint Lkey { get; } = mr->lkey;

    public uint Rkey { get; } = mr->rkey;

    public ulong Address { get; } = (ulong)mr->addr;

    public void Dispose()
    {
        if (_mr is not null)
        {
            ibv_dereg_mr(_mr);
            _mr = null;
        }
    }
}

/// <summary>An RC queue pair with its own completion queue.</summary>
internal sealed unsafe class VerbsQueuePair : IDisposable
{
    private readonly VerbsDeviceContext _device;

    private VerbsQueuePair(VerbsDeviceContext device, ibv_cq* cq, ibv_qp* qp, uint psn, uint maxInline)
    {
        _device = device;
        Cq = cq;
        Qp = qp;
        Psn = psn;
        MaxInlineData = maxInline;
    }

    public ibv_cq* Cq { get; private set; }

    public ibv_qp* Qp { get; private set; }

    public uint Psn { get; }

    public uint MaxInlineData { get; }

    public VerbsQpAddress Address => new(Qp->qp_num, Psn, _device.Lid, _device.Gid);

    public static VerbsQueuePair Create(VerbsDeviceContext device, int sendQueueDepth)
    {
        // Twice the send queue: when the QP enters the error state every outstanding request, signaled or not, is
        // flushed with a completion, and an overflowing CQ would turn one failure into an asynchronous fatal event.
        int cqe = 2 * sendQueueDepth;
        var cq = ibv_create_cq(device.Context, cqe, null, null, 0);
        if (cq is null)
        {
            throw VerbsDeviceContext.Failure($"ibv_create_cq({cqe})");
        }

        ibv_qp_init_attr init = default;
        init.send_cq = cq;
        init.recv_cq = cq;
        init.qp_type = ibv_qp_type.IBV_QPT_RC;
        init.sq_sig_all = 0; // signaling is chosen per work request
        init.cap.max_send_wr = (uint)sendQueueDepth;
        init.cap.max_recv_wr = 1;
        init.cap.max_send_sge = 1;
        init.cap.max_recv_sge = 1;
        init.cap.max_inline_data = 64;
        var qp = ibv_create_qp(device.Pd, &init);
        if (qp is null)
        {
            ibv_destroy_cq(cq);
            throw VerbsDeviceContext.Failure("ibv_create_qp(RC)");
        }

        // A random 24-bit starting PSN, so that a stale packet from a previous incarnation is not taken as current.
        return new VerbsQueuePair(device, cq, qp, (uint)Random.Shared.Next(1 << 24), init.cap.max_inline_data);
    }

    public void Connect(VerbsQpAddress remote, ibv_access_flags remoteAccess)
    {
        var init = VerbsQpTransitions.Init(_device.PortNumber, remoteAccess);
        VerbsDeviceContext.Check(ibv_modify_qp(Qp, &init, VerbsQpTransitions.InitMask), "ibv_modify_qp(INIT)");
        var rtr = VerbsQpTransitions.ReadyToReceive(remote, _device.ActiveMtu, _device.PortNumber, _device.GidIndex, _device.MaxRdAtomic);
        VerbsDeviceContext.Check(ibv_modify_qp(Qp, &rtr, VerbsQpTransitions.RtrMask), "ibv_modify_qp(RTR)");
        var rts = VerbsQpTransitions.ReadyToSend(Psn, _device.MaxRdAtomic);
        VerbsDeviceContext.Check(ibv_modify_qp(Qp, &rts, VerbsQpTransitions.RtsMask), "ibv_modify_qp(RTS)");
    }

    public void Dispose()
    {
        if (Qp is not null)
        {
            ibv_destroy_qp(Qp);
            Qp = null;
        }

        if (Cq is not null)
        {
            ibv_destroy_cq(Cq);
            Cq = null;
        }
    }
}
