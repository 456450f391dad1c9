using FsCheck;
using FsCheck.Fluent;
using RAllocator.Protocol.Layout;

namespace RAllocator.Blade.Tests;

/// <summary>What the reference model expects one slab's persistent record to be.</summary>
internal readonly record struct ExpectedSlab(SlabState State, uint Node, ulong Generation, ulong FreedEpoch)
{
    public bool Matches(in SlabRecord record) =>
        record.State == State && record.Allocated == (State != SlabState.Free) && record.Node == Node
        && record.Generation == Generation && record.FreedEpoch == FreedEpoch;

    public override string ToString() => $"{State}(node {Node}, gen {Generation}, freed epoch {FreedEpoch})";

    public static string Describe(in SlabRecord r) =>
        $"{r.State}(node {r.Node}, gen {r.Generation}, freed epoch {r.FreedEpoch}, bitmap {(r.Allocated ? "set" : "clear")})";
}

/// <summary>One metadata update of <see cref="BladeImage"/>, with the reference model of what it does to its slab.</summary>
internal abstract record MetadataOp(ulong Slab)
{
    public abstract void ApplyTo(BladeImage image);

    /// <summary>The slab's record after this update, from the record before it.</summary>
    public abstract ExpectedSlab Next(ExpectedSlab current);

    public sealed record Ring(ulong Slab, ulong Ticket) : MetadataOp(Slab)
    {
        public override void ApplyTo(BladeImage image) => image.MarkRinged(Slab, Ticket);

        public override ExpectedSlab Next(ExpectedSlab current) => new(SlabState.Ringed, 0, Ticket, 0);

        public override string ToString() => $"MarkRinged(slab {Slab}, ticket {Ticket})";
    }

    public sealed record Own(ulong Slab, uint Node, ulong Ticket) : MetadataOp(Slab)
    {
        public override void ApplyTo(BladeImage image) => image.MarkOwned(Slab, Node, Ticket);

        public override ExpectedSlab Next(ExpectedSlab current) => new(SlabState.Owned, Node, Ticket, 0);

        public override string ToString() => $"MarkOwned(slab {Slab}, node {Node}, ticket {Ticket})";
    }

    public sealed record BeginFree(ulong Slab, uint Node, ulong Epoch) : MetadataOp(Slab)
    {
        public override void ApplyTo(BladeImage image) => image.MarkFreeing(Slab, Node, Epoch);

        public override ExpectedSlab Next(ExpectedSlab current) => new(SlabState.Freeing, Node, current.Generation, Epoch);

        public override string ToString() => $"MarkFreeing(slab {Slab}, node {Node}, epoch {Epoch})";
    }

    public sealed record Release(ulong Slab) : MetadataOp(Slab)
    {
        public override void ApplyTo(BladeImage image) => image.MarkFree(Slab);

        // A released slab keeps its last generation, so a stale ring entry or acknowledgement never matches it again.
        public override ExpectedSlab Next(ExpectedSlab current) => new(SlabState.Free, 0, current.Generation, 0);

        public override string ToString() => $"MarkFree(slab {Slab})";
    }
}

/// <summary>
/// A raw step: which slab, and a choice among its valid transitions. Any list of steps interprets as a valid
/// sequence of updates (the slab lifecycle of the blade agent), so FsCheck can shrink a list by dropping steps.
/// </summary>
internal readonly record struct MetadataStep(int Slab, int Choice, int Node);

/// <summary>A random sequence of metadata updates, driven by the slab lifecycle Free → Ringed → Owned → Freeing → Free
/// (and Ringed → Free, an unclaimed ring entry reclaimed at restart).</summary>
internal sealed record MetadataScenario(MetadataStep[] Steps, int CrashSeed)
{
    public MetadataOp[] Interpret(ulong slabCount, uint maxNodes)
    {
        var model = new ExpectedSlab[slabCount];
        var ops = new List<MetadataOp>();
        ulong nextTicket = 1;
        ulong epoch = 1;
        foreach (var step in Steps)
        {
            ulong slab = (ulong)step.Slab % slabCount;
            var current = model[slab];
            MetadataOp op = current.State switch
            {
                SlabState.Free => new MetadataOp.Ring(slab, nextTicket++),
                SlabState.Ringed when step.Choice % 4 == 0 => new MetadataOp.Release(slab),
                SlabState.Ringed => new MetadataOp.Own(slab, (uint)step.Node % maxNodes, current.Generation),
                SlabState.Owned => new MetadataOp.BeginFree(slab, current.Node, epoch++),
                _ => new MetadataOp.Release(slab),
            };
            model[slab] = op.Next(current);
            ops.Add(op);
        }

        return [.. ops];
    }

    /// <summary>The model's record of every slab after each prefix of <paramref name="ops"/>: [i] is after i updates.</summary>
    public static ExpectedSlab[][] Prefixes(MetadataOp[] ops, ulong slabCount)
    {
        var states = new ExpectedSlab[ops.Length + 1][];
        states[0] = new ExpectedSlab[slabCount];
        for (int i = 0; i < ops.Length; i++)
        {
            states[i + 1] = (ExpectedSlab[])states[i].Clone();
            states[i + 1][ops[i].Slab] = ops[i].Next(states[i][ops[i].Slab]);
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
