using RAllocator.Generators.Verbs;

namespace RAllocator.Fabric.Verbs.Tests.Generator;

/// <summary>The generated bindings of the repository's declaration file, against Expected/*.txt.</summary>
public sealed class GeneratorSnapshotTests
{
    private const string BindingsHint = "RAllocator.Fabric.Verbs.Interop.IbVerbs.g.cs";
    private const string LayoutHint = "RAllocator.Fabric.Verbs.Interop.IbVerbs.Layout.g.cs";

    [Theory]
    [InlineData(BindingsHint)]
    [InlineData(LayoutHint)]
    public void GeneratedSourceOfTheRealDeclarationMatchesTheExpectedFile(string hintName)
    {
        var run = GeneratorHarness.Run(GeneratorHarness.RealBindings, "/repo/src/RAllocator.Fabric.Verbs/Interop/ibverbs.bindings");

        run.GeneratedSources.Keys.Order(StringComparer.Ordinal).ShouldBe([LayoutHint, BindingsHint]);
        ExpectedFiles.Match(run.GeneratedSources[hintName], hintName + ".txt");
    }

    [Fact]
    public void GeneratedSourceCompilesWithoutErrorsOrWarnings()
    {
        var run = GeneratorHarness.Run(GeneratorHarness.RealBindings);

        run.Diagnostics.ShouldBeEmpty();
        run.OutputProblems.Select(d => d.ToString()).ShouldBeEmpty("the generated code must build under TreatWarningsAsErrors with documentation on");
    }

    [Fact]
    public void NestedUnionsBecomeMemberTypesAndAnonymousUnionsShareTheirOffset()
    {
        var run = GeneratorHarness.Run(GeneratorHarness.RealBindings);
        string bindings = run.GeneratedSources[BindingsHint];

        bindings.ShouldContain("[FieldOffset(36)] public uint imm_data;");
        bindings.ShouldContain("[FieldOffset(36)] public uint invalidate_rkey;");
        bindings.ShouldContain("[FieldOffset(40)] public ibv_send_wr_wr wr;");
        bindings.ShouldContain("internal unsafe partial struct ibv_send_wr_wr_atomic");
        bindings.ShouldContain("[FieldOffset(80)] public ibv_send_wr_bind_mw bind_mw;");
        bindings.ShouldContain("[FieldOffset(80)] public ibv_send_wr_tso tso;");
        bindings.ShouldContain("[StructLayout(LayoutKind.Explicit, Size = 128)]\n    internal unsafe partial struct ibv_send_wr\n");
    }

    [Fact]
    public void InlineFunctionsCallThroughTheOpsTableAndImportsUseTheExportedSymbol()
    {
        var run = GeneratorHarness.Run(GeneratorHarness.RealBindings);
        string bindings = run.GeneratedSources[BindingsHint];

        bindings.ShouldContain("internal static int ibv_post_send(ibv_qp* qp, ibv_send_wr* wr, ibv_send_wr** bad_wr) =>\n        qp->context->ops.post_send(qp, wr, bad_wr);");
        bindings.ShouldContain("internal static int ibv_poll_cq(ibv_cq* cq, int num_entries, ibv_wc* wc) =>\n        cq->context->ops.poll_cq(cq, num_entries, wc);");
        bindings.ShouldContain("[FieldOffset(200)] public delegate* unmanaged<ibv_qp*, ibv_send_wr*, ibv_send_wr**, int> post_send;");
        bindings.ShouldContain("[DllImport(Library, EntryPoint = \"ibv_query_port\", ExactSpelling = true)]");
    }

    [Fact]
    public void FilesWithoutTheBindingsExtensionAreIgnored()
    {
        var input = GeneratorHarness.Compile();
        var driver = GeneratorHarness.CreateDriver(new GeneratorHarness.TextFile("/repo/notes.txt", GeneratorHarness.RealBindings))
            .RunGenerators(input, TestContext.Current.CancellationToken);

        driver.GetRunResult().GeneratedTrees.ShouldBeEmpty();
        VerbsBindingsGenerator.FileExtension.ShouldBe(".bindings");
    }
}
