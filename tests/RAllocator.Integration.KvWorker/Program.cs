using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.Json;
using RAllocator.Fabric;
using RAllocator.Hosting;
using RAllocator.KeyValue;
using RAllocator.Node;
using RAllocator.Protocol;

// Usage: kvworker kv --blade HOST:PORT --token-file F --node-id N --fabric shm --journal FILE --stop-file FILE
//                    [--seconds S] [--keys K] [--seed X]
// Puts and deletes on a PersistentKvStore over a remote heap until --stop-file exists (or --seconds pass), with a
// journal: "T seq P|D key" (started, flushed before the call), "A seq" (acknowledged, flushed after the call
// returned), "X seq" (found not applied after a crash). At every (re)open it verifies the journal against the store.
// Prints one line per event on stdout: VERIFIED {json}, VIOLATION what, ACKED {json}, BLADE-LOST reason, FINAL {json}.
// Exit codes: 0 done, 2 bad arguments, 3 an invariant was violated, 4 the blade stayed unreachable.
var arguments = KvArguments.Parse(args);
if (arguments is null)
{
    return 2;
}

return await new KvWorker(arguments).RunAsync().ConfigureAwait(false);

internal sealed record KvArguments(BladeEndpoint Blade, string TokenFile, uint NodeId, string Fabric, string Journal, string StopFile, double Seconds, int Keys, int Seed)
{
    public static KvArguments? Parse(string[] args)
    {
        if (args is not ["kv", ..])
        {
            Console.Error.WriteLine("kvworker: the first argument is the mode; the only mode is 'kv'");
            return null;
        }

        var values = WorkerProcess.Options(args, first: 1);

        try
        {
            return new KvArguments(
                BladeEndpoint.Parse(values["--blade"]),
                values["--token-file"],
                uint.Parse(values["--node-id"], CultureInfo.InvariantCulture),
                values.GetValueOrDefault("--fabric", "shm"),
                values["--journal"],
                values["--stop-file"],
                double.Parse(values.GetValueOrDefault("--seconds", "120"), CultureInfo.InvariantCulture),
                int.Parse(values.GetValueOrDefault("--keys", "400"), CultureInfo.InvariantCulture),
                int.Parse(values.GetValueOrDefault("--seed", "1"), CultureInfo.InvariantCulture));
        }
        catch (Exception ex) when (ex is KeyNotFoundException or FormatException)
        {
            Console.Error.WriteLine($"kvworker: bad arguments ({ex.Message})");
            return null;
        }
    }
}

/// <summary>An operation the journal says was started: a put of version <see cref="Seq"/>, or a delete.</summary>
internal sealed record Pending(long Seq, bool IsPut, int Key);

/// <summary>Values derivable from (key, version), with a checksum: a torn or misdirected value is detected.</summary>
internal static class KvValues
{
    private const int Header = 16;
    private const int Checksum = 8;

    public static byte[] Key(int key) => Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"key:{key:D5}"));

    public static int KeyOf(byte[] key) =>
        key.Length == 9 && key.AsSpan(0, 4).SequenceEqual("key:"u8) && int.TryParse(key.AsSpan(4), NumberStyles.None, CultureInfo.InvariantCulture, out var k) ? k : -1;

    /// <summary>version (8 B) | key (4 B) | length (4 B) | payload | FNV-1a 64 of everything before it (8 B).</summary>
    public static byte[] Value(int key, long version)
    {
        int length = Header + Checksum + 8 + (int)((((uint)key * 2654435761u) ^ ((uint)version * 40503u)) % 600);
        var bytes = new byte[length];
        BinaryPrimitives.WriteInt64LittleEndian(bytes, version);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(8), key);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(12), length);
        for (int i = Header; i < length - Checksum; i++)
        {
            bytes[i] = (byte)((version * 31) + (key * 7) + i);
        }

        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(length - Checksum), Fnv(bytes.AsSpan(0, length - Checksum)));
        return bytes;
    }

    /// <summary>The version a stored value of <paramref name="key"/> carries, or why it is not well-formed.</summary>
    public static (long Version, string? Problem) Parse(int key, byte[] value)
    {
        if (value.Length < Header + Checksum)
        {
            return (-1, $"{value.Length} bytes, shorter than any value written");
        }

        if (BinaryPrimitives.ReadUInt64LittleEndian(value.AsSpan(value.Length - Checksum)) != Fnv(value.AsSpan(0, value.Length - Checksum)))
        {
            return (-1, $"torn: its checksum does not match its {value.Length} bytes");
        }

        long version = BinaryPrimitives.ReadInt64LittleEndian(value);
        int owner = BinaryPrimitives.ReadInt32LittleEndian(value.AsSpan(8));
        if (owner != key)
        {
            return (version, $"holds the value of key {owner} (version {version})");
        }

        return value.AsSpan().SequenceEqual(Value(key, version)) ? (version, null) : (version, $"is not the value written as version {version}");
    }

    private static ulong Fnv(ReadOnlySpan<byte> bytes)
    {
        ulong hash = 14695981039346656037UL;
        foreach (var b in bytes)
        {
            hash = (hash ^ b) * 1099511628211UL;
        }

        return hash;
    }
}

internal sealed class KvWorker(KvArguments arguments)
{
    private readonly Dictionary<int, long> _acked = []; // key -> version of its last acknowledged put (absent: deleted or never put)
    private readonly Random _random = new(arguments.Seed + Environment.ProcessId);
    private Pending? _pending;
    private long _seq;
    private long _acknowledgedFromJournal;
    private long _acknowledgedHere;
    private int _opens;

    public async Task<int> RunAsync()
    {
        LoadJournal();
        await using var journal = new FileStream(arguments.Journal, FileMode.Append, FileAccess.Write, FileShare.Read);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(arguments.Seconds);
        var token = AccessToken.ReadFile(arguments.TokenFile);
        IFabricConnector connector = arguments.Fabric == "shm"
            ? new SharedMemoryConnector()
            : throw new ArgumentException($"kvworker: fabric '{arguments.Fabric}' is not built into this worker");
        while (true)
        {
            if (await WorkerProcess.OpenHeapAsync(arguments.Blade, arguments.NodeId, token, connector, $"kvworker {arguments.NodeId}").ConfigureAwait(false) is not { } heap)
            {
                return 4;
            }

            try
            {
                var store = await PersistentKvStore.OpenAsync(heap, new KvStoreOptions { MaxKeyBytes = 16, MaxValueBytes = 1024 }).ConfigureAwait(false);
                _opens++;
                if (!await VerifyAsync(store, journal, $"open {_opens}").ConfigureAwait(false))
                {
                    return 3;
                }

                if (!await RunUntilAsync(store, journal, deadline).ConfigureAwait(false))
                {
                    return 3;
                }

                if (!await VerifyAsync(store, journal, "final").ConfigureAwait(false))
                {
                    return 3;
                }

                Console.WriteLine($"FINAL {JsonSerializer.Serialize(new { node = arguments.NodeId, keys = _acked.Count, entries = store.Count, acknowledged_here = _acknowledgedHere, opens = _opens })}");
                await heap.Blades[0].Connection.DisposeAsync().ConfigureAwait(false);
                return 0;
            }
            catch (KvStoreCorruptException ex)
            {
                Console.WriteLine($"VIOLATION the store is corrupt: {ex.Message}");
                return 3;
            }
            catch (Exception ex) when (WorkerProcess.IsBladeLost(ex))
            {
                // The operation in flight, if any, stays pending: it may or may not have happened.
                await WorkerProcess.ReportBladeLostAsync(heap, ex).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Every key holds exactly its last acknowledged value, or is absent when its last acknowledged operation was a
    /// delete (or it was never put) — except the key of the one operation started and not acknowledged, which holds
    /// either its acknowledged state or that operation's result; every value is well-formed; the store has no other
    /// key. Then the pending operation's outcome, now decided, is journaled.
    /// </summary>
    private async Task<bool> VerifyAsync(PersistentKvStore store, FileStream journal, string when)
    {
        var violations = new List<string>();
        var pending = _pending;
        var keys = _acked.Keys.ToHashSet();
        if (pending is not null)
        {
            keys.Add(pending.Key);
        }

        bool? pendingApplied = null;
        foreach (var key in keys.Order())
        {
            long? acked = _acked.TryGetValue(key, out var v) ? v : null;
            var value = await store.GetAsync(KvValues.Key(key)).ConfigureAwait(false);
            long? found = null;
            if (value is not null)
            {
                var (version, problem) = KvValues.Parse(key, value);
                if (problem is not null)
                {
                    violations.Add($"key {key}: the stored value {problem}");
                    continue;
                }

                found = version;
            }

            if (found == acked)
            {
                if (pending?.Key == key)
                {
                    pendingApplied = false;
                }

                continue;
            }

            long? pendingResult = pending is { IsPut: true } ? pending.Seq : null;
            if (pending?.Key == key && found == pendingResult)
            {
                pendingApplied = true;
                continue;
            }

            string Describe(long? version) => version is { } x ? $"version {x}" : "absent";
            violations.Add($"key {key}: the store has {Describe(found)}, the last acknowledged operation left {Describe(acked)}"
                + (pending?.Key == key ? $" and the unacknowledged {(pending.IsPut ? "put" : "delete")} (seq {pending.Seq}) would leave {Describe(pendingResult)}" : ""));
        }

        // Nothing else: every key in the store is one the journal knows.
        var all = await store.ScanAsync(null, null).ConfigureAwait(false);
        foreach (var (key, _) in all)
        {
            int k = KvValues.KeyOf(key);
            if (!keys.Contains(k))
            {
                violations.Add($"key '{Encoding.ASCII.GetString(key)}' is in the store but no acknowledged or pending put wrote it");
            }
        }

        long expectedCount = _acked.Count + (pending is not null && pendingApplied == true ? (pending.IsPut ? (_acked.ContainsKey(pending.Key) ? 0 : 1) : -1) : 0);
        if (all.Count != expectedCount || store.Count != expectedCount)
        {
            violations.Add($"the store has {all.Count} entries (Count {store.Count}); the journal says {expectedCount}");
        }

        foreach (var violation in violations.Take(20))
        {
            Console.WriteLine($"VIOLATION {when}: {violation}");
        }

        if (violations.Count > 0)
        {
            return false;
        }

        if (pending is not null)
        {
            Resolve(journal, pending, pendingApplied == true);
        }

        var report = new
        {
            when,
            node = arguments.NodeId,
            keys = _acked.Count,
            acknowledged = _acknowledgedFromJournal + _acknowledgedHere,
            pending = pending is null ? "none" : $"{(pending.IsPut ? "put" : "delete")} seq {pending.Seq} {(pendingApplied == true ? "applied" : "not applied")}",
            recovery = new { store.Recovery.Created, store.Recovery.Entries, store.Recovery.LiveObjects },
        };
        Console.WriteLine($"VERIFIED {JsonSerializer.Serialize(report)}");
        return true;
    }

    private async Task<bool> RunUntilAsync(PersistentKvStore store, FileStream journal, DateTime deadline)
    {
        long operations = 0;
        while (DateTime.UtcNow < deadline && (operations % 32 != 0 || !File.Exists(arguments.StopFile)))
        {
            operations++;
            int key = _random.Next(arguments.Keys);
            bool isPut = !_acked.ContainsKey(key) || _random.NextDouble() < 0.7;
            var op = new Pending(++_seq, isPut, key);
            WorkerProcess.Append(journal, string.Create(CultureInfo.InvariantCulture, $"T {op.Seq} {(isPut ? 'P' : 'D')} {key}\n"));
            _pending = op;
            if (isPut)
            {
                await store.PutAsync(KvValues.Key(key), KvValues.Value(key, op.Seq)).ConfigureAwait(false);
            }
            else if (!await store.DeleteAsync(KvValues.Key(key)).ConfigureAwait(false))
            {
                Console.WriteLine($"VIOLATION delete of key {key} (acknowledged version {_acked[key]}) found it absent");
                return false;
            }

            // Acknowledged only now: the journal records what the application may rely on after a crash.
            WorkerProcess.Append(journal, string.Create(CultureInfo.InvariantCulture, $"A {op.Seq}\n"));
            Apply(op);
            _pending = null;
            _acknowledgedHere++;
            if (_acknowledgedHere % 100 == 0)
            {
                Console.WriteLine($"ACKED {JsonSerializer.Serialize(new { acknowledged_here = _acknowledgedHere, keys = _acked.Count, seq = _seq })}");
            }

            // Read back a random key: it must hold exactly what the journal says (nothing is in flight now).
            int probe = _random.Next(arguments.Keys);
            var value = await store.GetAsync(KvValues.Key(probe)).ConfigureAwait(false);
            long? expected = _acked.TryGetValue(probe, out var v) ? v : null;
            long? found = value is null ? null : KvValues.Parse(probe, value) is (var version, null) ? version : -1;
            if (found != expected)
            {
                Console.WriteLine($"VIOLATION key {probe} reads as {found?.ToString(CultureInfo.InvariantCulture) ?? "absent"} (-1: malformed) while running; acknowledged: {expected?.ToString(CultureInfo.InvariantCulture) ?? "absent"}");
                return false;
            }

            if (operations % 256 == 0)
            {
                await store.Heap.PublishEpochsAsync().ConfigureAwait(false);
            }
        }

        return true;
    }

    private void Apply(Pending op)
    {
        if (op.IsPut)
        {
            _acked[op.Key] = op.Seq;
        }
        else
        {
            _acked.Remove(op.Key);
        }
    }

    /// <summary>After a verified recovery the pending operation is decided (all or nothing): journal which.</summary>
    private void Resolve(FileStream journal, Pending op, bool applied)
    {
        WorkerProcess.Append(journal, string.Create(CultureInfo.InvariantCulture, $"{(applied ? 'A' : 'X')} {op.Seq}\n"));
        if (applied)
        {
            Apply(op);
        }

        _pending = null;
    }

    private void LoadJournal()
    {
        if (!File.Exists(arguments.Journal))
        {
            return;
        }

        var lines = File.ReadAllText(arguments.Journal).Split('\n');
        // The last element follows the last newline: empty, or a line a kill -9 tore (never acknowledged).
        foreach (var line in lines.SkipLast(1))
        {
            var fields = line.Split(' ');
            if (fields is ["T", var seq, var op, var key] && (op is "P" or "D"))
            {
                if (_pending is not null)
                {
                    throw new InvalidDataException($"journal {arguments.Journal}: operation {seq} started while {_pending.Seq} was undecided");
                }

                _pending = new Pending(long.Parse(seq, CultureInfo.InvariantCulture), op == "P", int.Parse(key, CultureInfo.InvariantCulture));
                _seq = Math.Max(_seq, _pending.Seq);
            }
            else if (fields is ["A" or "X", var decided] && _pending is not null && long.Parse(decided, CultureInfo.InvariantCulture) == _pending.Seq)
            {
                if (fields[0] == "A")
                {
                    Apply(_pending);
                    _acknowledgedFromJournal++;
                }

                _pending = null;
            }
            else
            {
                throw new InvalidDataException($"journal {arguments.Journal}: unexpected line '{line}'");
            }
        }
    }
}
