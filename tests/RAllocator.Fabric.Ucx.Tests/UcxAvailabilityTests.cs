namespace RAllocator.Fabric.Ucx.Tests;

public sealed class UcxAvailabilityTests
{
    [Fact]
    public void Ucx_is_available_on_this_machine_in_a_supported_version()
    {
        UcxAvailability.UnavailableReason.ShouldBeNull();
        UcxAvailability.IsAvailable.ShouldBeTrue();
        Version.Parse(UcxAvailability.Version!).ShouldBeGreaterThanOrEqualTo(new Version(1, 13));
    }

    [Fact]
    public void A_missing_library_is_named_with_the_package_that_installs_it()
    {
        var reason = UcxAvailability.ProbeLibraries(["libucs.so.0", "libucp-not-installed.so.0"]);

        reason.ShouldNotBeNull();
        reason.ShouldContain("libucp-not-installed.so.0 cannot be loaded");
        reason.ShouldContain("apt-get install libucx0");
    }
}
