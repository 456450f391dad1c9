using RAllocator.Protocol.Layout;

namespace RAllocator.Blade;

// Crash-consistent updates of the two structures that describe a slab: the allocation bitmap (the fast index
// recovery scans) and the ownership table (who owns it, under which generation). A crash between the two writes
// must never leave them disagreeing, so every change is a redo intent: persist the intent, apply both, persist,
// clear the intent. Recovery replays a pending intent; the redo is idempotent because it writes absolute values.
public sealed partial class BladeImage
{
    private ulong _intentSequence;

    /// <summary>Persist points per metadata update (intent argument, intent word, ownership, bitmap, clear).</summary>
    public const int PersistsPerMetadataUpdate = 5;

    /// <summary>Persist points of a ring update: the metadata update plus the wear counter.</summary>
    public const int PersistsPerRingUpdate = PersistsPerMetadataUpdate + 1;

    /// <summary>Places free slab <paramref name="slabIndex"/> in the ring under <paramref name="ticket"/>.</summary>
    public void MarkRinged(ulong slabIndex, ulong ticket) =>
        ApplyIntent(new BladeIntent(BladeIntentKind.Ring, 0, slabIndex), ticket);

    /// <summary>Records that <paramref name="node"/> durably owns <paramref name="slabIndex"/>, taken with <paramref name="ticket"/>.</summary>
    public void MarkOwned(ulong slabIndex, uint node, ulong ticket) =>
        ApplyIntent(new BladeIntent(BladeIntentKind.Own, node, slabIndex), ticket);

    /// <summary>Records that <paramref name="node"/> freed <paramref name="slabIndex"/>, drained in <paramref name="epoch"/>.</summary>
    public void MarkFreeing(ulong slabIndex, uint node, ulong epoch) =>
        ApplyIntent(new BladeIntent(BladeIntentKind.BeginFree, node, slabIndex), epoch);

    /// <summary>Makes <paramref name="slabIndex"/> free again.</summary>
    public void MarkFree(ulong slabIndex) =>
        ApplyIntent(new BladeIntent(BladeIntentKind.Release, 0, slabIndex), 0);

    /// <summary>Applies one metadata change crash-consistently (see the comment at the top of this file).</summary>
    internal void ApplyIntent(BladeIntent intent, ulong argument)
    {
        ThrowIfReadOnly();
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(intent.SlabIndex, Geometry.SlabCount);
        var block = Layout.Intent(Region);
        bool logged = !Faults.SkipIntentLog;
        if (logged)
        {
            // The argument must be durable before the word that makes the intent visible to recovery.
            block.IntentArgument = argument;
            block.IntentSequence = ++_intentSequence;
            Region.Persist(block.Offset + BladeIntentBlock.Offsets.IntentArgument, 16);
            block.StoreIntentWord(intent.Pack());
            block.PersistIntentWord();
        }

        Redo(intent, argument);

        if (logged)
        {
            block.StoreIntentWord(0);
            block.PersistIntentWord();
        }

        if (intent.Kind == BladeIntentKind.Ring)
        {
            // Wear is a placement hint, not state, so it stays outside the intent: a crash between the ring update
            // and this persist loses one increment, which only makes one slab look slightly fresher.
            var wear = Layout.Wear(Region, (long)intent.SlabIndex);
            wear.FetchAddHandOuts(1);
            wear.PersistHandOuts();
        }
    }

    /// <summary>Replays an intent left by a crash. Called by <see cref="Open"/> in read-write mode.</summary>
    private void ReplayIntent()
    {
        var block = Layout.Intent(Region);
        var pending = PendingIntentUnsynchronized();
        if (pending is null)
        {
            return;
        }

        Redo(pending.Value.Intent, pending.Value.Argument);
        _intentSequence = block.IntentSequence;
        block.StoreIntentWord(0);
        block.PersistIntentWord();
    }

    /// <summary>The intent a crash left pending, if any.</summary>
    /// <exception cref="BladeImageException">The intent names a slab outside the image.</exception>
    internal (BladeIntent Intent, ulong Argument)? PendingIntentUnsynchronized()
    {
        var block = Layout.Intent(Region);
        ulong word = block.LoadIntentWord();
        if (word == 0)
        {
            return null;
        }

        var intent = BladeIntent.Unpack(word);
        if (intent.Kind is BladeIntentKind.None or > BladeIntentKind.Release || intent.SlabIndex >= Geometry.SlabCount)
        {
            throw new BladeImageException(BladeImageError.InconsistentMetadata,
                $"the pending metadata intent 0x{word:x16} is invalid (kind {(byte)intent.Kind}, slab {intent.SlabIndex} of {Geometry.SlabCount}).");
        }

        return (intent, block.IntentArgument);
    }

    /// <summary>The ownership entry an intent produces from the entry it finds: absolute values, so redo is idempotent.</summary>
    internal static OwnershipEntry Target(BladeIntent intent, ulong argument, OwnershipEntry current) => intent.Kind switch
    {
        BladeIntentKind.Ring => new OwnershipEntry { State = (uint)SlabState.Ringed, Node = 0, Generation = argument, Span = 1 },
        BladeIntentKind.Own => new OwnershipEntry { State = (uint)SlabState.Owned, Node = intent.Node, Generation = argument, Span = 1 },
        BladeIntentKind.BeginFree => new OwnershipEntry
        {
            State = (uint)SlabState.Freeing, Node = intent.Node, Generation = current.Generation, FreedEpoch = argument, Span = 1,
        },
        BladeIntentKind.Release => new OwnershipEntry { State = (uint)SlabState.Free, Generation = current.Generation },
        _ => throw new ArgumentOutOfRangeException(nameof(intent), intent.Kind, "not a metadata intent"),
    };

    private void Redo(BladeIntent intent, ulong argument)
    {
        var ownership = Layout.Ownership(Region, (long)intent.SlabIndex);
        ownership.Store(Target(intent, argument, ownership.Load()));
        ownership.Persist();

        var bitmap = Layout.Bitmap(Region, (long)(intent.SlabIndex / 64));
        ulong bit = 1UL << (int)(intent.SlabIndex % 64);
        ulong bits = bitmap.LoadBits();
        bitmap.StoreBits(intent.Kind == BladeIntentKind.Release ? bits & ~bit : bits | bit);
        if (!Faults.SkipBitmapPersist)
        {
            bitmap.PersistBits();
        }
    }
}
