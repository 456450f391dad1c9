using System.Buffers.Binary;

namespace RAllocator.Protocol.Tests.Compaction;

/// <summary>
/// The application the compaction tests run: a durable table of pointers, the node's root on blade 0. Slot
/// <c>i</c> holds the pointer to object <c>i</c> (or 0 when it has none), and object <c>i</c> holds
/// <see cref="Content"/>(i, its size), so after any crash the application's data can be checked exactly: what the
/// table reaches, and what each reached object holds. The relocation callback redirects one slot (or, when the table
/// itself moves, the root) with one persisted 8-byte write: that write is the commit point.
/// </summary>
internal sealed class PointerTableApp
{
    public const int Slots = 128;
    public const int TableBytes = Slots * 8;

    private readonly Dictionary<RemotePtr, int> _slotOf = [];

    private PointerTableApp(WorkingNodeHeap heap, RemotePtr table)
    {
        Heap = heap;
        Table = table;
    }

    public WorkingNodeHeap Heap { get; }

    /// <summary>Where the table is now (the application's in-memory copy of its root).</summary>
    public RemotePtr Table { get; private set; }

    /// <summary>The application's in-memory mirror of the table.</summary>
    public RemotePtr[] Objects { get; } = new RemotePtr[Slots];

    /// <summary>Requested size of each object (0: none).</summary>
    public int[] Sizes { get; } = new int[Slots];

    /// <summary>Moves the callback committed.</summary>
    public int Relocations { get; private set; }

    /// <summary>Runs before each commit write, after the copy is durable (tests observe or fail the callback here).</summary>
    public Func<RemotePtr, RemotePtr, ValueTask>? BeforeCommit { get; set; }

    public static async Task<PointerTableApp> CreateAsync(WorkingNodeHeap heap)
    {
        var table = await heap.AllocateAsync(TableBytes);
        await heap.WriteAndPersistAsync(table, new byte[TableBytes]);
        await heap.SetRootAsync(table);
        return new PointerTableApp(heap, table);
    }

    public static int ObjectSize(int requested) => SizeClasses.Sizes[SizeClasses.ClassOf(requested)];

    /// <summary>Allocates object <paramref name="slot"/>, persists its content, then links it (the usual order: durable before reachable).</summary>
    public async Task AddAsync(int slot, int sizeBytes)
    {
        var ptr = await Heap.AllocateAsync(sizeBytes);
        await Heap.WriteAndPersistAsync(ptr, Content(slot, ObjectSize(sizeBytes)));
        await WriteSlotAsync(slot, ptr);
        Objects[slot] = ptr;
        Sizes[slot] = sizeBytes;
        _slotOf[ptr] = slot;
    }

    /// <summary>Unlinks object <paramref name="slot"/>, durably, then frees it.</summary>
    public async Task RemoveAsync(int slot)
    {
        var ptr = Objects[slot];
        await WriteSlotAsync(slot, RemotePtr.Null);
        Objects[slot] = RemotePtr.Null;
        Sizes[slot] = 0;
        _slotOf.Remove(ptr);
        await Heap.FreeAsync(ptr);
    }

    /// <summary>The relocation callback: one persisted pointer write redirects the only reference to the object.</summary>
    public async ValueTask RelocateAsync(RemotePtr from, RemotePtr to, CancellationToken cancellationToken)
    {
        if (BeforeCommit is { } hook)
        {
            await hook(from, to);
        }

        if (from == Table)
        {
            await Heap.SetRootAsync(to, 0, cancellationToken);
            Table = to;
        }
        else
        {
            int slot = _slotOf[from];
            await WriteSlotAsync(slot, to, cancellationToken);
            Objects[slot] = to;
            _slotOf.Remove(from);
            _slotOf[to] = slot;
        }

        Relocations++;
    }

    public IEnumerable<RemotePtr> Reachable() => Objects.Where(p => !p.IsNull).Prepend(Table);

    /// <summary>Object <paramref name="slot"/>'s bytes: its slot number, a pattern, and a checksum of both in the last word.</summary>
    public static byte[] Content(int slot, int length)
    {
        var bytes = new byte[length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, 0x4F424A0000000000UL | (uint)slot);
        ulong state = 0x9E3779B97F4A7C15UL * (ulong)(slot + 1);
        for (int w = 8; w < length - 8; w += 8)
        {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(w), state);
        }

        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(length - 8), Checksum(bytes.AsSpan(0, length - 8)));
        return bytes;
    }

    public static ulong Checksum(ReadOnlySpan<byte> bytes)
    {
        ulong hash = 14695981039346656037UL;
        foreach (byte b in bytes)
        {
            hash = (hash ^ b) * 1099511628211UL;
        }

        return hash;
    }

    /// <summary>Reads the durable table of <paramref name="table"/>.</summary>
    public static async Task<RemotePtr[]> ReadTableAsync(WorkingNodeHeap heap, RemotePtr table)
    {
        var bytes = new byte[TableBytes];
        await heap.ReadBytesAsync(table, bytes);
        return Enumerable.Range(0, Slots).Select(i => RemotePtr.FromPacked(BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(i * 8)))).ToArray();
    }

    private async Task WriteSlotAsync(int slot, RemotePtr value, CancellationToken cancellationToken = default)
    {
        var bytes = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, value.Packed);
        await Heap.WriteAndPersistAsync(Table.Add(slot * 8), bytes, cancellationToken);
    }
}
