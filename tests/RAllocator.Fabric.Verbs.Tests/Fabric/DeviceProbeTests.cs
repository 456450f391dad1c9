using static RAllocator.Fabric.Verbs.Interop.IbVerbs;

namespace RAllocator.Fabric.Verbs.Tests;

/// <summary>The device probe's diagnostics on every branch, and the completion-status mapping.</summary>
public sealed class DeviceProbeTests
{
    [Fact]
    public void NoDeviceSaysWhatWasCheckedAndHowToUseUcxOrSoftRoce()
    {
        var result = VerbsDevices.Probe(new FakeEnvironment([], null, null));

        result.IsAvailable.ShouldBeFalse();
        result.Message.ShouldBe("no RDMA device found: checked ibv_get_device_list (0 devices) and /sys/class/infiniband (absent); "
            + "use --fabric ucx (UCX over TCP or shared memory) or load Soft-RoCE: modprobe rdma_rxe; rdma link add rxe0 type rxe netdev eth0");
    }

    [Fact]
    public void AnUnloadableLibraryNamesTheLibraryAndThePackage()
    {
        var result = VerbsDevices.Probe(new FakeEnvironment([], "dlopen of libibverbs.so.1 failed", ["mlx5_0"]));

        result.IsAvailable.ShouldBeFalse();
        result.Message.ShouldStartWith("no RDMA device found: libibverbs.so.1 cannot be loaded (dlopen of libibverbs.so.1 failed); install it with: apt-get install -y libibverbs1 ibverbs-providers.");
        result.Message.ShouldContain("/sys/class/infiniband (present: mlx5_0)");
        result.Message.ShouldContain("use --fabric ucx");
    }

    [Fact]
    public void ListedDevicesMakeTheFabricAvailable()
    {
        var result = VerbsDevices.Probe(new FakeEnvironment(["rxe0", "mlx5_1"], null, ["rxe0"]));

        result.IsAvailable.ShouldBeTrue();
        result.DeviceNames.ShouldBe(["rxe0", "mlx5_1"]);
        result.Message.ShouldBe("found 2 RDMA device(s) with ibv_get_device_list: rxe0, mlx5_1");
    }

    [Fact]
    public void TheRealProbeOnThisMachineAgreesWithSysfs()
    {
        // Runs everywhere: on a machine without devices (these CI machines) it must say so, never throw.
        var result = VerbsDevices.Probe();

        result.Message.ShouldNotBeNullOrWhiteSpace();
        if (!Directory.Exists(VerbsDevices.SysfsClassPath))
        {
            result.IsAvailable.ShouldBeFalse();
            result.Message.ShouldContain("no RDMA device found");
            result.Message.ShouldContain("/sys/class/infiniband (absent)");
        }
    }

    [Theory]
    [InlineData((int)ibv_wc_status.IBV_WC_SUCCESS, FabricStatus.Success)]
    [InlineData((int)ibv_wc_status.IBV_WC_REM_ACCESS_ERR, FabricStatus.RemoteAccessError)]
    [InlineData((int)ibv_wc_status.IBV_WC_REM_INV_REQ_ERR, FabricStatus.RemoteAccessError)]
    [InlineData((int)ibv_wc_status.IBV_WC_LOC_PROT_ERR, FabricStatus.RemoteAccessError)]
    [InlineData((int)ibv_wc_status.IBV_WC_REM_OP_ERR, FabricStatus.RemoteAccessError)]
    [InlineData((int)ibv_wc_status.IBV_WC_RETRY_EXC_ERR, FabricStatus.Unreachable)]
    [InlineData((int)ibv_wc_status.IBV_WC_WR_FLUSH_ERR, FabricStatus.Unreachable)]
    [InlineData((int)ibv_wc_status.IBV_WC_FATAL_ERR, FabricStatus.Unreachable)]
    [InlineData(999, FabricStatus.Unreachable)]
    public void CompletionStatusesMapToFabricStatuses(int status, FabricStatus expected)
    {
        VerbsCompletionStatus.ToFabricStatus((ibv_wc_status)status).ShouldBe(expected);
    }

    [Fact]
    public void StatusNamesAreTheCNames()
    {
        VerbsCompletionStatus.Name(ibv_wc_status.IBV_WC_REM_ACCESS_ERR).ShouldBe("IBV_WC_REM_ACCESS_ERR");
        VerbsCompletionStatus.Name((ibv_wc_status)999).ShouldBe("ibv_wc_status 999");
    }

    private sealed class FakeEnvironment(IReadOnlyList<string> devices, string? loadError, IReadOnlyList<string>? sysfs) : IVerbsEnvironment
    {
        public (IReadOnlyList<string> Devices, string? LoadError) ListDevices() => (devices, loadError);

        public IReadOnlyList<string>? SysfsDevices() => sysfs;

        public string DefaultNetdev() => "eth0";
    }
}
