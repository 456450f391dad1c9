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

    // Every update below covers a whole slab: 2^spanClass base slabs from slabIndex (its head), aligned to their
    // count, so their bitmap bits share one word and the update stays one intent.

    /// <summary>Places the free slab at <paramref name="slabIndex"/> (of span class <paramref name="spanClass"/>) in its ring under <paramref name="ticket"/>.</summary>
    public void MarkRinged(ulong slabIndex, ulong ticket, int spanClass = 0) =>
        ApplyIntent(new BladeIntent(BladeIntentKind.Ring, 0, slabIndex, spanClass), ticket);

    /// <summary>Records that <paramref name="node"/> durably owns the slab at <paramref name="slabIndex"/>, taken with <paramref name="ticket"/>.</summary>
    public void MarkOwned(ulong slabIndex, uint node, ulong ticket, int spanClass = 0) =>
        ApplyIntent(new BladeIntent(BladeIntentKind.Own, node, slabIndex, spanClass), ticket);

    /// <summary>Records that <paramref name="node"/> freed the slab at <paramref name="slabIndex"/>, drained in <paramref name="epoch"/>.</summary>
    public void MarkFreeing(ulong slabIndex, uint node, ulong epoch, int spanClass = 0) =>
        ApplyIntent(new BladeIntent(BladeIntentKind.BeginFree, node, slabIndex, spanClass), epoch);

    /// <summary>Makes the slab at <paramref name="slabIndex"/> free again (all its base slabs).</summary>
    public void MarkFree(ulong slabIndex, int spanClass = 0) =>
        ApplyIntent(new BladeIntent(BladeIntentKind.Release, 0, slabIndex, spanClass), 0);

    /// <summary>Applies one metadata change crash-consistently (see the comment at the top of this file).</summary>
    internal void ApplyIntent(BladeIntent intent, ulong argument)
    {
        ThrowIfReadOnly();
        if (InvalidSpan(intent) is { } invalid)
        {
            throw new ArgumentOutOfRangeException(nameof(intent), intent, invalid);
        }

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
            for (long slab = (long)intent.SlabIndex; slab < (long)intent.SlabIndex + intent.Span; slab++)
            {
                var wear = Layout.Wear(Region, slab);
                wear.FetchAddHandOuts(1);
                wear.PersistHandOuts();
            }
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
        if (intent.Kind is BladeIntentKind.None or > BladeIntentKind.Release || InvalidSpan(intent) is not null)
        {
            throw new BladeImageException(BladeImageError.InconsistentMetadata,
                $"the pending metadata intent 0x{word:x16} is invalid (kind {(byte)intent.Kind}, slab {intent.SlabIndex} of {Geometry.SlabCount}, span class {intent.SpanClass} of {Geometry.SpanClassCount}).");
        }

        return (intent, block.IntentArgument);
    }

    /// <summary>Why an intent's slab is not a valid slab of this image, or null.</summary>
    private string? InvalidSpan(BladeIntent intent)
    {
        if (intent.SpanClass < 0 || intent.SpanClass >= Geometry.SpanClassCount)
        {
            return $"span class {intent.SpanClass} is not below the image's {Geometry.SpanClassCount}";
        }

        if (intent.SlabIndex % intent.Span != 0 || intent.SlabIndex + intent.Span > Geometry.SlabCount)
        {
            return $"a slab of {intent.Span} base slabs at {intent.SlabIndex} is unaligned or beyond the {Geometry.SlabCount} slabs";
        }

        return null;
    }

    /// <summary>
    /// The ownership entry an intent produces for the base slab <paramref name="headDistance"/> slabs into it, from the
    /// entry it finds: absolute values, so redo is idempotent.
    /// </summary>
    internal static OwnershipEntry Target(BladeIntent intent, ulong argument, OwnershipEntry current, uint headDistance = 0) => intent.Kind switch
    {
        BladeIntentKind.Ring => new OwnershipEntry { State = (uint)SlabState.Ringed, Node = 0, Generation = argument, Span = intent.Span, SpanHeadDistance = headDistance },
        BladeIntentKind.Own => new OwnershipEntry { State = (uint)SlabState.Owned, Node = intent.Node, Generation = argument, Span = intent.Span, SpanHeadDistance = headDistance },
        BladeIntentKind.BeginFree => new OwnershipEntry
        {
            State = (uint)SlabState.Freeing, Node = intent.Node, Generation = current.Generation, FreedEpoch = argument, Span = intent.Span,
            SpanHeadDistance = headDistance,
        },
        BladeIntentKind.Release => new OwnershipEntry { State = (uint)SlabState.Free, Generation = current.Generation },
        _ => throw new ArgumentOutOfRangeException(nameof(intent), intent.Kind, "not a metadata intent"),
    };

    /// <summary>The bitmap word after <paramref name="intent"/>: its slab's bits set, or cleared for a release.</summary>
    internal static ulong TargetBits(BladeIntent intent, ulong bits)
    {
        ulong mask = (intent.Span == 64 ? ulong.MaxValue : (1UL << (int)intent.Span) - 1) << (int)(intent.SlabIndex % 64);
        return intent.Kind == BladeIntentKind.Release ? bits & ~mask : bits | mask;
    }

    private void Redo(BladeIntent intent, ulong argument)
    {
        for (uint distance = 0; distance < intent.Span; distance++)
        {
            var ownership = Layout.Ownership(Region, (long)intent.SlabIndex + distance);
            ownership.Store(Target(intent, argument, ownership.Load(), distance));
        }

        Region.Persist(Layout.OwnershipElementOffset((long)intent.SlabIndex), (Faults.PersistOnlySpanHead ? 1 : intent.Span) * OwnershipEntry.SizeBytes);

        var bitmap = Layout.Bitmap(Region, (long)(intent.SlabIndex / 64));
        bitmap.StoreBits(TargetBits(intent, bitmap.LoadBits()));
        if (!Faults.SkipBitmapPersist)
        {
            bitmap.PersistBits();
        }
    }
}
