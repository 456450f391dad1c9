using System.Net.NetworkInformation;
using System.Runtime.InteropServices;
using RAllocator.Fabric.Verbs.Interop;

namespace RAllocator.Fabric.Verbs;

/// <summary>
/// Finds out whether this machine can run the verbs fabric, and if not, says what was checked and what to do instead.
/// <c>rallocator serve --fabric verbs</c> and <c>bench --fabric verbs</c> call <see cref="Probe()"/> first and exit
/// with <see cref="VerbsProbeResult.Message"/> when <see cref="VerbsProbeResult.IsAvailable"/> is false.
/// </summary>
public static class VerbsDevices
{
    /// <summary>Where the kernel lists RDMA devices.</summary>
    public const string SysfsClassPath = "/sys/class/infiniband";

    /// <summary>Probes libibverbs and the kernel for RDMA devices. Never throws; never opens a device.</summary>
    public static VerbsProbeResult Probe() => Probe(SystemVerbsEnvironment.Instance);

    internal static VerbsProbeResult Probe(IVerbsEnvironment environment)
    {
        string sysfs = environment.SysfsDevices() switch
        {
            null => $"{SysfsClassPath} (absent)",
            { Count: 0 } => $"{SysfsClassPath} (present, empty)",
            var entries => $"{SysfsClassPath} (present: {string.Join(", ", entries)})",
        };
        string alternatives = "use --fabric ucx (UCX over TCP or shared memory) or load Soft-RoCE: modprobe rdma_rxe; "
            + $"rdma link add rxe0 type rxe netdev {environment.DefaultNetdev()}";

        var listed = environment.ListDevices();
        if (listed.LoadError is not null)
        {
            return new VerbsProbeResult(false, [],
                $"no RDMA device found: {IbVerbs.Library} cannot be loaded ({listed.LoadError}); install it with: "
                + $"apt-get install -y {IbVerbs.RuntimePackage}. Checked: {sysfs}; {alternatives}");
        }

        if (listed.Devices.Count == 0)
        {
            return new VerbsProbeResult(false, [],
                $"no RDMA device found: checked ibv_get_device_list (0 devices) and {sysfs}; {alternatives}");
        }

        return new VerbsProbeResult(true, listed.Devices,
            $"found {listed.Devices.Count} RDMA device(s) with ibv_get_device_list: {string.Join(", ", listed.Devices)}");
    }
}

/// <summary>The outcome of <see cref="VerbsDevices.Probe()"/>.</summary>
/// <param name="IsAvailable">True when libibverbs loads and lists at least one device.</param>
/// <param name="DeviceNames">The devices ibv_get_device_list returned (empty when unavailable).</param>
/// <param name="Message">What was found, or why the verbs fabric cannot run and what to use instead.</param>
public sealed record VerbsProbeResult(bool IsAvailable, IReadOnlyList<string> DeviceNames, string Message);

/// <summary>What the probe looks at, injectable so that every branch is tested on a machine without devices.</summary>
internal interface IVerbsEnvironment
{
    /// <summary>The devices libibverbs lists, or the reason the library cannot be loaded.</summary>
    (IReadOnlyList<string> Devices, string? LoadError) ListDevices();

    /// <summary>Entries of /sys/class/infiniband, or null when it does not exist.</summary>
    IReadOnlyList<string>? SysfsDevices();

    /// <summary>The network interface a Soft-RoCE link would sit on.</summary>
    string DefaultNetdev();
}

/// <summary>The real machine.</summary>
internal sealed unsafe class SystemVerbsEnvironment : IVerbsEnvironment
{
    public static readonly SystemVerbsEnvironment Instance = new();

    public (IReadOnlyList<string> Devices, string? LoadError) ListDevices()
    {
        // Loaded explicitly first so that a missing library is a message, not a DllNotFoundException at the first call.
        if (!NativeLibrary.TryLoad(IbVerbs.Library, typeof(IbVerbs).Assembly, null, out _))
        {
            return ([], $"dlopen of {IbVerbs.Library} failed");
        }

        int count = 0;
        var list = IbVerbs.ibv_get_device_list(&count);
        if (list is null)
        {
            // libibverbs returns NULL (errno ENOSYS) when the kernel has no uverbs support at all: no devices.
            return ([], null);
        }

        try
        {
            var names = new List<string>(count);
            for (int i = 0; i < count; i++)
            {
                names.Add(IbVerbs.Utf8(IbVerbs.ibv_get_device_name(list[i])));
            }

            return (names, null);
        }
        finally
        {
            IbVerbs.ibv_free_device_list(list);
        }
    }

    public IReadOnlyList<string>? SysfsDevices() =>
        Directory.Exists(VerbsDevices.SysfsClassPath)
            ? Directory.GetFileSystemEntries(VerbsDevices.SysfsClassPath).Select(static entry => Path.GetFileName(entry)).Order(StringComparer.Ordinal).ToList()
            : null;

    public string DefaultNetdev()
    {
        try
        {
            return NetworkInterface.GetAllNetworkInterfaces()
                .Where(n => n.NetworkInterfaceType != NetworkInterfaceType.Loopback && n.OperationalStatus == OperationalStatus.Up)
                .Select(n => n.Name)
                .FirstOrDefault() ?? "eth0";
        }
        catch (NetworkInformationException)
        {
            return "eth0";
        }
    }
}
