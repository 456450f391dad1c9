using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.Json;
using RAllocator.Fabric;
using RAllocator.Hosting;
using RAllocator.Node;
using RAllocator.Protocol;

// Usage: worker --blade HOST:PORT --token-file F --node-id N --fabric shm|ucx --journal FILE --seconds S [--seed X]
// Prints one line per event on stdout: RECOVERED {json}, BLADE-LOST reason, VIOLATION what, FINAL {json}.
// Exit codes: 0 done, 2 bad arguments, 3 an invariant was violated, 4 the blade stayed unreachable.
var arguments = Arguments.Parse(args);
if (arguments is null)
{
    return 2;
}

return await new Worker(arguments).RunAsync().ConfigureAwait(false);

internal sealed record Arguments(BladeEndpoint Blade, string TokenFile, uint NodeId, string Fabric, string Journal, double Seconds, int Seed)
{
    public static Arguments? Parse(string[] args)
    {
        var values = WorkerProcess.Options(args, first: 0);

        try
        {
            return new Arguments(
                BladeEndpoint.Parse(values["--blade"]),
                values["--token-file"],
                uint.Parse(values["--node-id"], CultureInfo.InvariantCulture),
                values.GetValueOrDefault("--fabric", "shm"),
                values["--journal"],
                double.Parse(values["--seconds"], CultureInfo.InvariantCulture),
                int.Parse(values.GetValueOrDefault("--seed", "1"), CultureInfo.InvariantCulture));
        }
        catch (Exception ex) when (ex is KeyNotFoundException or FormatException)
        {
            Console.Error.WriteLine($"worker: bad arguments ({ex.Message})");
            return null;
        }
    }
}

internal sealed class Worker(Arguments arguments)
{
    private readonly Dictionary<ulong, (long Sequence, int Size)> _live = [];
    private readonly Random _random = new(arguments.Seed);
    private long _sequence;

    public async Task<int> RunAsync()
    {
        LoadJournal();
        await using var journal = new FileStream(arguments.Journal, FileMode.Append, FileAccess.Write, FileShare.Read);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(arguments.Seconds);
        var token = AccessToken.ReadFile(arguments.TokenFile);
        var connector = Connectors.For(arguments.Fabric);
        while (true)
        {
            if (await WorkerProcess.OpenHeapAsync(arguments.Blade, arguments.NodeId, token, connector, $"worker {arguments.NodeId}").ConfigureAwait(false) is not { } heap)
            {
                return 4;
            }

            if (!await VerifyRecoveryAsync(heap).ConfigureAwait(false))
            {
                return 3;
            }

            try
            {
                await RunUntilAsync(heap, journal, deadline).ConfigureAwait(false);
                var final = new { node = arguments.NodeId, owned = heap.OwnedSlabIndexes(0).Order().ToArray(), live = _live.Count };
                Console.WriteLine($"FINAL {JsonSerializer.Serialize(final)}");
                await heap.Blades[0].Connection.DisposeAsync().ConfigureAwait(false);
                return 0;
            }
            catch (Exception ex) when (WorkerProcess.IsBladeLost(ex))
            {
                await WorkerProcess.ReportBladeLostAsync(heap, ex).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Every acknowledged object must be in a recovered slab with exactly the bytes written.</summary>
    private async Task<bool> VerifyRecoveryAsync(WorkingNodeHeap heap)
    {
        var recovery = heap.Recoveries[0];
        var ptrs = _live.Keys.Select(RemotePtr.FromPacked).ToArray();
        try
        {
            await heap.CompleteRecoveryAsync(ptrs).ConfigureAwait(false);
        }
        catch (InvalidOperationException ex)
        {
            Console.WriteLine($"VIOLATION acknowledged object lost with its slab: {ex.Message}");
            return false;
        }

        foreach (var (packed, (sequence, size)) in _live)
        {
            var bytes = new byte[size];
            await heap.ReadBytesAsync(RemotePtr.FromPacked(packed), bytes).ConfigureAwait(false);
            if (!bytes.AsSpan().SequenceEqual(Payload(sequence, size)))
            {
                Console.WriteLine($"VIOLATION object {RemotePtr.FromPacked(packed)} (sequence {sequence}) does not hold what was persisted");
                return false;
            }
        }

        var report = new { node = arguments.NodeId, owned = recovery.OwnedSlabs.Select(s => s.SlabIndex).Order().ToArray(), verified = _live.Count };
        Console.WriteLine($"RECOVERED {JsonSerializer.Serialize(report)}");
        return true;
    }

    private async Task RunUntilAsync(WorkingNodeHeap heap, FileStream journal, DateTime deadline)
    {
        var operations = 0L;
        while (DateTime.UtcNow < deadline)
        {
            if (_live.Count < 50 || (_live.Count < 4000 && _random.NextDouble() < 0.6))
            {
                var size = 16 << _random.Next(0, 9);
                var sequence = ++_sequence;
                var ptr = await heap.AllocateAsync(size).ConfigureAwait(false);
                await heap.WriteAndPersistAsync(ptr, Payload(sequence, size)).ConfigureAwait(false);
                // Acknowledged only now: the journal records what the application may rely on after a crash.
                WorkerProcess.Append(journal, $"A {ptr.Packed} {sequence} {size}\n");
                _live[ptr.Packed] = (sequence, size);
            }
            else
            {
                var victim = _live.Keys.ElementAt(_random.Next(_live.Count));
                WorkerProcess.Append(journal, $"F {victim}\n");
                _live.Remove(victim);
                await heap.FreeAsync(RemotePtr.FromPacked(victim)).ConfigureAwait(false);
            }

            if (++operations % 256 == 0)
            {
                await heap.PublishEpochsAsync().ConfigureAwait(false);
            }
        }
    }

    private static byte[] Payload(long sequence, int size)
    {
        var bytes = new byte[size];
        BinaryPrimitives.WriteInt64LittleEndian(bytes, sequence);
        for (var i = 8; i < size; i++)
        {
            bytes[i] = (byte)(sequence * 31 + i);
        }

        return bytes;
    }

    private void LoadJournal()
    {
        if (!File.Exists(arguments.Journal))
        {
            return;
        }

        foreach (var line in File.ReadAllLines(arguments.Journal))
        {
            var fields = line.Split(' ');
            // A kill -9 can tear the last line; a torn line was never acknowledged.
            if (fields is ["A", var ptr, var seq, var size] && ulong.TryParse(ptr, out var packed) && long.TryParse(seq, out var sequence) && int.TryParse(size, out var bytes))
            {
                _live[packed] = (sequence, bytes);
                _sequence = Math.Max(_sequence, sequence);
            }
            else if (fields is ["F", var freed] && ulong.TryParse(freed, out var freedPacked))
            {
                _live.Remove(freedPacked);
            }
        }
    }
}
