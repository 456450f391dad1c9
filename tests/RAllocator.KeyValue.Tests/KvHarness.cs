namespace RAllocator.KeyValue.Tests;

/// <summary>How a simulated power failure treats the stores not yet persisted.</summary>
public enum LostStores
{
    /// <summary>Every unpersisted store is lost.</summary>
    All,

    /// <summary>Every unpersisted store reaches NVM anyway.</summary>
    None,

    /// <summary>Each unpersisted store survives with probability 1/2 (seeded).</summary>
    RandomSubset,
}

/// <summary>
/// One in-process blade on <see cref="SimulatedNvm"/> and one working node running a <see cref="PersistentKvStore"/>,
/// with the three failures the crash tests need: the blade's power fails (unpersisted stores lost per
/// <see cref="LostStores"/>), the node is dropped (a fresh heap for the same node id, the blade untouched), and a
/// power failure at the k-th persist from now (<see cref="ArmPowerFailure"/>).
/// </summary>
internal sealed class KvHarness
{
    public const ulong SlabSizeBytes = 64 * 1024;
    public const uint NodeId = 1;

    private readonly ProtocolOptions _protocol;
    private readonly KvStoreOptions _options;

    public KvHarness(KvStoreOptions options, long regionBytes = 8L << 20)
    {
        _options = options;
        Nvm = new SimulatedNvm(regionBytes);
        Blade = EmbeddedBlade.Format(0, Nvm, SlabSizeBytes, new BladeFormatOptions { MaxNodes = 4 });
        Blade.Agent.RunOnce();
        _protocol = new ProtocolOptions
        {
            // No background agent: whenever the node must wait for the blade (an empty ring, a full area), run one pass.
            Backoff = (_, _) =>
            {
                Blade.Agent.RunOnce();
                return Task.CompletedTask;
            },
        };
    }

    public SimulatedNvm Nvm { get; }

    public EmbeddedBlade Blade { get; }

    public WorkingNodeHeap Heap { get; private set; } = null!;

    public PersistentKvStore Store { get; private set; } = null!;

    public static async Task<KvHarness> StartAsync(KvStoreOptions options, long regionBytes = 8L << 20)
    {
        var harness = new KvHarness(options, regionBytes);
        await harness.OpenNodeAsync();
        return harness;
    }

    /// <summary>Opens a fresh heap for the node (a new incarnation) and opens (recovers) the store on it.</summary>
    public async Task OpenNodeAsync()
    {
        Heap = await EmbeddedNode.OpenHeapAsync([Blade], NodeId, protocolOptions: _protocol);
        Store = await PersistentKvStore.OpenAsync(Heap, _options);
    }

    /// <summary>The blade loses power (and the node with it), restarts on what its NVM kept, and the node reopens.</summary>
    public async Task CrashBladeAsync(LostStores lost, int seed)
    {
        Nvm.BeforePersist = null;
        Blade.Restart(region =>
        {
            var nvm = (SimulatedNvm)region;
            switch (lost)
            {
                case LostStores.All: nvm.CrashKeepingNone(); break;
                case LostStores.None: nvm.CrashKeepingAll(); break;
                default: nvm.Crash(seed); break;
            }
        });
        Blade.Agent.RunOnce();
        await OpenNodeAsync();
    }

    /// <summary>The node process dies (its volatile state is gone) and restarts; the blade keeps running.</summary>
    public Task DropNodeAsync()
    {
        Nvm.BeforePersist = null;
        return OpenNodeAsync();
    }

    /// <summary>Makes the <paramref name="k"/>-th persist from now (0: the next) fail with a power failure.</summary>
    public void ArmPowerFailure(int k)
    {
        long target = Nvm.PersistCount + k;
        Nvm.BeforePersist = index =>
        {
            if (index == target)
            {
                throw new SimulatedPowerFailure(index);
            }
        };
    }

    /// <summary>
    /// Checks the store against <paramref name="model"/>: the scan returns exactly the model in key order, every
    /// get returns the model's bytes, the count matches, and the heap holds exactly the store's objects (superblock,
    /// head, one node and one value per entry): nothing leaked by interrupted operations survives recovery.
    /// </summary>
    public async Task ShouldMatchAsync(IReadOnlyDictionary<string, byte[]> model, string when)
    {
        var scanned = await Store.ScanAsync(null, null);
        var expected = model.OrderBy(kv => kv.Key, StringComparer.Ordinal).ToList();
        var scannedKeys = scanned.Select(kv => System.Text.Encoding.UTF8.GetString(kv.Key)).ToList();
        scannedKeys.ShouldBe(expected.Select(kv => kv.Key).ToList(), $"{when}: keys after recovery");
        for (int i = 0; i < expected.Count; i++)
        {
            scanned[i].Value.ShouldBe(expected[i].Value, $"{when}: value of {expected[i].Key} (scan)");
            var got = await Store.GetAsync(System.Text.Encoding.UTF8.GetBytes(expected[i].Key));
            got.ShouldBe(expected[i].Value, $"{when}: value of {expected[i].Key} (get)");
        }

        Store.Count.ShouldBe(model.Count, $"{when}: count");
        Heap.GetStatistics().LiveObjects.ShouldBe(2 + (2L * model.Count), $"{when}: live heap objects (superblock + head + node and value per entry)");
    }

    /// <summary>A deterministic value for a key, salt and length (every byte depends on all three).</summary>
    public static byte[] Value(string key, int salt, int length)
    {
        var bytes = new byte[length];
        uint x = 2166136261u ^ ((uint)length * 16777619u) ^ unchecked((uint)salt * 2654435761u) ^ (uint)key.Length;
        x = x == 0 ? 1 : x;
        foreach (char c in key)
        {
            x = (x * 31) + c;
        }

        for (int i = 0; i < length; i++)
        {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            bytes[i] = (byte)x;
        }

        return bytes;
    }
}
