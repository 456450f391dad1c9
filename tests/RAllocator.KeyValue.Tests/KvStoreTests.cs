using System.Buffers.Binary;
using System.Text;

namespace RAllocator.KeyValue.Tests;

/// <summary>The store's operations against a sorted-dictionary model, its limits and errors, and corruption detection.</summary>
public sealed class KvStoreTests
{
    private static readonly KvStoreOptions s_options = new() { MaxKeyBytes = 64, MaxValueBytes = 2048, MaxHeight = 8, Seed = 7 };

    [Fact]
    public async Task RandomOperationsMatchASortedDictionary()
    {
        var h = await KvHarness.StartAsync(s_options);
        var model = new SortedDictionary<string, byte[]>(StringComparer.Ordinal);
        var rng = new Random(12345);
        for (int step = 0; step < 3000; step++)
        {
            string key = $"key{rng.Next(400):D4}";
            int op = rng.Next(10);
            if (op < 6)
            {
                var value = KvHarness.Value(key, step, rng.Next(0, 300));
                await h.Store.PutAsync(Encoding.UTF8.GetBytes(key), value);
                model[key] = value;
            }
            else if (op < 8)
            {
                (await h.Store.DeleteAsync(Encoding.UTF8.GetBytes(key))).ShouldBe(model.Remove(key), $"delete {key} at step {step}");
            }
            else
            {
                var got = await h.Store.GetAsync(Encoding.UTF8.GetBytes(key));
                got.ShouldBe(model.TryGetValue(key, out var v) ? v : null, $"get {key} at step {step}");
            }
        }

        await h.ShouldMatchAsync(model, "after 3000 random operations");

        // Range scans: bounds inclusive-exclusive, limits.
        var range = await h.Store.ScanAsync(Encoding.UTF8.GetBytes("key0100"), Encoding.UTF8.GetBytes("key0200"));
        range.Select(kv => Encoding.UTF8.GetString(kv.Key)).ShouldBe(
            model.Keys.Where(k => string.CompareOrdinal(k, "key0100") >= 0 && string.CompareOrdinal(k, "key0200") < 0).ToList());
        var limited = await h.Store.ScanAsync(Encoding.UTF8.GetBytes("key0050"), null, limit: 5);
        limited.Select(kv => Encoding.UTF8.GetString(kv.Key)).ShouldBe(model.Keys.Where(k => string.CompareOrdinal(k, "key0050") >= 0).Take(5).ToList());
    }

    [Fact]
    public async Task TextKeysAndValuesRoundTrip()
    {
        var h = await KvHarness.StartAsync(s_options);
        IKeyValueStore store = h.Store;
        await store.PutAsync("grüße", "hello, disaggregated NVM");
        (await store.GetAsync("grüße")).ShouldBe("hello, disaggregated NVM");
        (await store.GetAsync("absent")).ShouldBeNull();
        (await store.DeleteAsync("grüße")).ShouldBeTrue();
        (await store.DeleteAsync("grüße")).ShouldBeFalse();
    }

    [Fact]
    public async Task LimitsAreEnforcedWithMessagesThatNameThem()
    {
        var h = await KvHarness.StartAsync(s_options);
        var ex = await Should.ThrowAsync<ArgumentException>(async () => await h.Store.PutAsync(new byte[65], new byte[1]));
        ex.Message.ShouldContain("65 bytes");
        ex.Message.ShouldContain("MaxKeyBytes is 64");
        var vex = await Should.ThrowAsync<ArgumentException>(async () => await h.Store.PutAsync(new byte[3], new byte[2049]));
        vex.Message.ShouldContain("MaxValueBytes is 2048");
        await Should.ThrowAsync<ArgumentException>(async () => await h.Store.GetAsync(ReadOnlyMemory<byte>.Empty));

        // The limits are the store's: reopening with other options keeps them.
        await h.Store.PutAsync(new byte[64], new byte[2048]);
        var reopened = await PersistentKvStore.OpenAsync(h.Heap, new KvStoreOptions { MaxKeyBytes = 8, MaxValueBytes = 8 });
        reopened.MaxKeyBytes.ShouldBe(64);
        reopened.MaxValueBytes.ShouldBe(2048);
        (await reopened.GetAsync(new byte[64]))!.Length.ShouldBe(2048);
    }

    [Fact]
    public async Task OpeningWithoutARootFailsWhenCreationIsNotAllowed()
    {
        var h = new KvHarness(s_options);
        var heap = await EmbeddedNode.OpenHeapAsync([h.Blade], 2);
        var ex = await Should.ThrowAsync<InvalidOperationException>(() => PersistentKvStore.OpenAsync(heap, s_options with { CreateIfMissing = false }));
        ex.Message.ShouldContain("no root pointer");
    }

    [Fact]
    public async Task ATornValueIsReportedOnReadAndOnOpenWithItsKey()
    {
        var h = await KvHarness.StartAsync(s_options);
        await h.Store.PutAsync("alpha", "first value");
        await h.Store.PutAsync("beta", "second value");
        var node = await FindNodeAsync(h, "beta");
        var valuePtr = RemotePtr.FromPacked(await h.Heap.ReadAsync<ulong>(node.Add(8)));

        // Flip one byte of the value's payload, as a lost store in its middle would.
        var one = new byte[1];
        await h.Heap.ReadBytesAsync(valuePtr.Add(10), one);
        one[0] ^= 0x5a;
        await h.Heap.WriteAndPersistAsync(valuePtr.Add(10), one);

        var get = await Should.ThrowAsync<KvStoreCorruptException>(async () => await h.Store.GetAsync("beta"));
        get.Pointer.ShouldBe(valuePtr);
        get.Message.ShouldContain("checksum");
        (await h.Store.GetAsync("alpha")).ShouldBe("first value");

        var open = await Should.ThrowAsync<KvStoreCorruptException>(() => h.DropNodeAsync());
        open.Message.ShouldContain("\"beta\"");
        open.Message.ShouldContain("torn or overwritten value");
    }

    [Fact]
    public async Task KeysOutOfOrderAndForeignRootsAreReportedAsCorrupt()
    {
        var h = await KvHarness.StartAsync(s_options);
        await h.Store.PutAsync("a", "1");
        await h.Store.PutAsync("b", "2");

        // Swap the two level-0 links' targets: the head then points at "b", whose next is "a".
        var a = await FindNodeAsync(h, "a");
        var b = await FindNodeAsync(h, "b");
        var head = RemotePtr.FromPacked(await h.Heap.ReadAsync<ulong>(h.Store.Superblock.Add(24)));
        await h.Heap.WriteAndPersistAsync(head.Add(16), BitConverter.GetBytes(b.Packed));
        await h.Heap.WriteAndPersistAsync(b.Add(16), BitConverter.GetBytes(a.Packed));
        await h.Heap.WriteAndPersistAsync(a.Add(16), BitConverter.GetBytes(0UL));
        var order = await Should.ThrowAsync<KvStoreCorruptException>(() => h.DropNodeAsync());
        order.Message.ShouldContain("keys out of order: key \"a\" follows \"b\"");

        // A root that names some other object.
        var other = new KvHarness(s_options);
        var heap = await EmbeddedNode.OpenHeapAsync([other.Blade], 3);
        var obj = await heap.AllocateAsync(64);
        await heap.WriteAndPersistAsync(obj, new byte[64]);
        await heap.SetRootAsync(obj);
        var magic = await Should.ThrowAsync<KvStoreCorruptException>(() => PersistentKvStore.OpenAsync(heap, s_options));
        magic.Message.ShouldContain("bad magic");
        magic.Pointer.ShouldBe(obj);
    }

    [Fact]
    public async Task ReadersRunConcurrentlyWithTheWriterAndNeverSeeFreedObjects()
    {
        var h = await KvHarness.StartAsync(s_options);
        const int Keys = 64;
        for (int k = 0; k < Keys; k++)
        {
            await h.Store.PutAsync(Encoding.UTF8.GetBytes($"k{k:D3}"), Versioned(k, 0));
        }

        using var stop = new CancellationTokenSource();
        var readers = Enumerable.Range(0, 2).Select(r => Task.Run(async () =>
        {
            var rng = new Random(r);
            long reads = 0;
            while (!stop.IsCancellationRequested || reads < 1000)
            {
                int k = rng.Next(Keys);
                var value = await h.Store.GetAsync(Encoding.UTF8.GetBytes($"k{k:D3}"));
                if (value is not null)
                {
                    // Every value read is some complete version of this key.
                    BinaryPrimitives.ReadInt32LittleEndian(value).ShouldBe(k);
                    value.ShouldBe(Versioned(k, BinaryPrimitives.ReadInt32LittleEndian(value.AsSpan(4))));
                }

                reads++;
            }

            return reads;
        })).ToArray();

        var rng = new Random(99);
        for (int version = 1; version < 1500; version++)
        {
            int k = rng.Next(Keys);
            if (rng.Next(5) == 0)
            {
                await h.Store.DeleteAsync(Encoding.UTF8.GetBytes($"k{k:D3}"));
            }
            else
            {
                await h.Store.PutAsync(Encoding.UTF8.GetBytes($"k{k:D3}"), Versioned(k, version));
            }
        }

        stop.Cancel();
        (await Task.WhenAll(readers)).ShouldAllBe(n => n >= 1000);

        // Once the readers are gone, the next write frees everything retired.
        await h.Store.PutAsync("k000"u8.ToArray(), Versioned(0, 9999));
        h.Heap.GetStatistics().LiveObjects.ShouldBe(2 + (2 * h.Store.Count));

        static byte[] Versioned(int key, int version)
        {
            var bytes = new byte[8 + (version % 200)];
            BinaryPrimitives.WriteInt32LittleEndian(bytes, key);
            BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(4), version);
            for (int i = 8; i < bytes.Length; i++)
            {
                bytes[i] = (byte)(key + version + i);
            }

            return bytes;
        }
    }

    /// <summary>The node of <paramref name="key"/>, by walking level 0 from the head (test-only, reads the format).</summary>
    internal static async Task<RemotePtr> FindNodeAsync(KvHarness h, string key)
    {
        var head = RemotePtr.FromPacked(await h.Heap.ReadAsync<ulong>(h.Store.Superblock.Add(24)));
        var target = Encoding.UTF8.GetBytes(key);
        for (ulong current = await h.Heap.ReadAsync<ulong>(head.Add(16)); current != 0;)
        {
            var ptr = RemotePtr.FromPacked(current);
            ulong header = await h.Heap.ReadAsync<ulong>(ptr);
            int keyLength = (int)(header & 0xffff), height = (int)((header >> 16) & 0xff);
            var keyBytes = new byte[keyLength];
            await h.Heap.ReadBytesAsync(ptr.Add(16 + (8 * height)), keyBytes);
            if (keyBytes.AsSpan().SequenceEqual(target))
            {
                return ptr;
            }

            current = await h.Heap.ReadAsync<ulong>(ptr.Add(16));
        }

        throw new InvalidOperationException($"key {key} not found");
    }
}
