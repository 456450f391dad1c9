using System.Buffers.Binary;
using System.Text.Json;
using System.Text.Json.Nodes;
using RAllocator.Blade;
using RAllocator.Embedded;
using RAllocator.Fabric;
using RAllocator.Node;
using RAllocator.Nvm;
using RAllocator.Protocol;
using RAllocator.Protocol.Layout;

namespace RAllocator.Benchmarks.Quick;

/// <summary>
/// Quick mode for issue 8 (defragmentation), in-process blades on simulated NVM, every figure measured on the run:
/// <code>
///   compaction [--objects 20000] [--free-percent 70] [--seed 1] [--out bench/results/compaction.json]
///       fragment a heap, then compact it; and, on two blades, evacuate one (migration)
/// </code>
/// The application keeps a durable table of pointers (4 KiB table objects of 512 slots each); its relocation callback
/// rewrites one slot with one persisted 8-byte write, one round trip, counted separately.
/// </summary>
internal static class Compaction
{
    private const ulong SlabSize = 1 << 20;
    private const int SlotsPerTable = 512;
    private static readonly int[] s_sizes = [64, 256, 1024, 4096, 16384];
    private static readonly ProtocolOptions s_patient = new() { RingReadRetryLimit = 20000, AreaFullRetryLimit = 20000 };

    public static bool IsMode(string argument) => argument == "compaction";

    public static int Run(string[] args)
    {
        var options = QuickOptions.Parse(args.Skip(1));
        int objects = options.Int("objects", 20000);
        int freePercent = options.Int("free-percent", 70);
        int seed = options.Int("seed", 1);
        var compaction = RunAsync(objects, freePercent, seed, migrate: false).GetAwaiter().GetResult();
        var migration = RunAsync(objects, freePercent, seed, migrate: true).GetAwaiter().GetResult();
        var result = new JsonObject
        {
            ["benchmark"] = "compaction",
            ["description"] = $"In-process blades on simulated NVM (1 MiB slabs), loopback fabric, agent running. One node allocates {objects} objects, "
                + $"sizes drawn uniformly from {string.Join(", ", s_sizes)} B, each written (8-byte header, persisted) and linked into a durable table of "
                + $"pointers; then it unlinks and frees a random {freePercent}%. Compaction: one blade, CompactAsync with the default occupancy threshold "
                + "(0.5). Migration: the same on two blades (round-robin placement), then CompactAsync evacuating blade 1. The relocation callback "
                + "rewrites one table slot (WriteAndPersistAsync of 8 bytes, 1 round trip); round trips per moved object are given with and without it. "
                + "Utilization = live object bytes (size-class sizes) / bytes of slabs held.",
            ["objects_allocated"] = objects,
            ["free_percent"] = freePercent,
            ["seed"] = seed,
            ["slab_size_bytes"] = SlabSize,
            ["compaction"] = compaction,
            ["migration"] = migration,
        };
        return options.WriteResult(result, "compaction");
    }

    private static async Task<JsonObject> RunAsync(int objects, int freePercent, int seed, bool migrate)
    {
        var random = new Random(seed);
        using var stop = new CancellationTokenSource();
        int bladeCount = migrate ? 2 : 1;
        long regionBytes = (long)(objects * s_sizes.Average() * 1.3 / bladeCount) + (64L << 20);
        var blades = Enumerable.Range(0, bladeCount)
            .Select(id => EmbeddedBlade.Format(id, new SimulatedNvm(regionBytes), SlabSize, new BladeFormatOptions { MaxNodes = 2, RingCapacity = 16 }))
            .ToArray();
        var agents = blades.Select(b => b.RunAgentAsync(stop.Token)).ToArray();
        try
        {
            var heap = await EmbeddedNode.OpenHeapAsync(blades, nodeId: 1, new HeapOptions(), s_patient);
            var app = await TableApp.CreateAsync(heap, objects);
            for (int i = 0; i < objects; i++)
            {
                await app.AddAsync(i, s_sizes[random.Next(s_sizes.Length)]);
                if (i % 1024 == 0)
                {
                    await heap.PublishEpochsAsync();
                }
            }

            int freed = 0;
            foreach (int i in Enumerable.Range(0, objects).OrderBy(_ => random.Next()).Take(objects * freePercent / 100).ToArray())
            {
                await app.RemoveAsync(i);
                if (++freed % 1024 == 0)
                {
                    await heap.PublishEpochsAsync();
                }
            }

            await heap.PublishEpochsAsync();
            var report = await heap.CompactAsync(app.RelocateAsync, migrate ? new CompactionOptions { EvacuateBlade = 1 } : null);
            await app.CheckAsync();
            long leftOnEvacuated = migrate ? heap.OwnedSlabIndexes(1).Count : 0;
            return Describe(report, app.CallbackCost, leftOnEvacuated);
        }
        finally
        {
            await stop.CancelAsync();
            await Task.WhenAll(agents);
        }
    }

    private static JsonObject Describe(CompactionReport report, FabricCounterSnapshot callback, long leftOnEvacuated)
    {
        var fabric = report.Fabric;
        double moved = Math.Max(1, report.ObjectsMoved);
        var json = new JsonObject
        {
            ["before"] = Utilization(report.Before),
            ["after"] = Utilization(report.After),
            ["source_slabs"] = report.SourceSlabs,
            ["objects_moved"] = report.ObjectsMoved,
            ["bytes_moved"] = report.BytesMoved,
            ["slabs_returned"] = report.SlabsReturned,
            ["slabs_added"] = report.SlabsAdded,
            ["round_trips"] = fabric.RoundTrips,
            ["round_trips_per_moved_object"] = Math.Round(fabric.RoundTrips / moved, 3),
            ["callback_round_trips"] = callback.RoundTrips,
            ["round_trips_per_moved_object_excluding_callback"] = Math.Round((fabric.RoundTrips - callback.RoundTrips) / moved, 3),
            ["reads"] = fabric.Reads,
            ["writes"] = fabric.Writes,
            ["persists"] = fabric.Persists,
            ["bytes_from_blade"] = fabric.BytesFromBlade,
            ["bytes_to_blade"] = fabric.BytesToBlade,
            ["bytes_from_blade_per_byte_moved"] = Math.Round(fabric.BytesFromBlade / Math.Max(1.0, report.BytesMoved), 3),
            ["elapsed_ms"] = Math.Round(report.Elapsed.TotalMilliseconds, 1),
            ["per_class"] = new JsonArray(report.Classes.Select(c => (JsonNode)new JsonObject
            {
                ["object_size"] = c.ObjectSizeBytes,
                ["source_slabs"] = c.SourceSlabs,
                ["objects_moved"] = c.ObjectsMoved,
                ["slabs_returned"] = c.SlabsReturned,
                ["slabs_before"] = c.Before.SlabsHeld,
                ["slabs_after"] = c.After.SlabsHeld,
                ["utilization_before"] = Math.Round(c.Before.Utilization, 4),
                ["utilization_after"] = Math.Round(c.After.Utilization, 4),
            }).ToArray()),
        };
        if (report.EvacuatedBlade is int blade)
        {
            json["evacuated_blade"] = blade;
            json["slabs_left_on_evacuated_blade"] = leftOnEvacuated;
        }

        return json;
    }

    private static JsonObject Utilization(HeapUtilization u) => new()
    {
        ["utilization"] = Math.Round(u.Utilization, 4),
        ["slabs_held"] = u.SlabsHeld,
        ["live_objects"] = u.LiveObjects,
        ["live_bytes"] = u.LiveBytes,
        ["held_bytes"] = u.HeldBytes,
    };

    /// <summary>The application: objects linked from durable tables of pointers (themselves heap objects the compaction may move).</summary>
    private sealed class TableApp
    {
        private readonly WorkingNodeHeap _heap;
        private readonly RemotePtr[] _tables;
        private readonly RemotePtr[] _objects;
        private readonly Dictionary<RemotePtr, int> _index = [];
        private FabricCounterSnapshot _callbackCost;

        private TableApp(WorkingNodeHeap heap, RemotePtr[] tables, int objects)
        {
            _heap = heap;
            _tables = tables;
            _objects = new RemotePtr[objects];
        }

        public FabricCounterSnapshot CallbackCost => _callbackCost;

        public static async Task<TableApp> CreateAsync(WorkingNodeHeap heap, int objects)
        {
            var tables = new RemotePtr[(objects + SlotsPerTable - 1) / SlotsPerTable];
            for (int t = 0; t < tables.Length; t++)
            {
                tables[t] = await heap.AllocateAsync(SlotsPerTable * 8);
                await heap.WriteAndPersistAsync(tables[t], new byte[SlotsPerTable * 8]);
            }

            return new TableApp(heap, tables, objects);
        }

        public async Task AddAsync(int i, int size)
        {
            var ptr = await _heap.AllocateAsync(size);
            await _heap.WriteAndPersistAsync(ptr, Header(i));
            await SetSlotAsync(i, ptr);
            _objects[i] = ptr;
            _index[ptr] = i;
        }

        public async Task RemoveAsync(int i)
        {
            await SetSlotAsync(i, RemotePtr.Null);
            _index.Remove(_objects[i]);
            await _heap.FreeAsync(_objects[i]);
            _objects[i] = RemotePtr.Null;
        }

        public async ValueTask RelocateAsync(RemotePtr from, RemotePtr to, CancellationToken cancellationToken)
        {
            var before = Counters();
            int table = Array.IndexOf(_tables, from);
            if (table >= 0)
            {
                // A real application would swing the pointer that names its table; here the tables are named in memory only.
                _tables[table] = to;
            }
            else
            {
                int i = _index[from];
                _index.Remove(from);
                _index[to] = i;
                _objects[i] = to;
                await SetSlotAsync(i, to, cancellationToken);
            }

            _callbackCost = _callbackCost.Plus(Counters().Since(before));
        }

        /// <summary>Every linked object is where its table slot says, allocated, with its header.</summary>
        public async Task CheckAsync()
        {
            var word = new byte[8];
            for (int i = 0; i < _objects.Length; i++)
            {
                if (_objects[i].IsNull)
                {
                    continue;
                }

                await _heap.ReadBytesAsync(Slot(i), word);
                var header = new byte[16];
                await _heap.ReadBytesAsync(_objects[i], header);
                if (BinaryPrimitives.ReadUInt64LittleEndian(word) != _objects[i].Packed || !header.AsSpan().SequenceEqual(Header(i)) || !_heap.IsAllocated(_objects[i]))
                {
                    throw new InvalidOperationException($"object {i} at {_objects[i]} is not intact after compaction");
                }
            }
        }

        private FabricCounterSnapshot Counters() =>
            _heap.Blades.Aggregate(default(FabricCounterSnapshot), (sum, blade) => sum.Plus(blade.Counters.Snapshot()));

        private RemotePtr Slot(int i) => _tables[i / SlotsPerTable].Add((i % SlotsPerTable) * 8);

        private ValueTask SetSlotAsync(int i, RemotePtr value, CancellationToken cancellationToken = default)
        {
            var bytes = new byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(bytes, value.Packed);
            return _heap.WriteAndPersistAsync(Slot(i), bytes, cancellationToken);
        }

        private static byte[] Header(int i)
        {
            var bytes = new byte[16];
            BinaryPrimitives.WriteUInt64LittleEndian(bytes, 0x4F424A0000000000UL | (uint)i);
            BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(8), (ulong)i * 0x9E3779B97F4A7C15UL);
            return bytes;
        }
    }
}
