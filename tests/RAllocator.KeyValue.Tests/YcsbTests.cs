using System.CommandLine;
using System.Reflection;
using System.Text;
using System.Text.Json;
using RAllocator.KeyValue.Ycsb;

namespace RAllocator.KeyValue.Tests;

/// <summary>Key choosers against their distributions, workload mixes, and short runs of the driver and the command.</summary>
public sealed class YcsbTests(ITestOutputHelper output)
{
    // Chi-square critical values at p = 0.001 (a correct generator fails one run in a thousand).
    private const double Chi2Critical49 = 85.35;
    private const double Chi2Critical19 = 43.82;

    [Fact]
    public void UniformChooserIsUniform()
    {
        var chooser = new UniformKeyChooser(50);
        var rng = new Random(1);
        var counts = new long[50];
        const int N = 100_000;
        for (int i = 0; i < N; i++)
        {
            counts[chooser.Next(rng)]++;
        }

        double chi2 = counts.Sum(c => Math.Pow(c - (N / 50.0), 2) / (N / 50.0));
        output.WriteLine($"uniform chi2 = {chi2:F1} (df 49, critical {Chi2Critical49})");
        chi2.ShouldBeLessThan(Chi2Critical49);
    }

    [Fact]
    public void ZipfianGeneratorFollowsZipfWithConstant099()
    {
        const int Items = 1000, N = 200_000;
        var generator = new ZipfianGenerator(0, Items - 1);
        var rng = new Random(2);
        var counts = new long[Items];
        for (int i = 0; i < N; i++)
        {
            counts[generator.Next(rng)]++;
        }

        // The distribution YCSB's algorithm (Gray et al.) draws from, in closed form: items 0 and 1 exactly zipfian,
        // item k >= 2 for u in [u(k), u(k+1)) where n * (eta * u - eta + 1)^(1 / (1 - theta)) = k.
        const double Theta = 0.99;
        double zeta = ZipfianGenerator.Zeta(0, Items, Theta, 0);
        double eta = (1 - Math.Pow(2.0 / Items, 1 - Theta)) / (1 - (ZipfianGenerator.Zeta(0, 2, Theta, 0) / zeta));
        double twoItems = (1 + Math.Pow(0.5, Theta)) / zeta;
        double U(int k) => k >= Items ? 1 : Math.Clamp((Math.Pow((double)k / Items, 1 - Theta) - 1 + eta) / eta, twoItems, 1);
        double Algorithm(int k) => k switch { 0 => 1 / zeta, 1 => Math.Pow(0.5, Theta) / zeta, _ => U(k + 1) - U(k) };
        double Exact(int k) => 1 / Math.Pow(k + 1, Theta) / zeta;

        // Bins: items 0..9 alone, then log-spaced ranges (each expecting thousands of draws).
        var bins = Enumerable.Range(0, 10).Select(i => (Lo: i, Hi: i + 1)).ToList();
        for (int lo = 10; lo < Items;)
        {
            int hi = Math.Min(Items, (int)(lo * 1.6) + 1);
            bins.Add((lo, hi));
            lo = hi;
        }

        double chi2 = 0;
        foreach (var (lo, hi) in bins)
        {
            double p = 0, exact = 0;
            long observed = 0;
            for (int i = lo; i < hi; i++)
            {
                p += Algorithm(i);
                exact += Exact(i);
                observed += counts[i];
            }

            chi2 += Math.Pow(observed - (N * p), 2) / (N * p);

            // And the algorithm is a close approximation of zipf(0.99) itself (item 2 is its worst, about +19%).
            (observed / (N * exact)).ShouldBeInRange(0.85, 1.25, $"items [{lo}, {hi}) against exact zipf(0.99)");
        }

        output.WriteLine($"zipfian chi2 = {chi2:F1} over {bins.Count} bins (df {bins.Count - 1}, critical {Chi2Critical19}); item 0: {counts[0] / (double)N:P2} (exact {1 / zeta:P2})");
        chi2.ShouldBeLessThan(Chi2Critical19, "frequencies depart from YCSB's zipfian algorithm");
    }

    [Fact]
    public void ScrambledZipfianSpreadsHotKeysWithYcsbsSkew()
    {
        const int Records = 1000, N = 200_000;
        var chooser = new ScrambledZipfianKeyChooser(Records);
        var rng = new Random(3);
        var counts = new long[Records];
        for (int i = 0; i < N; i++)
        {
            long k = chooser.Next(rng);
            k.ShouldBeInRange(0, Records - 1);
            counts[k]++;
        }

        var hottest = counts.Select((c, i) => (c, i)).OrderByDescending(x => x.c).Take(10).ToList();
        double top = hottest[0].c / (double)N;
        output.WriteLine($"hottest records: {string.Join(", ", hottest.Select(h => $"{h.i}:{h.c}"))}");

        // Item 0 of the 10^10-item zipfian has probability 1/26.469 = 3.78%; hashing may add colliding items.
        top.ShouldBeInRange(0.030, 0.060);
        hottest.Count(h => h.i < 10).ShouldBeLessThan(5, "scrambling must spread the hottest records over the key space");

        // Skewed: the hottest 10% of records take far more than 10% of the draws, and every record is reachable.
        counts.OrderByDescending(c => c).Take(Records / 10).Sum().ShouldBeGreaterThan(N / 5);
    }

    [Fact]
    public void LatestChooserFavoursTheNewestRecords()
    {
        long latest = 999;
        var chooser = new LatestKeyChooser(() => latest);
        var rng = new Random(4);
        var counts = new Dictionary<long, long>();
        for (int i = 0; i < 100_000; i++)
        {
            long k = chooser.Next(rng);
            k.ShouldBeInRange(0, latest);
            counts[k] = counts.GetValueOrDefault(k) + 1;
        }

        counts[999].ShouldBeGreaterThan(counts[998]);
        counts[998].ShouldBeGreaterThan(counts.GetValueOrDefault(900));
        latest = 1999;
        Enumerable.Range(0, 1000).Select(_ => chooser.Next(rng)).Max().ShouldBe(1999);
    }

    [Theory]
    [InlineData("a")]
    [InlineData("b")]
    [InlineData("c")]
    [InlineData("d")]
    [InlineData("F")]
    public void WorkloadMixesHaveTheirProportions(string name)
    {
        var workload = YcsbWorkload.Parse(name);
        var rng = new Random(5);
        const int N = 100_000;
        var counts = new long[4];
        for (int i = 0; i < N; i++)
        {
            counts[(int)workload.Choose(rng.NextDouble())]++;
        }

        double[] expected = [workload.Read, workload.Update, workload.Insert, workload.ReadModifyWrite];
        for (int op = 0; op < 4; op++)
        {
            double sigma = Math.Sqrt(expected[op] * (1 - expected[op]) / N);
            ((double)counts[op] / N).ShouldBe(expected[op], (4 * sigma) + 1e-12, $"{(YcsbOperation)op} share of workload {workload.Name}");
        }
    }

    [Fact]
    public void UnknownWorkloadsAreRejectedByName() =>
        Should.Throw<ArgumentException>(() => YcsbWorkload.Parse("e")).Message.ShouldContain("not one of A, B, C, D, F");

    [Fact]
    public async Task ARunOnTheStoreCountsEveryOperationAndFindsEveryRecord()
    {
        var h = await KvHarness.StartAsync(new KvStoreOptions { MaxKeyBytes = 64, MaxValueBytes = 200, Seed = 1 }, regionBytes: 16L << 20);
        var settings = new YcsbSettings { Workload = YcsbWorkload.D, RecordCount = 400, OperationCount = 3000, RecordSizeBytes = 100, Threads = 2, Seed = 9 };
        var reports = new List<YcsbProgress>();
        var result = await YcsbRunner.RunAsync(h.Store, settings, new SyncProgress(reports.Add));

        result.Operations.Sum(o => o.Count).ShouldBe(3000);
        result.Operations.ShouldAllBe(o => o.NotFound == 0 && o.P50Ns <= o.P99Ns && o.P99Ns <= o.MaxNs);
        long inserts = result.Operations.Single(o => o.Operation == YcsbOperation.Insert).Count;
        ((double)inserts / 3000).ShouldBe(0.05, 4 * Math.Sqrt(0.05 * 0.95 / 3000));
        h.Store.Count.ShouldBe(400 + inserts);
        result.ThroughputOpsPerSecond.ShouldBeGreaterThan(0);
        reports.ShouldContain(p => p.Phase == "run" && p.Done == 3000 && p.Total == 3000);

        // Everything written survives a blade crash.
        await h.CrashBladeAsync(LostStores.All, 0);
        h.Store.Count.ShouldBe(400 + inserts);
        (await h.Store.GetAsync(Encoding.ASCII.GetBytes(YcsbRunner.KeyFor(0)))).ShouldNotBeNull().Length.ShouldBe(100);
    }

    [Fact]
    public async Task TheYcsbCommandPrintsOneJsonObjectAndNothingElse()
    {
        var cli = typeof(RAllocator.Cli.Program).Assembly;
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var context = Activator.CreateInstance(cli.GetType("RAllocator.Cli.CliContext", throwOnError: true)!, stdout, stderr)!;
        var create = cli.GetType("RAllocator.Cli.Commands.YcsbCommand", throwOnError: true)!.GetMethod("Create", BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static)!;
        var command = (Command)create.Invoke(null, [context, null])!;
        var root = new RootCommand { command };
        int exit = await root.Parse(["ycsb", "--workload", "f", "--distribution", "uniform", "--records", "300", "--operations", "1000", "--record-size", "128", "--nvm", "simulated", "--json"])
            .InvokeAsync(new InvocationConfiguration { Output = stdout, Error = stderr });

        exit.ShouldBe(0, stderr.ToString());
        stderr.ToString().ShouldBeEmpty();
        using var json = JsonDocument.Parse(stdout.ToString());
        var r = json.RootElement;
        r.GetProperty("workload").GetString().ShouldBe("F");
        r.GetProperty("distribution").GetString().ShouldBe("uniform");
        r.GetProperty("throughput_ops_per_s").GetDouble().ShouldBeGreaterThan(0);
        var ops = r.GetProperty("latency").EnumerateArray().ToDictionary(e => e.GetProperty("operation").GetString()!, e => e.GetProperty("count").GetInt64());
        (ops["read"] + ops["read_modify_write"]).ShouldBe(1000);
        r.GetProperty("entries").GetInt64().ShouldBe(300);
        r.GetProperty("heap_live_objects").GetInt64().ShouldBe(2 + (2 * 300));
    }

    [Fact]
    public async Task TheYcsbCommandRunsAgainstABladeServerAsAWorkingNode()
    {
        using var directory = new TempDirectory();
        var image = directory.File("blade.img");
        var tokenFile = directory.File("token");
        File.WriteAllText(tokenFile, "ycsb-remote-secret\n");
        using (var region = MappedFileNvm.Create(image, 64L << 20))
        {
            BladeImage.Format(region, 1UL << 20, new BladeFormatOptions { MaxNodes = 4 });
        }

        var token = RAllocator.Hosting.AccessToken.ReadFile(tokenFile);
        var server = RAllocator.Hosting.BladeServer.Start(image, new RAllocator.Hosting.BladeServerOptions { Token = token, UtilizationReportInterval = TimeSpan.Zero });
        await using (server)
        {
            string[] Arguments(string workload, string records) =>
                ["ycsb", "--workload", workload, "--distribution", "uniform", "--records", records, "--operations", "600", "--record-size", "200",
                 "--blade", $"127.0.0.1:{server.LocalEndPoint.Port}", "--token-file", tokenFile, "--node-id", "3", "--json"];

            var (exit, stdout, stderr) = await RunCommandAsync(Arguments("a", "200"));
            exit.ShouldBe(0, stderr);
            stderr.ShouldBeEmpty();
            using (var json = JsonDocument.Parse(stdout))
            {
                var r = json.RootElement;
                r.GetProperty("target").GetString()!.ShouldContain($"127.0.0.1:{server.LocalEndPoint.Port}");
                r.GetProperty("target").GetString()!.ShouldContain("node 3");
                var ops = r.GetProperty("latency").EnumerateArray().ToDictionary(e => e.GetProperty("operation").GetString()!, e => e.GetProperty("count").GetInt64());
                (ops["read"] + ops["update"]).ShouldBe(600);
                ops.ShouldContainKey("update");
                r.GetProperty("entries").GetInt64().ShouldBe(200);
                r.GetProperty("throughput_ops_per_s").GetDouble().ShouldBeGreaterThan(0);
            }

            // The records are in the blade's NVM: a second run as node 3 reopens its store (the node's root names
            // it), so the first run's 200 records are there with the 300 it loads over them.
            (exit, stdout, stderr) = await RunCommandAsync(Arguments("c", "300"));
            exit.ShouldBe(0, stderr);
            using (var json = JsonDocument.Parse(stdout))
            {
                json.RootElement.GetProperty("entries").GetInt64().ShouldBe(300);
                json.RootElement.GetProperty("latency").EnumerateArray().Single().GetProperty("not_found").GetInt64().ShouldBe(0);
            }
        }

        // Stopped cleanly with every object the store holds accounted for.
        using var check = MappedFileNvm.Open(image, NvmAccess.ReadOnly);
        BladeImage.Open(check, BladeOpenMode.ReadOnly).Scan().Problems.ShouldBeEmpty();
    }

    [Fact]
    public async Task TheYcsbCommandRefusesBladeOptionsThatDoNotGoTogether()
    {
        var (exit, _, stderr) = await RunCommandAsync(["ycsb", "--blade", "127.0.0.1:1", "--json"]);
        exit.ShouldNotBe(0);
        stderr.ShouldContain("--blade needs --token-file");
        (exit, _, stderr) = await RunCommandAsync(["ycsb", "--node-id", "2", "--json"]);
        exit.ShouldNotBe(0);
        stderr.ShouldContain("need --blade");
    }

    private static async Task<(int Exit, string Stdout, string Stderr)> RunCommandAsync(string[] arguments)
    {
        var cli = typeof(RAllocator.Cli.Program).Assembly;
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var context = Activator.CreateInstance(cli.GetType("RAllocator.Cli.CliContext", throwOnError: true)!, stdout, stderr)!;
        var create = cli.GetType("RAllocator.Cli.Commands.YcsbCommand", throwOnError: true)!.GetMethod("Create", BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static)!;
        var root = new RootCommand { (Command)create.Invoke(null, [context, null])! };
        int exit = await root.Parse(arguments).InvokeAsync(new InvocationConfiguration { Output = stdout, Error = stderr });
        return (exit, stdout.ToString(), stderr.ToString());
    }

    private sealed class SyncProgress(Action<YcsbProgress> report) : IProgress<YcsbProgress>
    {
        public void Report(YcsbProgress value) => report(value);
    }
}
