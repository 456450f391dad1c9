using BenchmarkDotNet.Running;
using RAllocator.Benchmarks.Quick;

namespace RAllocator.Benchmarks;

/// <summary>
/// <c>dotnet run -c Release --project tests/RAllocator.Benchmarks -- --filter '*' [--job short]</c> runs the
/// BenchmarkDotNet suites; a first argument of <c>pairs</c>, <c>acquire</c> or <c>recovery</c> runs a quick
/// single-process measurement instead (see <see cref="QuickMeasurements"/>), used by scripts/bench.sh.
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        if (args.Length > 0 && SlabSizingBenchmark.IsMode(args[0]))
        {
            return SlabSizingBenchmark.Run(args);
        }

        if (args.Length > 0 && Compaction.IsMode(args[0]))
        {
            return Compaction.Run(args);
        }

        if (args.Length > 0 && PlacementAndWear.IsMode(args[0]))
        {
            return PlacementAndWear.Run(args);
        }

        if (args.Length > 0 && QuickMeasurements.IsQuickMode(args[0]))
        {
            return QuickMeasurements.Run(args);
        }

        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return 0;
    }
}
