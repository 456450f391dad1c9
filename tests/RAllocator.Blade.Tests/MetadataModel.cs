using FsCheck;
using FsCheck.Fluent;
using RAllocator.Protocol.Layout;

namespace RAllocator.Blade.Tests;

/// <summary>What the reference model expects one slab's persistent record to be.</summary>
internal readonly record struct ExpectedSlab(SlabState State, uint Node, ulong Generation, ulong FreedEpoch, uint Span = 1, uint HeadDistance = 0)
{
    public bool Matches(in SlabRecord record) =>
        record.State == State && record.Allocated == (State != SlabState.Free) && record.Node == Node
        && record.Generation == Generation && record.FreedEpoch == FreedEpoch
        && record.Span == (State == SlabState.Free ? 1 : Span) && record.SpanHeadDistance == (State == SlabState.Free ? 0 : HeadDistance);

    public override string ToString() => $"{State}(node {Node}, gen {Generation}, freed epoch {FreedEpoch}, span {Span}@{HeadDistance})";

    public static string Describe(in SlabRecord r) =>
        $"{r.State}(node {r.Node}, gen {r.Generation}, freed epoch {r.FreedEpoch}, span {r.Span}@{r.SpanHeadDistance}, bitmap {(r.Allocated ? "set" : "clear")})";
}

/// <summary>
/// One metadata update of <see cref="BladeImage"/> on a whole slab (2^SpanClass base slabs from its head), with the
/// reference model of what it does to each base slab of it.
/// </summary>
internal abstract record MetadataOp(ulong Slab, int SpanClass)
{
    public uint Span => 1u << SpanClass;

    /// <summary>Whether base slab <paramref name="slab"/> is part of the slab this update changes.</summary>
    public bool Covers(ulong slab) => slab >= Slab && slab < Slab + Span;

    public abstract void ApplyTo(BladeImage image);

    /// <summary>A covered base slab's record after this update, from its record before it.</summary>
    public abstract ExpectedSlab Next(ExpectedSlab current, uint headDistance);

    protected string SpanSuffix => SpanClass == 0 ? "" : $", span {Span}";

    public sealed record Ring(ulong Slab, ulong Ticket, int SpanClass = 0) : MetadataOp(Slab, SpanClass)
    {
        public override void ApplyTo(BladeImage image) => image.MarkRinged(Slab, Ticket, SpanClass);

        public override ExpectedSlab Next(ExpectedSlab current, uint headDistance) => new(SlabState.Ringed, 0, Ticket, 0, Span, headDistance);

        public override string ToString() => $"MarkRinged(slab {Slab}, ticket {Ticket}{SpanSuffix})";
    }

    public sealed record Own(ulong Slab, uint Node, ulong Ticket, int SpanClass = 0) : MetadataOp(Slab, SpanClass)
    {
        public override void ApplyTo(BladeImage image) => image.MarkOwned(Slab, Node, Ticket, SpanClass);

        public override ExpectedSlab Next(ExpectedSlab current, uint headDistance) => new(SlabState.Owned, Node, Ticket, 0, Span, headDistance);

        public override string ToString() => $"MarkOwned(slab {Slab}, node {Node}, ticket {Ticket}{SpanSuffix})";
    }

    public sealed record BeginFree(ulong Slab, uint Node, ulong Epoch, int SpanClass = 0) : MetadataOp(Slab, SpanClass)
    {
        public override void ApplyTo(BladeImage image) => image.MarkFreeing(Slab, Node, Epoch, SpanClass);

        public override ExpectedSlab Next(ExpectedSlab current, uint headDistance) => new(SlabState.Freeing, Node, current.Generation, Epoch, Span, headDistance);

        public override string ToString() => $"MarkFreeing(slab {Slab}, node {Node}, epoch {Epoch}{SpanSuffix})";
    }

    public sealed record Release(ulong Slab, int SpanClass = 0) : MetadataOp(Slab, SpanClass)
    {
        public override void ApplyTo(BladeImage image) => image.MarkFree(Slab, SpanClass);

        // A released slab keeps its last generation, so a stale ring entry or acknowledgement never matches it again.
        public override ExpectedSlab Next(ExpectedSlab current, uint headDistance) => new(SlabState.Free, 0, current.Generation, 0);

        public override string ToString() => $"MarkFree(slab {Slab}{SpanSuffix})";
    }
}

/// <summary>
/// A raw step: which slab, and a choice among its valid transitions. Any list of steps interprets as a valid
/// sequence of updates (the slab lifecycle of the blade agent), so FsCheck can shrink a list by dropping steps.
/// </summary>
internal readonly record struct MetadataStep(int Slab, int Choice, int Node);

/// <summary>A random sequence of metadata updates, driven by the slab lifecycle Free → Ringed → Owned → Freeing → Free
/// (and Ringed → Free, an unclaimed ring entry reclaimed at restart). On an image with span rings a free slab is
/// ringed as a span when its aligned run is free (coalescing), and every later update of any of its base slabs
/// updates the whole span.</summary>
internal sealed record MetadataScenario(MetadataStep[] Steps, int CrashSeed)
{
    public MetadataOp[] Interpret(ulong slabCount, uint maxNodes, int spanClassCount = 1)
    {
        var model = new ExpectedSlab[slabCount];
        var ops = new List<MetadataOp>();
        ulong nextTicket = 1;
        ulong epoch = 1;
        foreach (var step in Steps)
        {
            ulong slab = (ulong)step.Slab % slabCount;
            var current = model[slab];
            ulong head = slab - current.HeadDistance;
            int spanClass = System.Numerics.BitOperations.Log2(current.Span);
            MetadataOp op = current.State switch
            {
                SlabState.Free => RingFree(slab, step.Choice / 4 % spanClassCount),
                SlabState.Ringed when step.Choice % 4 == 0 => new MetadataOp.Release(head, spanClass),
                SlabState.Ringed => new MetadataOp.Own(head, (uint)step.Node % maxNodes, current.Generation, spanClass),
                SlabState.Owned => new MetadataOp.BeginFree(head, current.Node, epoch++, spanClass),
                _ => new MetadataOp.Release(head, spanClass),
            };
            for (uint distance = 0; distance < op.Span; distance++)
            {
                model[op.Slab + distance] = op.Next(model[op.Slab + distance], distance);
            }

            ops.Add(op);
        }

        return [.. ops];

        // Coalescing: the aligned run around the slab if every base slab of it is free, else the base slab alone.
        MetadataOp RingFree(ulong slab, int spanClass)
        {
            ulong span = 1UL << spanClass;
            ulong runHead = slab - (slab % span);
            bool runFree = runHead + span <= slabCount;
            for (ulong member = runHead; runFree && member < runHead + span; member++)
            {
                runFree = model[member].State == SlabState.Free;
            }

            return runFree ? new MetadataOp.Ring(runHead, nextTicket++, spanClass) : new MetadataOp.Ring(slab, nextTicket++);
        }
    }

    /// <summary>The model's record of every slab after each prefix of <paramref name="ops"/>: [i] is after i updates.</summary>
    public static ExpectedSlab[][] Prefixes(MetadataOp[] ops, ulong slabCount)
    {
        var states = new ExpectedSlab[ops.Length + 1][];
        states[0] = new ExpectedSlab[slabCount];
        for (int i = 0; i < ops.Length; i++)
        {
            states[i + 1] = (ExpectedSlab[])states[i].Clone();
            for (uint distance = 0; distance < ops[i].Span; distance++)
            {
                ulong slab = ops[i].Slab + distance;
                states[i + 1][slab] = ops[i].Next(states[i][slab], distance);
            }
        }

        return states;
    }

    public override string ToString() =>
        $"MetadataScenario {{ CrashSeed = {CrashSeed}, Steps = [{string.Join(", ", Steps.Select(s => $"({s.Slab},{s.Choice},{s.Node})"))}] }}";

    /// <summary>Up to <paramref name="maxSteps"/> steps on the first <paramref name="slabs"/> slabs, mostly the first four (so
    /// updates of one slab follow one another and share a bitmap word).</summary>
    public static Arbitrary<MetadataScenario> Arbitrary(int slabs, int maxSteps)
    {
        var slab = Gen.Frequency((3, Gen.Choose(0, Math.Min(3, slabs - 1))), (1, Gen.Choose(0, slabs - 1)));
        var step = from s in slab
                   from choice in Gen.Choose(0, 15)
                   from node in Gen.Choose(0, 15)
                   select new MetadataStep(s, choice, node);
        var scenario = from length in Gen.Sized(size => Gen.Choose(1, Math.Clamp(size, 1, maxSteps)))
                       from steps in step.ArrayOf(length)
                       from seed in Gen.Choose(int.MinValue, int.MaxValue)
                       select new MetadataScenario(steps, seed);
        return Arb.From(scenario, Shrink);
    }

    // Drop one step at a time (every sub-list is still a valid scenario), then try a smaller seed.
    private static IEnumerable<MetadataScenario> Shrink(MetadataScenario scenario)
    {
        for (int i = 0; i < scenario.Steps.Length; i++)
        {
            if (scenario.Steps.Length > 1)
            {
                yield return scenario with { Steps = [.. scenario.Steps[..i], .. scenario.Steps[(i + 1)..]] };
            }
        }

        if (scenario.CrashSeed != 0)
        {
            yield return scenario with { CrashSeed = 0 };
        }
    }
}
