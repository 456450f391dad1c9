using System.Reflection;
using Microsoft.Coyote.Rewriting;
using RAllocator.Coyote.Tests.Simulation;
using RAllocator.Fabric.Loopback;

namespace RAllocator.Coyote.Tests;

/// <summary>
/// Without binary rewriting Coyote controls nothing: every Task.Run test reports "Deadlock detected" even on correct
/// code, and a seeded bug would look "found" for the wrong reason. These guards fail first if the rewrite step
/// (the CoyoteRewrite target in the project file) did not run on every assembly whose code runs under the scheduler.
/// </summary>
public sealed class RewritingGuardTests
{
    public static TheoryData<string> RewrittenAssemblies() =>
    [
        typeof(SimulatedNvm).Assembly.GetName().Name!,
        typeof(LoopbackFabric).Assembly.GetName().Name!,
        typeof(BladeClient).Assembly.GetName().Name!,
        typeof(BladeAgent).Assembly.GetName().Name!,
        typeof(WorkingNodeHeap).Assembly.GetName().Name!,
        typeof(EmbeddedBlade).Assembly.GetName().Name!,
        typeof(SimulatedCluster).Assembly.GetName().Name!,
    ];

    [Theory]
    [MemberData(nameof(RewrittenAssemblies))]
    public void EveryAssemblyRunUnderTheSchedulerIsRewritten(string assemblyName)
    {
        var assembly = AppDomain.CurrentDomain.GetAssemblies().SingleOrDefault(a => a.GetName().Name == assemblyName)
            ?? Assembly.Load(assemblyName);
        RewritingEngine.IsAssemblyRewritten(assembly).ShouldBeTrue(
            $"{assemblyName} is not rewritten for Coyote: run 'dotnet build' on this project (its CoyoteRewrite target rewrites after every build).");
    }

    [Fact]
    public void TheRewrittenSetCoversTheWholeStack()
    {
        RewrittenAssemblies().Select(row => (string)row.Data).ShouldBe(
        [
            "RAllocator.Nvm", "RAllocator.Fabric", "RAllocator.Protocol", "RAllocator.Blade", "RAllocator.Node",
            "RAllocator.Embedded", "RAllocator.Coyote.Tests",
        ]);
    }
}
