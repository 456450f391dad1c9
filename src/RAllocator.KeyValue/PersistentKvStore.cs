using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text;
using RAllocator.Fabric;
using RAllocator.Node;
using RAllocator.Protocol;

namespace RAllocator.KeyValue;

/// <summary>
/// A persistent, ordered key-value store whose index and values live in blade NVM, allocated with a
/// <see cref="WorkingNodeHeap"/>: a skip list whose nodes (key, value pointer, next pointers) and values are heap
/// objects, named by the node's root pointer (<see cref="WorkingNodeHeap.SetRootAsync"/>).
/// </summary>
/// <remarks>
/// <para><b>Crash consistency.</b> Every update is out of place and published by one persisted 8-byte pointer store:
/// a put writes and persists a new value object (and, for a new key, a new node whose next pointers are already
/// set), then swings one pointer — the node's value pointer, or the level-0 next pointer of the predecessor — and
/// persists it. A delete persists the level-0 unlink. So after a crash of the blade or of this node, every put or
/// delete whose task completed is present, an interrupted one is either fully there or not at all, and no value is
/// ever torn. Pointers above level 0 are search shortcuts: written without persisting, and rebuilt from level 0 on
/// every open.</para>
/// <para><b>Recovery.</b> <see cref="OpenAsync"/> walks the store from the root, checks every node (header,
/// key checksum, key order) and value (length, checksum), and reports the reachable objects to
/// <see cref="WorkingNodeHeap.CompleteRecoveryAsync"/>, so objects of interrupted puts and of frees that had not
/// happened are reclaimed. The store must therefore own its node's recovery: the heap's other objects, if any, are
/// freed.</para>
/// <para><b>Concurrency.</b> Any number of threads may call any method. Writes (put, delete) are serialized by
/// an internal lock: one writer at a time per store instance. Reads (get, scan) take no lock and run concurrently
/// with the writer; an object the writer unlinks is freed only when every read that could still see it has ended
/// (store-level epochs, <c>ReaderEpochs</c>). One store instance per working node; two nodes (or two instances)
/// must not write the same store.</para>
/// <para><b>Cost.</b> A get is one READ per skip-list node visited (about 3 log4 n) plus one or two for the value;
/// an update of an existing key 2 round trips with persists plus the search; an insert 3; a delete 1.</para>
/// </remarks>
public sealed class PersistentKvStore : IKeyValueStore
{
    private readonly WorkingNodeHeap _heap;
    private readonly int _rootBladeId;
    private readonly RemotePtr _superblock;
    private readonly RemotePtr _head;
    private readonly ulong[] _headNext;
    private readonly SemaphoreSlim _writeGate = new(1, 1);
    private readonly ReaderEpochs _epochs = new();
    private readonly List<(long Tag, RemotePtr Ptr)> _retired = [];
    private readonly Random _heights;
    private readonly KvSeededBug _bug;
    private long _count;

    private PersistentKvStore(WorkingNodeHeap heap, KvStoreOptions options, RemotePtr superblock, RemotePtr head, int maxHeight, int maxKeyBytes, int maxValueBytes)
    {
        _heap = heap;
        _rootBladeId = options.RootBladeId;
        _superblock = superblock;
        _head = head;
        MaxHeight = maxHeight;
        MaxKeyBytes = maxKeyBytes;
        MaxValueBytes = maxValueBytes;
        _headNext = new ulong[maxHeight];
        _heights = options.Seed is { } seed ? new Random(seed) : new Random();
        _bug = options.SeededBug;
    }

    /// <summary>The heap the store allocates from.</summary>
    public WorkingNodeHeap Heap => _heap;

    /// <summary>The store's superblock object (what the node's root pointer names).</summary>
    public RemotePtr Superblock => _superblock;

    /// <summary>Largest key in bytes, as recorded in the store.</summary>
    public int MaxKeyBytes { get; }

    /// <summary>Largest value in bytes, as recorded in the store.</summary>
    public int MaxValueBytes { get; }

    /// <summary>Largest skip-list height, as recorded in the store.</summary>
    public int MaxHeight { get; }

    /// <summary>Entries now (kept in memory: counted at open, then updated by every put and delete).</summary>
    public long Count => Interlocked.Read(ref _count);

    /// <summary>What <see cref="OpenAsync"/> found and did.</summary>
    public KvRecoveryReport Recovery { get; private set; } = new(false, 0, 0, 0, false);

    /// <summary>
    /// Opens the store named by the heap's root pointer on <see cref="KvStoreOptions.RootBladeId"/>, recovering it
    /// (see the type's remarks), or creates an empty one when the root is null and
    /// <see cref="KvStoreOptions.CreateIfMissing"/> is set.
    /// </summary>
    /// <exception cref="KvStoreCorruptException">The persistent structure is damaged; the message says where and how.</exception>
    /// <exception cref="InvalidOperationException">The root is null and <see cref="KvStoreOptions.CreateIfMissing"/> is false.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range (creation only).</exception>
    public static async Task<PersistentKvStore> OpenAsync(WorkingNodeHeap heap, KvStoreOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(heap);
        options ??= new KvStoreOptions();
        if ((uint)options.RootBladeId >= (uint)heap.Blades.Count)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.RootBladeId, $"RootBladeId {options.RootBladeId} is not one of the heap's {heap.Blades.Count} blades.");
        }

        var root = heap.GetRoot(options.RootBladeId);
        if (root.IsNull)
        {
            if (!options.CreateIfMissing)
            {
                throw new InvalidOperationException($"node {heap.Blades[options.RootBladeId].NodeId} has no root pointer on blade {options.RootBladeId}: there is no store to open (set CreateIfMissing to create one).");
            }

            return await CreateAsync(heap, options, cancellationToken).ConfigureAwait(false);
        }

        return await RecoverAsync(heap, options, root, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The value of <paramref name="key"/>, or null when it is absent.</summary>
    /// <exception cref="ArgumentException">The key is longer than <see cref="MaxKeyBytes"/>.</exception>
    /// <exception cref="KvStoreCorruptException">A node or value read is damaged.</exception>
    public async ValueTask<byte[]?> GetAsync(ReadOnlyMemory<byte> key, CancellationToken cancellationToken = default)
    {
        CheckKey(key.Length);
        long reader = _epochs.Enter();
        try
        {
            var (_, found) = await FindAsync(key, needPredecessors: false, cancellationToken).ConfigureAwait(false);
            return found is null ? null : await ReadValueAsync(found.ValuePtr, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _epochs.Exit(reader);
        }
    }

    /// <summary>
    /// Inserts or replaces the value of <paramref name="key"/>. When the task completes the put is durable: it
    /// survives a crash of the blade or of this node. A put interrupted by a crash is either fully present or absent.
    /// </summary>
    /// <exception cref="ArgumentException">The key or value is longer than <see cref="MaxKeyBytes"/> or <see cref="MaxValueBytes"/>, or the key is empty.</exception>
    public async ValueTask PutAsync(ReadOnlyMemory<byte> key, ReadOnlyMemory<byte> value, CancellationToken cancellationToken = default)
    {
        CheckKey(key.Length);
        if (value.Length > MaxValueBytes)
        {
            throw new ArgumentException($"the value is {value.Length} bytes; this store's MaxValueBytes is {MaxValueBytes}.", nameof(value));
        }

        await _writeGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var (preds, found) = await FindAsync(key, needPredecessors: true, cancellationToken).ConfigureAwait(false);
            var valueBytes = KvLayout.EncodeValue(value.Span);
            var valuePtr = await _heap.AllocateAsync(valueBytes.Length, cancellationToken).ConfigureAwait(false);
            if (found is not null)
            {
                var slot = RemotePtr.FromPacked(found.Ptr).Add(KvLayout.ValuePtrOffset);
                if (_bug == KvSeededBug.PublishBeforePersist)
                {
                    await SwingAsync(slot, valuePtr.Packed, cancellationToken).ConfigureAwait(false);
                    await _heap.WriteAndPersistAsync(valuePtr, valueBytes, cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    await _heap.WriteAndPersistAsync(valuePtr, valueBytes, cancellationToken).ConfigureAwait(false);
                    await SwingAsync(slot, valuePtr.Packed, cancellationToken).ConfigureAwait(false);
                }

                Retire(found.ValuePtr);
            }
            else
            {
                int height = RandomHeight();
                var next = new ulong[height];
                for (int i = 0; i < height; i++)
                {
                    next[i] = NextOf(preds![i], i);
                }

                var nodeBytes = KvLayout.EncodeNode(KvLayout.NodeTag, height, key.Span, valuePtr.Packed, next);
                var nodePtr = await _heap.AllocateAsync(nodeBytes.Length, cancellationToken).ConfigureAwait(false);
                if (_bug != KvSeededBug.PublishBeforePersist)
                {
                    await _heap.WriteAndPersistAsync(valuePtr, valueBytes, cancellationToken).ConfigureAwait(false);
                }

                await _heap.WriteAndPersistAsync(nodePtr, nodeBytes, cancellationToken).ConfigureAwait(false);

                // The commit point: the persisted level-0 link. Higher levels are shortcuts, rebuilt on open.
                await SetNextAsync(preds![0], 0, nodePtr.Packed, persist: true, cancellationToken).ConfigureAwait(false);
                if (_bug == KvSeededBug.PublishBeforePersist)
                {
                    await _heap.WriteAndPersistAsync(valuePtr, valueBytes, cancellationToken).ConfigureAwait(false);
                }

                for (int i = 1; i < height; i++)
                {
                    await SetNextAsync(preds[i], i, nodePtr.Packed, persist: false, cancellationToken).ConfigureAwait(false);
                }

                Interlocked.Increment(ref _count);
            }

            await FreeRetiredAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _writeGate.Release();
        }
    }

    /// <summary>Removes <paramref name="key"/>; returns whether it was present. Durable when the task completes.</summary>
    /// <exception cref="ArgumentException">The key is longer than <see cref="MaxKeyBytes"/> or empty.</exception>
    public async ValueTask<bool> DeleteAsync(ReadOnlyMemory<byte> key, CancellationToken cancellationToken = default)
    {
        CheckKey(key.Length);
        await _writeGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var (preds, found) = await FindAsync(key, needPredecessors: true, cancellationToken).ConfigureAwait(false);
            if (found is null)
            {
                return false;
            }

            // Top down, so a reader never reaches the node at a level after its level-0 unlink; the level-0 unlink
            // is the persisted commit point.
            for (int i = found.Height - 1; i >= 1; i--)
            {
                if (NextOf(preds![i], i) == found.Ptr)
                {
                    await SetNextAsync(preds[i], i, found.Next[i], persist: false, cancellationToken).ConfigureAwait(false);
                }
            }

            await SetNextAsync(preds![0], 0, found.Next[0], persist: true, cancellationToken).ConfigureAwait(false);
            Interlocked.Decrement(ref _count);
            Retire(found.ValuePtr);
            Retire(found.Ptr);
            await FreeRetiredAsync(cancellationToken).ConfigureAwait(false);
            return true;
        }
        finally
        {
            _writeGate.Release();
        }
    }

    /// <summary>
    /// The entries with <paramref name="from"/> &lt;= key &lt; <paramref name="to"/> in ascending key order (null
    /// bounds are open), at most <paramref name="limit"/> of them. Concurrent writes may or may not be seen.
    /// </summary>
    public async ValueTask<IReadOnlyList<KeyValuePair<byte[], byte[]>>> ScanAsync(byte[]? from, byte[]? to, int limit = int.MaxValue, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(limit);
        var result = new List<KeyValuePair<byte[], byte[]>>();
        long reader = _epochs.Enter();
        try
        {
            ulong current;
            if (from is null)
            {
                current = Volatile.Read(ref _headNext[0]);
            }
            else
            {
                var (preds, _) = await FindAsync(from, needPredecessors: true, cancellationToken).ConfigureAwait(false);
                current = NextOf(preds![0], 0);
            }

            while (current != 0 && result.Count < limit)
            {
                var node = await ReadNodeAsync(current, cancellationToken).ConfigureAwait(false);
                if (to is not null && KvLayout.Compare(node.Key, to) >= 0)
                {
                    break;
                }

                var value = await ReadValueAsync(node.ValuePtr, cancellationToken).ConfigureAwait(false);
                result.Add(new KeyValuePair<byte[], byte[]>(node.Key, value));
                current = node.Next[0];
            }

            return result;
        }
        finally
        {
            _epochs.Exit(reader);
        }
    }

    private static async Task<PersistentKvStore> CreateAsync(WorkingNodeHeap heap, KvStoreOptions options, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxHeight, 1, nameof(options.MaxHeight));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.MaxHeight, KvStoreOptions.MaxSupportedHeight, nameof(options.MaxHeight));
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxKeyBytes, 1, nameof(options.MaxKeyBytes));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.MaxKeyBytes, 32 * 1024, nameof(options.MaxKeyBytes));
        ArgumentOutOfRangeException.ThrowIfNegative(options.MaxValueBytes, nameof(options.MaxValueBytes));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.MaxValueBytes, SizeClasses.MaxSizeBytes - KvLayout.ValueHeaderBytes, nameof(options.MaxValueBytes));

        // A node that reached the root crash-atomically: objects allocated here but never made reachable by the
        // persisted root store are reclaimed by the next recovery.
        if (heap.RecoveryPending)
        {
            await heap.CompleteRecoveryAsync([], cancellationToken).ConfigureAwait(false);
        }

        int height = options.MaxHeight;
        var headBytes = KvLayout.EncodeNode(KvLayout.HeadTag, height, [], 0, new ulong[height]);
        var head = await heap.AllocateAsync(headBytes.Length, cancellationToken).ConfigureAwait(false);
        await heap.WriteAndPersistAsync(head, headBytes, cancellationToken).ConfigureAwait(false);
        var superBytes = KvLayout.EncodeSuperblock(height, options.MaxKeyBytes, options.MaxValueBytes, head.Packed);
        var superblock = await heap.AllocateAsync(superBytes.Length, cancellationToken).ConfigureAwait(false);
        await heap.WriteAndPersistAsync(superblock, superBytes, cancellationToken).ConfigureAwait(false);
        await heap.SetRootAsync(superblock, options.RootBladeId, cancellationToken).ConfigureAwait(false);
        return new PersistentKvStore(heap, options, superblock, head, height, options.MaxKeyBytes, options.MaxValueBytes)
        {
            Recovery = new KvRecoveryReport(true, 0, 2, 0, false),
        };
    }

    private static async Task<PersistentKvStore> RecoverAsync(WorkingNodeHeap heap, KvStoreOptions options, RemotePtr root, CancellationToken cancellationToken)
    {
        var superBytes = new byte[KvLayout.SuperblockBytes];
        await ReadCheckedAsync(heap, root, superBytes, "superblock", cancellationToken).ConfigureAwait(false);
        if (BinaryPrimitives.ReadUInt64LittleEndian(superBytes) != KvLayout.SuperblockMagic)
        {
            throw new KvStoreCorruptException(root, "the root pointer does not name a key-value store superblock (bad magic).");
        }

        if (BinaryPrimitives.ReadUInt32LittleEndian(superBytes.AsSpan(32)) != XxHash32.HashToUInt32(superBytes.AsSpan(0, 32)))
        {
            throw new KvStoreCorruptException(root, "the superblock checksum does not match.");
        }

        uint version = BinaryPrimitives.ReadUInt32LittleEndian(superBytes.AsSpan(8));
        if (version != KvLayout.FormatVersion)
        {
            throw new KvStoreCorruptException(root, $"format version {version}; this library reads version {KvLayout.FormatVersion}.");
        }

        int maxHeight = (int)BinaryPrimitives.ReadUInt32LittleEndian(superBytes.AsSpan(12));
        int maxKey = (int)BinaryPrimitives.ReadUInt32LittleEndian(superBytes.AsSpan(16));
        int maxValue = (int)BinaryPrimitives.ReadUInt32LittleEndian(superBytes.AsSpan(20));
        if (maxHeight is < 1 or > KvStoreOptions.MaxSupportedHeight || maxKey < 1 || maxValue < 0)
        {
            throw new KvStoreCorruptException(root, $"superblock limits out of range (max height {maxHeight}, max key {maxKey}, max value {maxValue}).");
        }

        var head = RemotePtr.FromPacked(BinaryPrimitives.ReadUInt64LittleEndian(superBytes.AsSpan(24)));
        var store = new PersistentKvStore(heap, options, root, head, maxHeight, maxKey, maxValue);
        var live = new List<RemotePtr> { root, head };
        var headView = await store.ReadNodeAsync(head.Packed, cancellationToken, expectHead: true).ConfigureAwait(false);

        // Walk level 0, checking every node and value; rebuild the shortcut levels on the way.
        var lastAtLevel = Enumerable.Repeat(headView, maxHeight).ToArray();
        var visited = new HashSet<ulong>();
        byte[]? previousKey = null;
        long entries = 0, repaired = 0;
        for (ulong current = headView.Next[0]; current != 0;)
        {
            if (!visited.Add(current))
            {
                throw new KvStoreCorruptException(RemotePtr.FromPacked(current), "level 0 of the skip list has a cycle.");
            }

            var node = await store.ReadNodeAsync(current, cancellationToken).ConfigureAwait(false);
            if (previousKey is not null && KvLayout.Compare(previousKey, node.Key) >= 0)
            {
                throw new KvStoreCorruptException(RemotePtr.FromPacked(current), $"keys out of order: key {Describe(node.Key)} follows {Describe(previousKey)}.");
            }

            if (options.VerifyValuesOnOpen)
            {
                await store.ReadValueAsync(node.ValuePtr, cancellationToken, owner: node).ConfigureAwait(false);
            }
            else
            {
                await store.ReadValueHeaderAsync(node, cancellationToken).ConfigureAwait(false);
            }

            live.Add(RemotePtr.FromPacked(current));
            live.Add(RemotePtr.FromPacked(node.ValuePtr));
            for (int level = 1; level < node.Height; level++)
            {
                repaired += await store.RepairLinkAsync(lastAtLevel[level], level, current, cancellationToken).ConfigureAwait(false);
                lastAtLevel[level] = node;
            }

            previousKey = node.Key;
            entries++;
            current = node.Next[0];
        }

        for (int level = 1; level < maxHeight; level++)
        {
            repaired += await store.RepairLinkAsync(lastAtLevel[level], level, 0, cancellationToken).ConfigureAwait(false);
        }

        for (int level = 0; level < maxHeight; level++)
        {
            store._headNext[level] = headView.Next[level];
        }

        bool completed = heap.RecoveryPending;
        if (completed)
        {
            try
            {
                await heap.CompleteRecoveryAsync(live, cancellationToken).ConfigureAwait(false);
            }
            catch (InvalidOperationException ex)
            {
                throw new KvStoreCorruptException($"key-value store corrupt: a reachable object is not in a slab this node owns: {ex.Message}", ex);
            }
        }

        foreach (var ptr in live)
        {
            if (!heap.IsAllocated(ptr))
            {
                throw new KvStoreCorruptException(ptr, "a reachable object is not an allocated object of this node's heap.");
            }
        }

        store._count = entries;
        store.Recovery = new KvRecoveryReport(false, entries, live.Count, repaired, completed);
        return store;
    }

    private static async ValueTask ReadCheckedAsync(WorkingNodeHeap heap, RemotePtr ptr, Memory<byte> destination, string what, CancellationToken cancellationToken)
    {
        if (ptr.IsNull || ptr.BladeId >= heap.Blades.Count)
        {
            throw new KvStoreCorruptException(ptr, $"the pointer to a {what} is {(ptr.IsNull ? "null" : "on a blade this heap does not have")}.");
        }

        try
        {
            await heap.ReadBytesAsync(ptr, destination, cancellationToken).ConfigureAwait(false);
        }
        catch (FabricException ex) when (ex.Status is FabricStatus.RemoteAccessError or FabricStatus.RemoteAlignmentError)
        {
            throw new KvStoreCorruptException(ptr, $"the {what} cannot be read: {ex.Message}", ex);
        }
    }

    private static string Describe(byte[] key) =>
        key.Length <= 32 && key.All(b => b is >= 0x20 and < 0x7f) ? $"\"{Encoding.ASCII.GetString(key)}\"" : $"0x{Convert.ToHexString(key.AsSpan(0, Math.Min(key.Length, 16)))}{(key.Length > 16 ? "…" : "")}";

    private void CheckKey(int length)
    {
        if (length == 0)
        {
            throw new ArgumentException("keys must not be empty.", "key");
        }

        if (length > MaxKeyBytes)
        {
            throw new ArgumentException($"the key is {length} bytes; this store's MaxKeyBytes is {MaxKeyBytes}.", "key");
        }
    }

    private int RandomHeight()
    {
        int height = 1;
        while (height < MaxHeight && _heights.Next(4) == 0)
        {
            height++;
        }

        return height;
    }

    private ulong NextOf(NodeView? node, int level) => node is null ? Volatile.Read(ref _headNext[level]) : node.Next[level];

    /// <summary>
    /// Searches for <paramref name="key"/>: the node with that key (or null) and, when asked, the last node below
    /// the key at each level (null standing for the head).
    /// </summary>
    private async ValueTask<(NodeView?[]? Predecessors, NodeView? Found)> FindAsync(ReadOnlyMemory<byte> key, bool needPredecessors, CancellationToken cancellationToken)
    {
        var preds = needPredecessors ? new NodeView?[MaxHeight] : null;
        NodeView? x = null;
        NodeView? lastRead = null;
        NodeView? found = null;
        for (int level = MaxHeight - 1; level >= 0; level--)
        {
            while (true)
            {
                ulong next = NextOf(x, level);
                if (next == 0)
                {
                    break;
                }

                var n = lastRead is not null && lastRead.Ptr == next ? lastRead : await ReadNodeAsync(next, cancellationToken).ConfigureAwait(false);
                lastRead = n;
                int c = KvLayout.Compare(n.Key, key.Span);
                if (c < 0)
                {
                    x = n;
                    continue;
                }

                if (c == 0)
                {
                    found = n;
                    if (!needPredecessors)
                    {
                        return (null, found);
                    }
                }

                break;
            }

            if (preds is not null)
            {
                preds[level] = x;
            }
        }

        return (preds, found);
    }

    /// <summary>Stores a next pointer of <paramref name="node"/> (null: the head), persisted or as a shortcut only.</summary>
    private async ValueTask SetNextAsync(NodeView? node, int level, ulong value, bool persist, CancellationToken cancellationToken)
    {
        var slot = (node is null ? _head : RemotePtr.FromPacked(node.Ptr)).Add(KvLayout.NextOffset(level));
        if (persist)
        {
            await SwingAsync(slot, value, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            await _heap.WriteAsync(slot, value, cancellationToken).ConfigureAwait(false);
        }

        if (node is null)
        {
            Volatile.Write(ref _headNext[level], value);
        }
        else
        {
            node.Next[level] = value;
        }
    }

    /// <summary>The publication: one aligned 8-byte store, persisted (one round trip).</summary>
    private ValueTask SwingAsync(RemotePtr slot, ulong value, CancellationToken cancellationToken)
    {
        var bytes = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, value);
        return _heap.WriteAndPersistAsync(slot, bytes, cancellationToken);
    }

    private async ValueTask<long> RepairLinkAsync(NodeView node, int level, ulong expected, CancellationToken cancellationToken)
    {
        if (node.Next[level] == expected)
        {
            return 0;
        }

        await _heap.WriteAsync(RemotePtr.FromPacked(node.Ptr).Add(KvLayout.NextOffset(level)), expected, cancellationToken).ConfigureAwait(false);
        node.Next[level] = expected;
        return 1;
    }

    private void Retire(ulong packed) => _retired.Add((_epochs.Retire(), RemotePtr.FromPacked(packed)));

    private async ValueTask FreeRetiredAsync(CancellationToken cancellationToken)
    {
        if (_retired.Count == 0)
        {
            return;
        }

        long oldest = _epochs.OldestOpen();
        int kept = 0;
        for (int i = 0; i < _retired.Count; i++)
        {
            var (tag, ptr) = _retired[i];
            if (oldest >= tag)
            {
                await _heap.FreeAsync(ptr, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                _retired[kept++] = _retired[i];
            }
        }

        _retired.RemoveRange(kept, _retired.Count - kept);
    }

    private async ValueTask<NodeView> ReadNodeAsync(ulong packed, CancellationToken cancellationToken, bool expectHead = false)
    {
        var ptr = RemotePtr.FromPacked(packed);
        var first = new byte[KvLayout.MinObjectBytes];
        await ReadCheckedAsync(_heap, ptr, first, "skip-list node", cancellationToken).ConfigureAwait(false);
        ulong header = BinaryPrimitives.ReadUInt64LittleEndian(first);
        int keyLength = (int)(header & 0xffff);
        int height = (int)((header >> 16) & 0xff);
        byte tag = (byte)(header >> 24);
        uint keyHash = (uint)(header >> 32);
        byte expectedTag = expectHead ? KvLayout.HeadTag : KvLayout.NodeTag;
        if (tag != expectedTag)
        {
            throw new KvStoreCorruptException(ptr, $"expected a {(expectHead ? "head" : "skip-list")} node, found tag 0x{tag:x2} (header 0x{header:x16}).");
        }

        if (height < 1 || height > MaxHeight || (expectHead && (height != MaxHeight || keyLength != 0)) || (!expectHead && (keyLength == 0 || keyLength > MaxKeyBytes)))
        {
            throw new KvStoreCorruptException(ptr, $"node header out of range: height {height} (max {MaxHeight}), key length {keyLength} (max {MaxKeyBytes}).");
        }

        int total = KvLayout.NodeBytes(height, keyLength);
        var bytes = first;
        if (total > first.Length)
        {
            bytes = new byte[total];
            first.CopyTo(bytes, 0);
            await ReadCheckedAsync(_heap, ptr.Add(first.Length), bytes.AsMemory(first.Length), "skip-list node", cancellationToken).ConfigureAwait(false);
        }

        var key = bytes.AsSpan(KvLayout.NodeBytes(height, 0), keyLength).ToArray();
        if (KvLayout.KeyHash(key, height) != keyHash)
        {
            throw new KvStoreCorruptException(ptr, $"the key checksum does not match (key length {keyLength}, height {height}): a torn or overwritten node.");
        }

        var next = new ulong[height];
        for (int i = 0; i < height; i++)
        {
            next[i] = BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(KvLayout.NextOffset(i)));
        }

        ulong valuePtr = BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(KvLayout.ValuePtrOffset));
        if (!expectHead && valuePtr == 0)
        {
            throw new KvStoreCorruptException(ptr, $"the node of key {Describe(key)} has a null value pointer.");
        }

        return new NodeView(packed, tag, height, key, valuePtr, next);
    }

    private async ValueTask<byte[]> ReadValueAsync(ulong packed, CancellationToken cancellationToken, NodeView? owner = null)
    {
        var ptr = RemotePtr.FromPacked(packed);
        var first = new byte[KvLayout.MinObjectBytes];
        await ReadCheckedAsync(_heap, ptr, first, "value", cancellationToken).ConfigureAwait(false);
        int length = CheckValueLength(ptr, first, owner);
        var value = new byte[length];
        int inFirst = Math.Min(length, first.Length - KvLayout.ValueHeaderBytes);
        first.AsSpan(KvLayout.ValueHeaderBytes, inFirst).CopyTo(value);
        if (inFirst < length)
        {
            await ReadCheckedAsync(_heap, ptr.Add(first.Length), value.AsMemory(inFirst), "value", cancellationToken).ConfigureAwait(false);
        }

        uint expected = BinaryPrimitives.ReadUInt32LittleEndian(first.AsSpan(4));
        if (KvLayout.ValueHash(value) != expected)
        {
            throw new KvStoreCorruptException(ptr, $"the value{(owner is null ? "" : $" of key {Describe(owner.Key)}")} ({length} bytes) does not match its checksum: a torn or overwritten value.");
        }

        return value;
    }

    private async ValueTask ReadValueHeaderAsync(NodeView owner, CancellationToken cancellationToken)
    {
        var ptr = RemotePtr.FromPacked(owner.ValuePtr);
        var header = new byte[KvLayout.ValueHeaderBytes];
        await ReadCheckedAsync(_heap, ptr, header, "value", cancellationToken).ConfigureAwait(false);
        CheckValueLength(ptr, header, owner);
    }

    private int CheckValueLength(RemotePtr ptr, ReadOnlySpan<byte> header, NodeView? owner)
    {
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(header);
        if (length > (uint)MaxValueBytes)
        {
            throw new KvStoreCorruptException(ptr, $"the value{(owner is null ? "" : $" of key {Describe(owner.Key)}")} claims {length} bytes; this store's MaxValueBytes is {MaxValueBytes}.");
        }

        return (int)length;
    }
}

/// <summary>What opening a <see cref="PersistentKvStore"/> found.</summary>
/// <param name="Created">An empty store was created (the root was null).</param>
/// <param name="Entries">Entries found by the level-0 walk.</param>
/// <param name="LiveObjects">Objects reported live (superblock, head, every node and value).</param>
/// <param name="ShortcutsRepaired">Next pointers above level 0 rewritten to match level 0 (lost or stale shortcuts).</param>
/// <param name="CompletedHeapRecovery">The heap had recovered slabs, and this open completed its recovery by reachability.</param>
public sealed record KvRecoveryReport(bool Created, long Entries, long LiveObjects, long ShortcutsRepaired, bool CompletedHeapRecovery);
