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
    private const int MutationsPerSeed = 300;

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
            for (int i = 0; i < MutationsPerSeed; i++)
            {
                byte[] mutated = Mutate(original, random);
                Run(target, mutated, $"{Path.GetFileName(file)} mutation {i} (seed {seed})");
            }
        }
    }

    [Fact]
    public void TheImageSeedIsAValidFormattedBlade()
    {
        // Keeps the seed meaningful: a corpus of garbage would only ever test the magic check.
        byte[] seedImage = File.ReadAllBytes(Path.Combine(CorpusDirectory("image"), "formatted-1-slab.img"));
        using var region = SimulatedNvm.FromDurableImage(seedImage);
        BladeImage.Open(region, BladeOpenMode.ReadOnly).Scan().IsConsistent.ShouldBeTrue();
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
    }

    private static void Run(string target, byte[] input, string name)
    {
        try
        {
            FuzzTargets.All[target](input);
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

    private static string[] CorpusFiles(string target) =>
        Directory.Exists(CorpusDirectory(target)) ? Directory.GetFiles(CorpusDirectory(target)).Order().ToArray() : [];

    private static string CorpusDirectory(string target) => RepositoryPaths.Combine("fuzz", "corpus", target);
}
