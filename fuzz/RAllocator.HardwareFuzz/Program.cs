using System.Globalization;
using RAllocator.HardwareFuzz;

// rallocator hardware fuzzer: dotnet run --project fuzz/RAllocator.HardwareFuzz -- [--seconds N] [--seed S] [--nodes K] [--max-steps M]
// Exit code 0 when no invariant was violated, 1 on a violation, 2 on bad arguments.
int seconds = 20;
int seed = Environment.TickCount;
int nodes = 3;
long maxSteps = long.MaxValue;
string fabric = "loopback";
for (int i = 0; i < args.Length; i++)
{
    string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
    try
    {
        switch (args[i])
        {
            case "--seconds": seconds = int.Parse(Next(), CultureInfo.InvariantCulture); break;
            case "--seed": seed = int.Parse(Next(), CultureInfo.InvariantCulture); break;
            case "--nodes": nodes = int.Parse(Next(), CultureInfo.InvariantCulture); break;
            case "--max-steps": maxSteps = long.Parse(Next(), CultureInfo.InvariantCulture); break;
            case "--fabric":
                fabric = Next();
                if (fabric != "loopback" && !fabric.StartsWith("ucx:", StringComparison.Ordinal))
                {
                    Console.Error.WriteLine($"--fabric {fabric}: built in are 'loopback' and 'ucx:TRANSPORTS' (ucx:tcp, ucx:sm, ucx:rc on RDMA hardware); a verbs adapter implements IFabricUnderTest (tests/hardware/README.md)");
                    return 2;
                }

                break;
            default: throw new ArgumentException($"unknown argument {args[i]}");
        }
    }
    catch (Exception bad) when (bad is ArgumentException or FormatException or OverflowException)
    {
        Console.Error.WriteLine(bad.Message);
        Console.Error.WriteLine("usage: RAllocator.HardwareFuzz [--fabric loopback|ucx:TRANSPORTS] [--seconds N] [--seed S] [--nodes 1..4] [--max-steps M]");
        return 2;
    }
}

Console.WriteLine($"hardware fuzz: fabric {fabric}, seed {seed}, {seconds} s, {nodes} nodes");
await using IFabricUnderTest underTest = fabric == "loopback" ? new LoopbackFabricUnderTest() : new UcxFabricUnderTest(fabric["ucx:".Length..]);
var report = await HardwareFuzzer.RunAsync(underTest, new HardwareFuzzOptions(seed, TimeSpan.FromSeconds(seconds), nodes, maxSteps), Console.Out);
Console.Write(report);
return report.Passed ? 0 : 1;
