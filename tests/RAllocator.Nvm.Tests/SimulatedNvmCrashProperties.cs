using System.Buffers.Binary;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace RAllocator.Nvm.Tests;

/// <summary>
/// Property tests of the crash model: random programs of stores, writes, atomics and persists, then a crash
/// keeping a random subset. FsCheck prints the replay seed of any failure (pass it as
/// <c>[Property(Replay = "...")]</c>), and the failing script itself prints in full.
/// </summary>
public sealed class SimulatedNvmCrashProperties
{
    internal const int RegionBytes = 256; // 4 cache lines, 32 words: small, so stores collide often.

    [Property(MaxTest = 500, Arbitrary = [typeof(CrashScriptArbitrary)])]
    public void EveryDurableWordAfterACrashIsItsOldDurableValueOrOneOfItsPendingStores(CrashScript script)
    {
        using var nvm = new SimulatedNvm(RegionBytes);
        var model = new byte[RegionBytes];
        foreach (var op in script.Ops)
        {
            op.Apply(nvm, model);
        }

        var visible = new byte[RegionBytes];
        nvm.Read(0, visible);
        visible.ShouldBe(model, "before a crash loads see every store, as a plain byte array would");

        byte[] durableBefore = nvm.DurableImageCopy();
        var pending = nvm.PendingStores;
        bool[] kept = script.KeptMask(pending.Count);
        if (script.CrashBySeed)
        {
            nvm.Crash(script.Seed);
        }
        else
        {
            nvm.Crash(Enumerable.Range(0, pending.Count).Where(i => kept[i]));
        }

        byte[] durableAfter = nvm.DurableImageCopy();
        for (int offset = 0; offset < RegionBytes; offset += 8)
        {
            ulong before = Word(durableBefore, offset);
            ulong after = Word(durableAfter, offset);
            var storesToWord = pending.Where(s => s.Offset == offset).ToList();

            (after == before || storesToWord.Any(s => s.Value == after)).ShouldBeTrue(
                $"word {offset} after the crash ({after:x}) must be its old durable value ({before:x}) or one of its pending stores");

            var keptStores = storesToWord.Where(s => kept[s.Index]).ToList();
            ulong expected = keptStores.Count > 0 ? keptStores[^1].Value : before;
            after.ShouldBe(expected, $"word {offset} holds its latest kept store, or its old durable value when none was kept");
            if (storesToWord.Count == 0)
            {
                after.ShouldBe(Word(model, offset), $"word {offset} had no pending store, so it was durable and survives exactly");
            }
        }

        nvm.Read(0, visible);
        visible.ShouldBe(durableAfter, "after a crash loads see the durable image");
        nvm.PendingStores.ShouldBeEmpty("a crash drops every pending store");
    }

    [Property(MaxTest = 200, Arbitrary = [typeof(CrashScriptArbitrary)])]
    public void PersistingTheWholeRegionMakesEveryVisibleByteSurviveAnyCrash(CrashScript script)
    {
        using var nvm = new SimulatedNvm(RegionBytes);
        var model = new byte[RegionBytes];
        foreach (var op in script.Ops)
        {
            op.Apply(nvm, model);
        }

        nvm.PersistAll();
        nvm.PendingStores.ShouldBeEmpty("a persist of the whole region flushes every line");
        nvm.Crash(script.Seed);
        nvm.DurableImageCopy().ShouldBe(model, "every persisted store survives a crash");
    }

    private static ulong Word(byte[] image, int offset) => BinaryPrimitives.ReadUInt64LittleEndian(image.AsSpan(offset));
}

/// <summary>One operation of a random program against a region, applied to a reference byte array too.</summary>
public abstract record NvmOp
{
    internal abstract void Apply(SimulatedNvm nvm, byte[] model);

    public sealed record Store(int Offset, ulong Value) : NvmOp
    {
        internal override void Apply(SimulatedNvm nvm, byte[] model)
        {
            nvm.StoreUInt64(Offset, Value);
            BinaryPrimitives.WriteUInt64LittleEndian(model.AsSpan(Offset), Value);
        }
    }

    public sealed record FetchAdd(int Offset, ulong Delta) : NvmOp
    {
        internal override void Apply(SimulatedNvm nvm, byte[] model)
        {
            ulong old = BinaryPrimitives.ReadUInt64LittleEndian(model.AsSpan(Offset));
            nvm.FetchAddUInt64(Offset, Delta).ShouldBe(old, "fetch-add returns the value before the addition");
            BinaryPrimitives.WriteUInt64LittleEndian(model.AsSpan(Offset), unchecked(old + Delta));
        }
    }

    public sealed record CompareExchange(int Offset, ulong Expected, ulong Desired) : NvmOp
    {
        internal override void Apply(SimulatedNvm nvm, byte[] model)
        {
            ulong old = BinaryPrimitives.ReadUInt64LittleEndian(model.AsSpan(Offset));
            nvm.CompareExchangeUInt64(Offset, Expected, Desired).ShouldBe(old, "CAS returns the value it found");
            if (old == Expected)
            {
                BinaryPrimitives.WriteUInt64LittleEndian(model.AsSpan(Offset), Desired);
            }
        }
    }

    public sealed record Write(int Offset, byte[] Bytes) : NvmOp
    {
        internal override void Apply(SimulatedNvm nvm, byte[] model)
        {
            nvm.Write(Offset, Bytes);
            Bytes.CopyTo(model, Offset);
        }

        public override string ToString() => $"Write {{ Offset = {Offset}, Bytes = {Convert.ToHexString(Bytes)} }}";
    }

    public sealed record Persist(int Offset, int Length) : NvmOp
    {
        internal override void Apply(SimulatedNvm nvm, byte[] model) => nvm.Persist(Offset, Length);
    }
}

/// <summary>A random program and the crash that ends it.</summary>
public sealed record CrashScript(NvmOp[] Ops, int Seed, bool CrashBySeed)
{
    /// <summary>
    /// Which pending stores the crash keeps. For a seeded crash this is the documented draw of
    /// <see cref="SimulatedNvm.Crash(int)"/>: one <c>Next(2) == 0</c> per pending store, in order.
    /// </summary>
    public bool[] KeptMask(int pendingCount)
    {
        var random = new Random(CrashBySeed ? Seed : ~Seed);
        return Enumerable.Range(0, pendingCount).Select(_ => random.Next(2) == 0).ToArray();
    }

    public override string ToString() =>
        $"CrashScript {{ Seed = {Seed}, CrashBySeed = {CrashBySeed}, Ops = [{string.Join(", ", Ops.Select(o => o.ToString()))}] }}";
}

public static class CrashScriptArbitrary
{
    private const int Words = SimulatedNvmCrashProperties.RegionBytes / 8;

    public static Arbitrary<CrashScript> CrashScript()
    {
        var wordOffset = Gen.Choose(0, Words - 1).Select(w => w * 8);
        var byteOffset = Gen.Choose(0, SimulatedNvmCrashProperties.RegionBytes - 1);
        var anyULong = Gen.Zip(Gen.Choose(int.MinValue, int.MaxValue), Gen.Choose(int.MinValue, int.MaxValue))
            .Select(t => ((ulong)(uint)t.Item1 << 32) | (uint)t.Item2);

        // Small values collide, so CASes succeed and stores overwrite one another often.
        var value = Gen.Frequency((3, Gen.Choose(0, 3).Select(v => (ulong)v)), (2, anyULong));

        var store = Gen.Zip(wordOffset, value, (o, v) => (NvmOp)new NvmOp.Store(o, v));
        var fetchAdd = Gen.Zip(wordOffset, value, (o, v) => (NvmOp)new NvmOp.FetchAdd(o, v));
        var compareExchange = Gen.Zip(wordOffset, Gen.Zip(value, value))
            .Select(t => (NvmOp)new NvmOp.CompareExchange(t.Item1, t.Item2.Item1, t.Item2.Item2));
        var write = from offset in byteOffset
                    from length in Gen.Choose(1, Math.Min(24, SimulatedNvmCrashProperties.RegionBytes - offset))
                    from bytes in Gen.Choose(0, 255).Select(b => (byte)b).ArrayOf(length)
                    select (NvmOp)new NvmOp.Write(offset, bytes);
        var persist = from offset in byteOffset
                      from length in Gen.Choose(0, Math.Min(80, SimulatedNvmCrashProperties.RegionBytes - offset))
                      select (NvmOp)new NvmOp.Persist(offset, length);

        var op = Gen.Frequency((4, store), (2, fetchAdd), (2, compareExchange), (3, write), (2, persist));
        var script = from ops in op.ArrayOf()
                     from seed in Gen.Choose(int.MinValue, int.MaxValue)
                     from bySeed in Gen.Elements(true, false)
                     select new CrashScript(ops, seed, bySeed);
        return Arb.From(script);
    }
}
