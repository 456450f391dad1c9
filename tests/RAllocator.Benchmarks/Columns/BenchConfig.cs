using BenchmarkDotNet.Configs;

namespace RAllocator.Benchmarks.Columns;

/// <summary>What every suite shares: a build timeout for busy 2-core machines, where the generated project's build
/// can take longer than BenchmarkDotNet's default two minutes.</summary>
public abstract class BenchConfig : ManualConfig
{
    protected BenchConfig() => WithBuildTimeout(TimeSpan.FromMinutes(10));
}
