using RAllocator.Blade;
using RAllocator.Fuzz;
using RAllocator.Nvm;
using RAllocator.Protocol.Layout;

namespace RAllocator.Fuzz.Tests;

/// <summary>
/// Replays every checked-in corpus input and a bounded number of seeded mutations through each fuzz target, so
/// the fuzzers' promises are checked on every run, with or without AFL.
/// </summary>
public sealed class FuzzReplayTests
{
    // The bounded smoke pass: seeded random mutations of every seed, in-process (the same targets AFL++ drives).
    // Bounded by count, not time: about 300 per image seed, 100 per areas and cli seed; well under a minute here.
    private static int MutationsPerSeed(string target) => target == "image" ? 300 : 100;

    public static TheoryData<string> Targets => [.. FuzzTargets.All.Keys];

    [Theory]
    [MemberData(nameof(Targets))]
    public void EveryCorpusInputKeepsTheTargetsPromise(string target)
    {
        var inputs = CorpusFiles(target);
        inputs.ShouldNotBeEmpty($"fuzz/corpus/{target} must hold seed inputs");
        foreach (var file in inputs)
        {
            Run(target, File.ReadAllBytes(file), Path.GetFileName(file));
        }
    }

    [Theory]
    [MemberData(nameof(Targets))]
    public void SeededMutationsOfTheCorpusKeepTheTargetsPromise(string target)
    {
        const int seed = 20261126;
        var random = new Random(seed);
        foreach (var file in CorpusFiles(target))
        {
            byte[] original = File.ReadAllBytes(file);
            for (int i = 0; i < MutationsPerSeed(target); i++)
            {
                byte[] mutated = Mutate(original, random);
                Run(target, mutated, $"{Path.GetFileName(file)} mutation {i} (seed {seed})");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Targets))]
    public void EveryRegressionInputKeepsTheTargetsPromise(string target)
    {
        // Crashes that fuzzing found, one file each under fuzz/regressions/<target>/ (see fuzz/FINDINGS.md).
        foreach (var file in Files(RepositoryPaths.Combine("fuzz", "regressions", target)))
        {
            Run(target, File.ReadAllBytes(file), $"regression {Path.GetFileName(file)}");
        }
    }

    [Fact]
    public void EveryTargetHasSeeds()
    {
        FuzzTargets.All.Keys.Order().ShouldBe(["areas", "cli", "image"]);
        foreach (var target in FuzzTargets.All.Keys)
        {
            CorpusFiles(target).ShouldNotBeEmpty($"fuzz/corpus/{target} must hold seed inputs");
        }
    }

    [Fact]
    public void TheAreasSeedsAreAppliedByTheAgent()
    {
        // Keeps the seeds meaningful: the acknowledgement seed must reach the apply path, not only the "no record" one.
        var seeds = FuzzTargets.AreasSeeds();
        seeds.Select(s => s.Name).ShouldContain("ack-first-ringed");
        foreach (var (name, bytes) in seeds)
        {
            File.ReadAllBytes(Path.Combine(CorpusDirectory("areas"), name + ".bin")).ShouldBe(bytes, $"fuzz/corpus/areas/{name}.bin is stale: regenerate with RALLOCATOR_UPDATE_EXPECTED=1");
        }
    }

    [Fact]
    public void TheHarnessChecksCatchBrokenPromises()
    {
        // Seeded failures: the checks the harnesses rely on must fire.
        using var region = new SimulatedNvm(4096);
        byte[] hash = System.Security.Cryptography.SHA256.HashData(region.DurableImageCopy());
        region.StoreUInt64(0, 42);
        region.Persist(0, 8);
        Should.Throw<FuzzFindingException>(() => FuzzTargets.RequireUnchanged(region, hash, "a seeded write"));

        // An exception escaping a target is reported with the input's first bytes.
        Should.Throw<Xunit.Sdk.XunitException>(() => RunAction(_ => throw new InvalidOperationException("seeded"), [1, 2, 3], "seeded"))
            .Message.ShouldContain("010203");
    }

    [Theory]
    [InlineData("formatted-1-slab.img", 1)]
    [InlineData("formatted-spans.img", 2)]
    public void TheImageSeedsAreValidFormattedBlades(string seed, int rings)
    {
        // Keeps the seeds meaningful: a corpus of garbage would only ever test the magic check. The second has a span
        // ring, so the fuzzer reaches the span checks of the scan.
        byte[] seedImage = File.ReadAllBytes(Path.Combine(CorpusDirectory("image"), seed));
        using var region = SimulatedNvm.FromDurableImage(seedImage);
        var state = BladeImage.Open(region, BladeOpenMode.ReadOnly).Scan();
        state.IsConsistent.ShouldBeTrue();
        state.Rings.Count.ShouldBe(rings);
    }

    [Fact]
    public void RegenerateTheImageSeedWhenAsked()
    {
        if (Environment.GetEnvironmentVariable("RALLOCATOR_UPDATE_EXPECTED") != "1")
        {
            return;
        }

        using var region = new SimulatedNvm(96 * 1024);
        BladeImage.Format(region, BladeGeometry.MinSlabSizeBytes,
            new BladeFormatOptions { MaxNodes = 1, RingCapacity = 1, AckSlotsPerNode = 2, FreeSlotsPerNode = 2 }, bladeUid: 42);
        Directory.CreateDirectory(CorpusDirectory("image"));
        File.WriteAllBytes(Path.Combine(CorpusDirectory("image"), "formatted-1-slab.img"), region.DurableImageCopy());
        using var spans = new SimulatedNvm(160 * 1024);
        var image = BladeImage.Format(spans, BladeGeometry.MinSlabSizeBytes,
            new BladeFormatOptions { MaxNodes = 1, RingCapacity = 1, AckSlotsPerNode = 2, FreeSlotsPerNode = 2, MaxSlabSpan = 2, SpanRingCapacity = 1 }, bladeUid: 43);
        image.MarkRinged(0, SlabRings.FirstTicketOf(1), spanClass: 1);
        File.WriteAllBytes(Path.Combine(CorpusDirectory("image"), "formatted-spans.img"), spans.DurableImageCopy());
        Directory.CreateDirectory(CorpusDirectory("areas"));
        foreach (var (name, bytes) in FuzzTargets.AreasSeeds())
        {
            File.WriteAllBytes(Path.Combine(CorpusDirectory("areas"), name + ".bin"), bytes);
        }
    }

    private static void Run(string target, byte[] input, string name) => RunAction(FuzzTargets.All[target], input, $"target '{target}', {name}");

    private static void RunAction(Action<byte[]> action, byte[] input, string name)
    {
        string target = name;
        try
        {
            action(input);
        }
        catch (Exception ex)
        {
            string head = Convert.ToHexString(input.AsSpan(0, Math.Min(input.Length, 64)));
            throw new Xunit.Sdk.XunitException($"fuzz target '{target}' broke its promise on {name}: {ex.GetType().Name}: {ex.Message}\nfirst bytes: {head}");
        }
    }

    private static byte[] Mutate(byte[] original, Random random)
    {
        byte[] copy = (byte[])original.Clone();
        int edits = random.Next(1, 9);
        for (int e = 0; e < edits; e++)
        {
            int at = random.Next(copy.Length);
            switch (random.Next(3))
            {
                case 0: copy[at] ^= (byte)(1 << random.Next(8)); break;
                case 1: copy[at] = (byte)random.Next(256); break;
                default:
                    // Hit the metadata words recovery trusts most: superblocks, control block, node areas.
                    copy[random.Next(Math.Min(copy.Length, 3 * 4096))] = (byte)random.Next(256);
                    break;
            }
        }

        return random.Next(20) == 0 ? copy[..random.Next(copy.Length)] : copy;
    }

    private static string[] CorpusFiles(string target) => Files(CorpusDirectory(target));

    private static string[] Files(string directory) =>
        Directory.Exists(directory) ? Directory.GetFiles(directory).Where(f => !Path.GetFileName(f).StartsWith('.')).Order().ToArray() : [];

    private static string CorpusDirectory(string target) => RepositoryPaths.Combine("fuzz", "corpus", target);
}
