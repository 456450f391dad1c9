using System.Reflection;
using System.Runtime.InteropServices;
using RAllocator.Fabric.Verbs.Interop;
using RAllocator.Fabric.Verbs.Tests.Generator;
using RAllocator.Fabric.Verbs.Tests.Layout;

namespace RAllocator.Fabric.Verbs.Tests;

/// <summary>
/// The generated bindings against the installed rdma-core headers and library: no device needed, so these always run.
/// </summary>
public sealed class HeaderLayoutTests
{
    private const string Header = "infiniband/verbs.h";

    [Fact]
    public void EveryBoundStructFieldAndEnumValueMatchesTheInstalledHeader()
    {
        string[] header = NativeProbe.CompileAndRun(IbVerbs.ProbeSource, Header);
        string[] bindings = IbVerbs.MeasureLayout();

        header.Length.ShouldBeGreaterThan(300, "the probe prints one line per bound member and enum value");
        var differences = LayoutComparison.Compare(header, bindings);
        differences.ShouldBeEmpty("the generated layout must equal what gcc computes from <infiniband/verbs.h>:\n" + string.Join("\n", differences));
    }

    [Fact]
    public void TheOpsTableSlotsTheInlineFunctionsCallSitAtTheHeadersOffsets()
    {
        string[] header = NativeProbe.CompileAndRun(IbVerbs.ProbeSource, Header);

        // Named here so that a declaration dropping one of them cannot pass by printing fewer lines.
        foreach (string slot in new[] { "ibv_context.ops", "ibv_context_ops.post_send", "ibv_context_ops.post_recv", "ibv_context_ops.poll_cq", "ibv_qp.context", "ibv_cq.context" })
        {
            header.ShouldContain(line => line.StartsWith($"layout {slot} ", StringComparison.Ordinal), $"the probe checks {slot}");
        }
    }

    [Fact]
    public void APlantedLayoutErrorInTheDeclarationIsReportedByMemberWithBothValues()
    {
        // rkey widened to 64 bits in the rdma member of ibv_send_wr's wr union: what a careless edit would do.
        string planted = GeneratorHarness.RealBindings.Replace(
            "    struct rdma\n      u64 remote_addr\n      u32 rkey\n", "    struct rdma\n      u64 remote_addr\n      u64 rkey\n", StringComparison.Ordinal);
        planted.ShouldNotBe(GeneratorHarness.RealBindings, "the planted edit must apply to the declaration file");
        var run = GeneratorHarness.Run(planted, "/repo/Interop/ibverbs.bindings");
        run.Diagnostics.ShouldBeEmpty();
        var generatedType = run.Load().GetType("RAllocator.Fabric.Verbs.Interop.IbVerbs", throwOnError: true)!;
        string probe = (string)generatedType.GetField("ProbeSource", BindingFlags.NonPublic | BindingFlags.Static)!.GetValue(null)!;
        string[] measured = (string[])generatedType.GetMethod("MeasureLayout", BindingFlags.NonPublic | BindingFlags.Static)!.Invoke(null, null)!;

        var differences = LayoutComparison.Compare(NativeProbe.CompileAndRun(probe, Header), measured);

        differences.ShouldContain("layout ibv_send_wr.wr.rdma.rkey: header has offset 48 size 4, bindings have offset 48 size 8");
    }

    [Fact]
    public void ComparisonNamesMissingAndExtraMembersOnBothSides()
    {
        var differences = LayoutComparison.Compare(
            ["layout ibv_sge 0 16", "layout ibv_sge.lkey 12 4", "value IBV_MTU_256 1"],
            ["layout ibv_sge 0 16", "layout ibv_sge.length 8 4", "value IBV_MTU_256 2"]);

        differences.ShouldBe(
        [
            "layout ibv_sge.lkey: the probe printed it (offset 12 size 4) but the bindings do not measure it",
            "value IBV_MTU_256: header has value 1, bindings have value 2",
            "layout ibv_sge.length: the bindings measure it (offset 8 size 4) but the probe did not print it",
        ]);
    }

    [Fact]
    public void EveryImportedFunctionIsExportedByTheInstalledLibrary()
    {
        if (!NativeLibrary.TryLoad(IbVerbs.Library, out nint library))
        {
            throw new Xunit.Sdk.XunitException($"{IbVerbs.Library} cannot be loaded; install it with: apt-get install -y {IbVerbs.RuntimePackage} {IbVerbs.DevelopmentPackage}");
        }

        try
        {
            var missing = IbVerbs.EntryPoints.Where(name => !NativeLibrary.TryGetExport(library, name, out _)).ToList();
            IbVerbs.EntryPoints.ShouldContain("ibv_query_port");
            missing.ShouldBeEmpty("every DllImport must name a symbol the library exports (nm -D), not a header macro or inline");
        }
        finally
        {
            NativeLibrary.Free(library);
        }
    }
}
