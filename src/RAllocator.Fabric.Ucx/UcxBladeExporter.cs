using System.Diagnostics;
using System.Globalization;
using RAllocator.Fabric.Ucx.Interop;
using RAllocator.Nvm;

namespace RAllocator.Fabric.Ucx;

/// <summary>
/// The blade side of the UCX fabric: registers the blade's NVM mapping with UCX, hands each connecting node the
/// remote keys for its ranges (<see cref="RegisterNode"/>), and progresses the blade's worker on a thread of its own.
/// </summary>
/// <remarks>
/// <para><b>Why a progress thread.</b> On InfiniBand/RoCE the NIC executes READ, WRITE and the atomics against the
/// registered memory with no blade CPU. Over TCP, and over shared memory on program-owned (file-mapped) memory, UCX
/// emulates them with messages that the blade's worker must receive and execute. The thread polls for
/// <see cref="UcxOptions.BladeSpinBeforeSleep"/> after the last event, then sleeps on the worker's event fd; its CPU
/// time is <see cref="ProgressThreadCpuTime"/>, the honest cost of the emulation.</para>
/// <para><b>Registrations.</b> The whole region is registered once, for remote read only: its key lets every node READ anywhere. Each
/// writable range of a node's <see cref="FabricAccess"/> gets a registration of its own, shared (reference-counted)
/// between nodes granted the same range, such as the sequencer word and the data area.</para>
/// <para>The exporter does not own the mapping: keep it (and its <see cref="MappedFilePin"/>) alive until after
/// <see cref="Dispose"/>.</para>
/// </remarks>
public sealed unsafe class UcxBladeExporter : IDisposable
{
    private static readonly long s_clockTicksPerSecond = ReadClockTicksPerSecond();

    private readonly Lock _gate = new();
    private readonly UcxWorkerContext _ucx;
    private readonly nint _baseAddress;
    private readonly Dictionary<FabricRange, Registration> _registrations = [];
    private readonly Registration _wholeRegion;
    private readonly Thread _progressThread;
    private readonly long _spinTicks;
    private readonly int _eventFd;
    private volatile bool _stopping;
    private volatile int _progressThreadId;
    private bool _disposed;

    private UcxBladeExporter(nint baseAddress, long length, UcxOptions options)
    {
        _baseAddress = baseAddress;
        RegionLength = length;
        Options = options;
        _spinTicks = (long)(options.BladeSpinBeforeSleep.TotalSeconds * Stopwatch.Frequency);
        _ucx = UcxWorkerContext.Create(options, Ucp.UCP_FEATURE_RMA | Ucp.UCP_FEATURE_AMO64 | Ucp.UCP_FEATURE_WAKEUP, "rallocator-blade");
        try
        {
            int eventFd;
            UcxException.ThrowIfFailed(Ucp.ucp_worker_get_efd(_ucx.Worker, &eventFd), "ucp_worker_get_efd");
            _eventFd = eventFd;
            WorkerAddress = _ucx.GetWorkerAddress();
            _wholeRegion = Map(new FabricRange(0, length), writable: false);
        }
        catch
        {
            _ucx.Dispose();
            throw;
        }

        _progressThread = new Thread(RunProgressLoop) { IsBackground = true, Name = "UCX blade progress" };
        _progressThread.Start();
    }

    /// <summary>The blade worker's UCX address; nodes create their endpoint from it.</summary>
    public byte[] WorkerAddress { get; }

    /// <summary>Bytes of the exported region.</summary>
    public long RegionLength { get; }

    /// <summary>The configuration of the blade's context.</summary>
    public UcxOptions Options { get; }

    /// <summary>Registrations currently held: the whole region's read-only one plus every distinct granted writable range.</summary>
    public int RegistrationCount
    {
        get
        {
            lock (_gate)
            {
                return 1 + _registrations.Count;
            }
        }
    }

    /// <summary>
    /// CPU time (user + system) the progress thread has consumed: what emulating one-sided verbs costs the blade
    /// on this transport. Read from /proc/self/task/&lt;tid&gt;/stat, so its resolution is the kernel clock tick (10 ms).
    /// </summary>
    public TimeSpan ProgressThreadCpuTime => ReadThreadCpuTime(_progressThreadId);

    /// <summary>Exports a pinned <see cref="MappedFileNvm"/> mapping (null <paramref name="options"/>: defaults).</summary>
    /// <exception cref="UcxUnavailableException">UCX is not installed.</exception>
    /// <exception cref="UcxException">UCX refused to create the context, the worker or the registration.</exception>
    public static UcxBladeExporter Create(MappedFilePin pin, UcxOptions? options)
    {
        ArgumentNullException.ThrowIfNull(pin);
        return Create(pin.BaseAddress, pin.Length, options);
    }

    /// <summary>Exports <paramref name="length"/> bytes of program-owned memory at <paramref name="baseAddress"/> (null <paramref name="options"/>: defaults).</summary>
    /// <exception cref="UcxUnavailableException">UCX is not installed.</exception>
    /// <exception cref="UcxException">UCX refused to create the context, the worker or the registration.</exception>
    public static UcxBladeExporter Create(nint baseAddress, long length, UcxOptions? options)
    {
        ArgumentOutOfRangeException.ThrowIfZero(baseAddress);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(length);
        options ??= new UcxOptions();
        options.Validate();
        return new UcxBladeExporter(baseAddress, length, options);
    }

    /// <summary>
    /// Registers what one node may access: a read-only key for the whole region and one key per writable range of
    /// <paramref name="access"/> (the whole region, writable, for <see cref="FabricAccess.Unrestricted"/>). Send
    /// <see cref="UcxNodeRegistration.ConnectionInfo"/> to the node; dispose the registration when the node leaves.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">A writable range extends past the region.</exception>
    /// <exception cref="ObjectDisposedException">The exporter was disposed.</exception>
    public UcxNodeRegistration RegisterNode(FabricAccess access)
    {
        ArgumentNullException.ThrowIfNull(access);
        foreach (var range in access.WritableRanges)
        {
            if (range.End > RegionLength)
            {
                throw new ArgumentOutOfRangeException(nameof(access), $"Writable range {range} extends past the blade region [0x0, 0x{RegionLength:x}); a registration must lie inside the region.");
            }
        }

        var writable = access.IsUnrestricted
            ? [new FabricRange(0, RegionLength)]
            // Zero-length ranges register nothing UCX would accept, and a key to no bytes grants nothing.
            : access.WritableRanges.Where(range => range.Length > 0).Distinct().ToArray();

        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var acquired = new List<Registration>(writable.Length);
            try
            {
                foreach (var range in writable)
                {
                    if (!_registrations.TryGetValue(range, out var registration))
                    {
                        registration = Map(range, writable: true);
                        _registrations.Add(range, registration);
                    }

                    registration.References++;
                    acquired.Add(registration);
                }
            }
            catch
            {
                ReleaseLocked(acquired);
                throw;
            }

            var ranges = new List<UcxRemoteRange>(acquired.Count + 1);
            if (!access.IsUnrestricted)
            {
                ranges.Add(_wholeRegion.ToRemoteRange(writable: false));
            }

            ranges.AddRange(acquired.Select(registration => registration.ToRemoteRange(writable: true)));
            return new UcxNodeRegistration(this, acquired, new UcxConnectionInfo(WorkerAddress, RegionLength, ranges));
        }
    }

    /// <summary>Stops the progress thread and releases every registration and the UCX context. Idempotent.</summary>
    /// <remarks>Nodes still connected see their operations fail with <see cref="FabricStatus.Unreachable"/>, at once
    /// over TCP and after their <see cref="UcxOptions.OperationTimeout"/> over shared memory.</remarks>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            _stopping = true;
            Ucp.ucp_worker_signal(_ucx.Worker);
        }

        _progressThread.Join();
        lock (_gate)
        {
            foreach (var registration in _registrations.Values.Append(_wholeRegion))
            {
                Ucp.ucp_mem_unmap(_ucx.Context, registration.MemoryHandle);
            }

            _registrations.Clear();
            _ucx.Dispose();
        }
    }

    internal void Release(IReadOnlyList<Registration> registrations)
    {
        lock (_gate)
        {
            if (!_disposed)
            {
                ReleaseLocked(registrations);
            }
        }
    }

    private void ReleaseLocked(IReadOnlyList<Registration> registrations)
    {
        foreach (var registration in registrations)
        {
            if (--registration.References == 0)
            {
                _registrations.Remove(registration.Range);
                Ucp.ucp_mem_unmap(_ucx.Context, registration.MemoryHandle);
            }
        }
    }

    private Registration Map(FabricRange range, bool writable)
    {
        var address = _baseAddress + (nint)range.Offset;
        var mapParams = new Ucp.MemoryMapParams
        {
            FieldMask = Ucp.UCP_MEM_MAP_PARAM_FIELD_ADDRESS | Ucp.UCP_MEM_MAP_PARAM_FIELD_LENGTH
                | Ucp.UCP_MEM_MAP_PARAM_FIELD_PROT | Ucp.UCP_MEM_MAP_PARAM_FIELD_MEMORY_TYPE,
            Address = (void*)address,
            Length = (nuint)range.Length,
            // The read key's registration refuses remote writes where the transport checks (RDMA hardware).
            Protection = Ucp.UCP_MEM_MAP_PROT_LOCAL_READ | Ucp.UCP_MEM_MAP_PROT_LOCAL_WRITE | Ucp.UCP_MEM_MAP_PROT_REMOTE_READ
                | (writable ? Ucp.UCP_MEM_MAP_PROT_REMOTE_WRITE : 0),
            MemoryType = Ucp.UCS_MEMORY_TYPE_HOST,
        };
        nint memoryHandle;
        UcxException.ThrowIfFailed(Ucp.ucp_mem_map(_ucx.Context, &mapParams, &memoryHandle), $"ucp_mem_map({range})");
        try
        {
            void* keyBuffer;
            nuint keySize;
            UcxException.ThrowIfFailed(Ucp.ucp_rkey_pack(_ucx.Context, memoryHandle, &keyBuffer, &keySize), $"ucp_rkey_pack({range})");
            var packedKey = new ReadOnlySpan<byte>(keyBuffer, checked((int)keySize)).ToArray();
            Ucp.ucp_rkey_buffer_release(keyBuffer);
            return new Registration(range, memoryHandle, (ulong)address, packedKey);
        }
        catch
        {
            Ucp.ucp_mem_unmap(_ucx.Context, memoryHandle);
            throw;
        }
    }

    private void RunProgressLoop()
    {
        _progressThreadId = Libc.gettid();
        var lastEvent = Stopwatch.GetTimestamp();
        while (!_stopping)
        {
            uint progressed;
            lock (_gate)
            {
                progressed = Ucp.ucp_worker_progress(_ucx.Worker);
            }

            if (progressed != 0)
            {
                lastEvent = Stopwatch.GetTimestamp();
                continue;
            }

            if (Stopwatch.GetTimestamp() - lastEvent < _spinTicks)
            {
                Thread.SpinWait(8);
                continue;
            }

            sbyte armed;
            lock (_gate)
            {
                armed = _stopping ? Ucs.UCS_ERR_CANCELED : Ucp.ucp_worker_arm(_ucx.Worker);
            }

            if (armed == Ucs.UCS_OK)
            {
                // The timeout is only a backstop for Dispose: ucp_worker_signal wakes the poll at once.
                var descriptor = new Libc.PollFd { Fd = _eventFd, Events = Libc.POLLIN };
                Libc.poll(&descriptor, 1, 1000);
            }

            // UCS_ERR_BUSY: events arrived while arming; progress them before sleeping.
            lastEvent = Stopwatch.GetTimestamp();
        }
    }

    private static TimeSpan ReadThreadCpuTime(int threadId)
    {
        if (threadId == 0)
        {
            return TimeSpan.Zero;
        }

        string stat;
        try
        {
            stat = File.ReadAllText($"/proc/self/task/{threadId}/stat");
        }
        catch (IOException)
        {
            // The thread has exited: its time is no longer reported per task.
            return TimeSpan.Zero;
        }

        // Fields after the parenthesised command name (which may itself hold spaces): state is field 3, so utime
        // (field 14) and stime (field 15) are the 12th and 13th after it.
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        var ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
        return TimeSpan.FromSeconds((double)ticks / s_clockTicksPerSecond);
    }

    private static long ReadClockTicksPerSecond()
    {
        var ticks = Libc.sysconf(Libc.SC_CLK_TCK);
        return ticks > 0 ? ticks : 100;
    }

    /// <summary>One ucp_mem_map of a range, shared by every node granted exactly that range.</summary>
    internal sealed class Registration(FabricRange range, nint memoryHandle, ulong remoteAddress, byte[] packedKey)
    {
        public FabricRange Range { get; } = range;

        public nint MemoryHandle { get; } = memoryHandle;

        public int References { get; set; }

        public UcxRemoteRange ToRemoteRange(bool writable) => new(Range.Offset, Range.Length, writable, remoteAddress, packedKey);
    }
}

/// <summary>
/// The registrations a blade made for one node (<see cref="UcxBladeExporter.RegisterNode"/>). Disposing it
/// releases them, so the node's keys stop working once no other node shares them.
/// </summary>
public sealed class UcxNodeRegistration : IDisposable
{
    private readonly UcxBladeExporter _exporter;
    private IReadOnlyList<UcxBladeExporter.Registration>? _registrations;

    internal UcxNodeRegistration(UcxBladeExporter exporter, IReadOnlyList<UcxBladeExporter.Registration> registrations, UcxConnectionInfo connectionInfo)
    {
        _exporter = exporter;
        _registrations = registrations;
        ConnectionInfo = connectionInfo;
    }

    /// <summary>What to send to the node: <c>ConnectionInfo.ToBytes()</c>, then <see cref="UcxConnection.Connect"/> there.</summary>
    public UcxConnectionInfo ConnectionInfo { get; }

    /// <summary>Releases this node's registrations. Idempotent.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _registrations, null) is { } registrations)
        {
            _exporter.Release(registrations);
        }
    }
}
