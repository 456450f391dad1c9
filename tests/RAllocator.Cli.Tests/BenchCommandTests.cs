namespace RAllocator.Cli.Tests;

public sealed class BenchCommandTests
{
    private static readonly string[] s_requiredKeys =
        ["ops", "alloc_ns", "free_ns", "slab_acquires", "rtt_per_slab", "blade_calls_on_critical_path"];

    private static readonly string[] s_slabSizingKeys =
        ["slab_sizing", "max_span", "acquisitions_per_million_allocations", "fragmentation", "held_bytes", "live_bytes", "slabs_by_span"];

    [Fact]
    public async Task BenchJsonIsExactlyOneObjectWithTwoRoundTripsPerSlabAndNoBladeCalls()
    {
        var run = await Cli.RunAsync("bench", "--fabric", "loopback", "--size", "64", "--ops", "100000", "--json");

        run.ExitCode.ShouldBe(ExitCodes.Ok, run.ToString());
        run.Out.Trim().ShouldStartWith("{");
        run.Out.Trim().ShouldEndWith("}");
        var json = run.Json();
        var keys = json.EnumerateObject().Select(p => p.Name).ToHashSet();
        foreach (string key in s_requiredKeys)
        {
            keys.ShouldContain(key);
        }

        json.GetProperty("ops").GetInt64().ShouldBe(100_000);
        json.GetProperty("slab_acquires").GetInt64().ShouldBeGreaterThan(0);
        json.GetProperty("rtt_per_slab").GetDouble().ShouldBe(2.0, "a slab costs FETCH_AND_ADD + READ");
        json.GetProperty("blade_calls_on_critical_path").GetInt64().ShouldBe(0, "CPU bypass: no blade handler runs during acquisitions");
        json.GetProperty("alloc_ns").GetDouble().ShouldBeGreaterThan(0);
        json.GetProperty("free_ns").GetDouble().ShouldBeGreaterThan(0);
        json.GetProperty("alloc_p99_ns").GetDouble().ShouldBeGreaterThanOrEqualTo(json.GetProperty("alloc_p50_ns").GetDouble());
        json.GetProperty("throughput_ops_per_s").GetDouble().ShouldBeGreaterThan(0);
        json.GetProperty("nvm").GetString().ShouldBe("simulated");
    }

    [Fact]
    public async Task BenchJsonReportsSlabSizingAcquisitionsPerMillionFragmentationAndSlabsBySpan()
    {
        var run = await Cli.RunAsync("bench", "--size", "64", "--ops", "50000", "--json");

        run.ExitCode.ShouldBe(ExitCodes.Ok, run.ToString());
        var json = run.Json();
        var keys = json.EnumerateObject().Select(p => p.Name).ToHashSet();
        foreach (string key in s_slabSizingKeys)
        {
            keys.ShouldContain(key);
        }

        json.GetProperty("slab_sizing").GetString().ShouldBe("fixed:1");
        json.GetProperty("max_span").GetUInt32().ShouldBe(1u);
        long acquired = json.GetProperty("slab_acquires").GetInt64();
        json.GetProperty("acquisitions_per_million_allocations").GetDouble().ShouldBe(Math.Round(acquired * 1e6 / 50_000, 1));
        var bySpan = json.GetProperty("slabs_by_span").EnumerateArray().ToArray();
        bySpan.Length.ShouldBe(1);
        bySpan[0].GetProperty("span").GetUInt32().ShouldBe(1u);
        bySpan[0].GetProperty("slab_bytes").GetUInt64().ShouldBe(1UL << 20);
        bySpan[0].GetProperty("slabs").GetInt64().ShouldBe(acquired);
        json.GetProperty("live_bytes").GetInt64().ShouldBe(50_000L * 64, "every measured object is live when fragmentation is taken");
        json.GetProperty("held_bytes").GetInt64().ShouldBe(acquired << 20);
        json.GetProperty("fragmentation").GetDouble().ShouldBe(Math.Round(1 - (50_000.0 * 64 / (acquired << 20)), 4));
    }

    [Theory]
    [InlineData("adaptive", null, 16u)]
    [InlineData("adaptive", "4", 4u)]
    [InlineData("fixed:4", null, 4u)]
    [InlineData("fixed:2", "8", 8u)]
    public async Task BenchWithSlabSizingTakesSpansWithTwoRoundTripsEachAndNoBladeCalls(string sizing, string? maxSpan, uint expectedMaxSpan)
    {
        string[] args = ["bench", "--size", "64", "--slab-size", "64KiB", "--ops", "30000", "--slab-sizing", sizing, "--json"];
        var run = await Cli.RunAsync(maxSpan is null ? args : [.. args, "--max-span", maxSpan]);

        run.ExitCode.ShouldBe(ExitCodes.Ok, run.ToString());
        var json = run.Json();
        json.GetProperty("slab_sizing").GetString().ShouldBe(sizing);
        json.GetProperty("max_span").GetUInt32().ShouldBe(expectedMaxSpan);
        var bySpan = json.GetProperty("slabs_by_span").EnumerateArray().ToArray();
        bySpan.Select(c => c.GetProperty("span").GetUInt32()).ShouldBe(Enumerable.Range(0, (int)Math.Log2(expectedMaxSpan) + 1).Select(c => 1u << c));
        bySpan.Sum(c => c.GetProperty("slabs").GetInt64()).ShouldBe(json.GetProperty("slab_acquires").GetInt64());
        if (sizing.StartsWith("fixed:", StringComparison.Ordinal))
        {
            uint span = uint.Parse(sizing["fixed:".Length..], System.Globalization.CultureInfo.InvariantCulture);
            bySpan.Where(c => c.GetProperty("span").GetUInt32() != span).ShouldAllBe(c => c.GetProperty("slabs").GetInt64() == 0);
        }

        json.GetProperty("held_bytes").GetInt64().ShouldBe(bySpan.Sum(c => c.GetProperty("slabs").GetInt64() * (long)c.GetProperty("slab_bytes").GetUInt64()));
        json.GetProperty("rtt_per_slab").GetDouble().ShouldBe(2.0, "a slab of any span costs FETCH_AND_ADD + READ");
        json.GetProperty("blade_calls_on_critical_path").GetInt64().ShouldBe(0);
    }

    [Fact]
    public async Task BenchWithCompactReportsUtilizationBeforeAndAfterDefragmentation()
    {
        var run = await Cli.RunAsync("bench", "--size", "256", "--ops", "40000", "--compact", "70", "--json");

        run.ExitCode.ShouldBe(ExitCodes.Ok, run.ToString());
        var json = run.Json();
        json.GetProperty("blade_calls_on_critical_path").GetInt64().ShouldBe(0, "the compaction measurement runs after the timed run");
        var c = json.GetProperty("compaction");
        c.GetProperty("freed_percent").GetInt32().ShouldBe(70);
        c.GetProperty("objects").GetInt64().ShouldBe(40_000);
        c.GetProperty("live_objects").GetInt64().ShouldBeInRange(10_000, 14_000, "about 30% of 40,000 stay live");
        double before = c.GetProperty("utilization_before").GetDouble(), after = c.GetProperty("utilization_after").GetDouble();
        after.ShouldBeGreaterThan(before + 0.2, "compaction packs the survivors into fewer slabs");
        c.GetProperty("slabs_held_after").GetInt64().ShouldBeLessThan(c.GetProperty("slabs_held_before").GetInt64());
        c.GetProperty("objects_moved").GetInt64().ShouldBeGreaterThan(0);
        c.GetProperty("slabs_returned").GetInt32().ShouldBeGreaterThan(0);

        var text = await Cli.RunAsync("bench", "--size", "256", "--ops", "20000", "--compact", "50");
        text.ExitCode.ShouldBe(ExitCodes.Ok, text.ToString());
        text.Out.ShouldContain("50% freed at random: utilization");
    }

    [Theory]
    [InlineData("100", "loopback")]
    [InlineData("-1", "loopback")]
    [InlineData("50", "shm")]
    public async Task BenchWithABadCompactIsAUsageErrorNamingIt(string percent, string fabric)
    {
        var run = await Cli.RunAsync("bench", "--ops", "10", "--fabric", fabric, "--compact", percent);

        run.ExitCode.ShouldBe(ExitCodes.Usage, run.ToString());
        run.Error.ShouldContain("--compact");
        run.Out.ShouldBeEmpty();
    }

    [Fact]
    public async Task BenchTextShowsSlabSizingAcquisitionsPerMillionSizesAndFragmentation()
    {
        var run = await Cli.RunAsync("bench", "--slab-size", "64KiB", "--ops", "20000", "--slab-sizing", "adaptive", "--max-span", "4");

        run.ExitCode.ShouldBe(ExitCodes.Ok, run.ToString());
        run.Out.ShouldContain("slab sizing adaptive, spans up to 4 (256 KiB)");
        run.Out.ShouldContain("per million allocations");
        run.Out.ShouldContain("64 KiB x ");
        run.Out.ShouldContain("256 KiB x ");
        run.Out.ShouldContain("fragmentation");
    }

    [Theory]
    [InlineData("--slab-sizing", "big")]
    [InlineData("--slab-sizing", "fixed:3")]
    [InlineData("--slab-sizing", "fixed:128")]
    [InlineData("--slab-sizing", "fixed:")]
    [InlineData("--max-span", "3")]
    [InlineData("--max-span", "0")]
    [InlineData("--max-span", "128")]
    public async Task BenchWithABadSlabSizingOrMaxSpanIsAUsageErrorNamingIt(string option, string value)
    {
        var run = await Cli.RunAsync("bench", "--ops", "10", option, value);

        run.ExitCode.ShouldBe(ExitCodes.Usage, run.ToString());
        run.Error.ShouldContain($"{option} ");
        run.Error.ShouldContain(option == "--max-span" ? "power of two" : "fixed, fixed:N");
        run.Out.ShouldBeEmpty();
    }

    [Fact]
    public async Task BenchWithAFixedSpanAboveTheMaxSpanNamesBoth()
    {
        var run = await Cli.RunAsync("bench", "--ops", "10", "--slab-sizing", "fixed:8", "--max-span", "4");

        run.ExitCode.ShouldBe(ExitCodes.Usage, run.ToString());
        run.Error.ShouldContain("--slab-sizing fixed:8 needs --max-span 8 or more");
        run.Out.ShouldBeEmpty();
    }

    [Fact]
    public async Task BenchWithMaxSpanAgainstRunningBladesSaysTheyWereFormattedWithTheirOwn()
    {
        var run = await Cli.RunAsync("bench", "--fabric", "shm", "--blade", "127.0.0.1:1", "--max-span", "4", "--ops", "10");

        run.ExitCode.ShouldBe(ExitCodes.Usage, run.ToString());
        run.Error.ShouldContain("--max-span");
        run.Error.ShouldContain("--blade");
    }

    [Fact]
    public async Task BenchOverSharedMemoryReportsSlabSizingFiguresToo()
    {
        var run = await Cli.RunAsync("bench", "--fabric", "shm", "--size", "64", "--ops", "20000", "--acquisitions", "4", "--slab-sizing", "fixed:2", "--max-span", "2", "--json");

        run.ExitCode.ShouldBe(ExitCodes.Ok, run.ToString());
        var json = run.Json();
        json.GetProperty("slab_sizing").GetString().ShouldBe("fixed:2");
        json.GetProperty("max_span").GetUInt32().ShouldBe(2u);
        json.TryGetProperty("acquisitions_per_million_allocations", out _).ShouldBeTrue();
        json.GetProperty("fragmentation").GetDouble().ShouldBeInRange(0.0, 1.0);
        var bySpan = json.GetProperty("slabs_by_span").EnumerateArray().ToArray();
        bySpan.Select(c => c.GetProperty("span").GetUInt32()).ShouldBe([1u, 2u]);
        bySpan[0].GetProperty("slabs").GetInt64().ShouldBe(0, "fixed:2 takes slabs of 2 base slabs only");
    }

    [Fact]
    public async Task BenchWithSeveralThreadsStillCountsTwoRoundTripsPerSlab()
    {
        var run = await Cli.RunAsync("bench", "--size", "1KiB", "--ops", "50000", "--threads", "4", "--json");

        run.ExitCode.ShouldBe(ExitCodes.Ok, run.ToString());
        var json = run.Json();
        json.GetProperty("threads").GetInt32().ShouldBe(4);
        json.GetProperty("slab_acquires").GetInt64().ShouldBeGreaterThanOrEqualTo(45, "1023 objects of 1 KiB per 1 MiB slab");
        json.GetProperty("rtt_per_slab").GetDouble().ShouldBe(2.0);
        json.GetProperty("blade_calls_on_critical_path").GetInt64().ShouldBe(0);
    }

    [Fact]
    public async Task BenchSplitsRunsLongerThanTheRingIntoPhasesWithTheAgentBetweenThem()
    {
        // 4 KiB objects in 64 KiB slabs: 15 objects per slab, about 700 slabs, more than one agent pass rings (256).
        var run = await Cli.RunAsync("bench", "--size", "4KiB", "--slab-size", "64KiB", "--ops", "10000", "--json");

        run.ExitCode.ShouldBe(ExitCodes.Ok, run.ToString());
        var json = run.Json();
        json.GetProperty("phases").GetInt32().ShouldBeGreaterThan(1);
        json.GetProperty("rtt_per_slab").GetDouble().ShouldBe(2.0);
        json.GetProperty("blade_calls_on_critical_path").GetInt64().ShouldBe(0);
    }

    [Fact]
    public async Task BenchTextNamesTheNvmItRanOnAndTheCountedCosts()
    {
        var run = await Cli.RunAsync("bench", "--ops", "20000", "--nvm", "file");

        run.ExitCode.ShouldBe(ExitCodes.Ok, run.ToString());
        run.Out.ShouldContain("blade nvm");
        run.Out.ShouldContain("libpmem", Case.Insensitive, "the file NVM names its backend (libpmem or mmap+msync)");
        run.Out.ShouldContain("per slab");
        run.Out.ShouldContain("0 on the critical path");
    }

    [Fact]
    public async Task BenchOverSharedMemoryReportsThroughputLatencyRoundTripsAndBladeCpuAsOneJsonObject()
    {
        var run = await Cli.RunAsync("bench", "--fabric", "shm", "--size", "64", "--ops", "20000", "--threads", "2", "--acquisitions", "16", "--json");

        run.ExitCode.ShouldBe(ExitCodes.Ok, run.ToString());
        var json = run.Json();
        json.GetProperty("fabric").GetString().ShouldBe("shm");
        json.GetProperty("ops").GetInt64().ShouldBe(20000);
        json.GetProperty("alloc_throughput_ops_per_s").GetDouble().ShouldBeGreaterThan(0);
        json.GetProperty("alloc_p99_ns").GetDouble().ShouldBeGreaterThanOrEqualTo(json.GetProperty("alloc_p50_ns").GetDouble());
        json.GetProperty("acquisitions").GetInt32().ShouldBe(16);
        // FETCH_AND_ADD + READ per acquisition; the acknowledgement is posted unsignaled.
        json.GetProperty("round_trips_per_acquire").GetDouble().ShouldBeGreaterThanOrEqualTo(2.0);
        json.GetProperty("blade_cpu_ms").GetDouble().ShouldBeGreaterThan(0);
        json.GetProperty("blade_cpu_source").GetString()!.ShouldContain("/proc");
        run.Error.ShouldBeEmpty("nothing but the JSON object, and no progress bar when stderr is not a terminal");
    }

    [Fact]
    public async Task BenchOverVerbsWithoutADeviceSaysWhatWasCheckedAndWhatToUseInstead()
    {
        var run = await Cli.RunAsync("bench", "--fabric", "verbs", "--ops", "10");

        run.ExitCode.ShouldBe(ExitCodes.Failed, run.ToString());
        run.Error.ShouldContain("ibv_get_device_list");
        run.Error.ShouldContain("--fabric ucx");
    }

    [Fact]
    public async Task BenchWithABladeButNoTokenFileSaysWhatIsMissing()
    {
        var run = await Cli.RunAsync("bench", "--fabric", "shm", "--blade", "127.0.0.1:1", "--ops", "10");

        run.ExitCode.ShouldBe(ExitCodes.Usage, run.ToString());
        run.Error.ShouldContain("--token-file");
    }

    [Fact]
    public async Task BenchAgainstAnUnreachableBladeNamesIt()
    {
        using var directory = new TempDirectory();
        File.WriteAllText(directory.File("token"), "t");
        var run = await Cli.RunAsync("bench", "--fabric", "shm", "--blade", "127.0.0.1:1", "--token-file", directory.File("token"), "--ops", "10");

        run.ExitCode.ShouldBe(ExitCodes.Failed, run.ToString());
        run.Error.ShouldContain("127.0.0.1:1");
        run.Error.ShouldContain("unreachable");
    }

    [Fact]
    public async Task BenchLoopbackRefusesABladeAddress()
    {
        var run = await Cli.RunAsync("bench", "--fabric", "loopback", "--blade", "127.0.0.1:7070");

        run.ExitCode.ShouldBe(ExitCodes.Usage, run.ToString());
        run.Error.ShouldContain("--blade needs --fabric shm");
    }

    [Fact]
    public async Task BenchOnAnUnknownFabricIsAUsageErrorNamingLoopback()
    {
        var run = await Cli.RunAsync("bench", "--fabric", "carrier-pigeon");

        run.ExitCode.ShouldBe(ExitCodes.Usage, run.ToString());
        run.Error.ShouldContain("--fabric");
        run.Error.ShouldContain("loopback");
    }

    [Theory]
    [InlineData("--ops", "-5")]
    [InlineData("--ops", "0")]
    [InlineData("--ops", "many")]
    [InlineData("--threads", "0")]
    [InlineData("--size", "0")]
    [InlineData("--size", "300KiB")]
    [InlineData("--size", "12XB")]
    [InlineData("--slab-size", "100KiB")]
    [InlineData("--nvm", "tape")]
    public async Task BenchWithAnArgumentOutOfRangeIsAUsageErrorNamingIt(string option, string value)
    {
        var run = await Cli.RunAsync("bench", option, value);

        run.ExitCode.ShouldBe(ExitCodes.Usage, run.ToString());
        run.Error.ShouldContain(option);
        run.Out.ShouldBeEmpty();
    }

    [Fact]
    public async Task BenchTooLargeForTheSimulatedNvmSaysToUseAFile()
    {
        var run = await Cli.RunAsync("bench", "--size", "256KiB", "--ops", "100000");

        run.ExitCode.ShouldBe(ExitCodes.Usage, run.ToString());
        run.Error.ShouldContain("--nvm file");
    }
}
