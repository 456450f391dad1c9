using RAllocator.Protocol.Layout;

namespace RAllocator.Protocol.Tests;

/// <summary>Several slab sizes: span rings, coalescing of free neighbours, and spans through the whole slab life.</summary>
public sealed class SpanSlabTests
{
    private const ulong SlabSize = 64 * 1024;

    private static EmbeddedBlade NewBlade(uint maxSpan = 8, long regionBytes = 8 << 20) =>
        EmbeddedBlade.Format(0, new SimulatedNvm(regionBytes), SlabSize,
            new BladeFormatOptions { MaxNodes = 4, RingCapacity = 8, MaxSlabSpan = maxSpan, SpanRingCapacity = 2 });

    private static async Task<BladeClient> RegisteredClient(EmbeddedBlade blade, uint node)
    {
        var client = await BladeClient.ConnectAsync(blade.Connect(node), node);
        await client.RegisterAsync();
        return client;
    }

    [Fact]
    public async Task ASpanSlabCostsTheSameTwoRoundTripsAsABaseSlabAndIsAlignedAndContiguous()
    {
        var blade = NewBlade();
        blade.Agent.RunOnce();
        var client = await RegisteredClient(blade, 1);
        long calls = blade.Agent.HandlerCalls;
        var before = client.Counters.Snapshot();

        var slab = await client.AcquireSlabAsync(spanClass: 3);

        var cost = client.Counters.Snapshot().Since(before);
        cost.RoundTrips.ShouldBe(2, "FETCH_AND_ADD on the span ring's sequencer + READ of its entry");
        blade.Agent.HandlerCalls.ShouldBe(calls, "no blade handler runs on the acquisition path");
        slab.Span.ShouldBe(8u);
        (slab.SlabIndex % 8).ShouldBe(0UL, "spans are aligned to their size");
        slab.Offset.ShouldBe(blade.Image.Geometry.SlabOffset(slab.SlabIndex));
        SlabRings.SpanClassOf(slab.Ticket).ShouldBe(3, "a ticket names its ring");

        blade.Agent.RunOnce();
        var state = blade.Image.Scan();
        state.IsConsistent.ShouldBeTrue(string.Join("; ", state.Problems));
        for (ulong member = slab.SlabIndex; member < slab.SlabIndex + 8; member++)
        {
            state.Slabs[(int)member].State.ShouldBe(SlabState.Owned);
            state.Slabs[(int)member].Node.ShouldBe(1u);
            state.Slabs[(int)member].Span.ShouldBe(8u);
            state.Slabs[(int)member].SpanHeadDistance.ShouldBe((uint)(member - slab.SlabIndex));
        }

        state.OwnedByNode[1].Select(s => s.Index).ShouldBe([slab.SlabIndex], "a span is one slab, named by its head");
    }

    [Fact]
    public async Task AReturnedSpanComesBackAsFreeBaseSlabsAndIsCoalescedAgain()
    {
        var blade = NewBlade();
        blade.Agent.RunOnce();
        var client = await RegisteredClient(blade, 1);
        var span = await client.AcquireSlabAsync(2);
        blade.Agent.RunOnce();
        await client.ReturnSlabAsync(span.SlabIndex);
        for (int pass = 0; pass < 4; pass++)
        {
            await client.PublishEpochAsync(await client.ReadGlobalEpochAsync());
            blade.Agent.RunOnce();
        }

        var state = blade.Image.Scan();
        state.IsConsistent.ShouldBeTrue(string.Join("; ", state.Problems));
        for (ulong member = span.SlabIndex; member < span.SlabIndex + 4; member++)
        {
            state.Slabs[(int)member].State.ShouldNotBe(SlabState.Owned, "every base slab of the span was released");
        }

        blade.Agent.Stats.SlabsReclaimed.ShouldBe(1);
    }

    [Fact]
    public async Task WhenNoAlignedRunIsFreeTheSpanRingSaysOutOfMemoryWhileBaseSlabsRemain()
    {
        var blade = NewBlade(maxSpan: 8);
        blade.Agent.RunOnce();
        // The agent answers a ticket it could not fill (Exhausted) on its next pass; run it while the node waits.
        var client = await BladeClient.ConnectAsync(blade.Connect(1), 1, new ProtocolOptions
        {
            Backoff = (_, _) => { blade.Agent.RunOnce(); return Task.CompletedTask; },
        });
        await client.RegisterAsync();
        ulong slabCount = blade.Image.Geometry.SlabCount;

        var spans = new List<OwnedSlab>();
        await Should.ThrowAsync<BladeOutOfMemoryException>(async () =>
        {
            while (true)
            {
                spans.Add(await client.AcquireSlabAsync(3));
                blade.Agent.RunOnce();
            }
        });

        spans.Count.ShouldBeGreaterThan(0);
        ((ulong)spans.Count * 8).ShouldBeLessThanOrEqualTo(slabCount);
        spans.Select(s => s.SlabIndex).Distinct().Count().ShouldBe(spans.Count);
        var state = blade.Image.Scan();
        state.IsConsistent.ShouldBeTrue(string.Join("; ", state.Problems));
        var baseSlab = await client.AcquireSlabAsync(0);
        spans.ShouldNotContain(s => baseSlab.SlabIndex >= s.SlabIndex && baseSlab.SlabIndex < s.SlabIndex + 8,
            "the base slab the ring still held is outside every span");
    }

    [Fact]
    public async Task ANodeRecoversItsSpansWithTheirSizes()
    {
        var blade = NewBlade();
        blade.Agent.RunOnce();
        var client = await RegisteredClient(blade, 1);
        var base0 = await client.AcquireSlabAsync();
        var span4 = await client.AcquireSlabAsync(2);
        // No agent pass: the span's acknowledgement is still pending in the node's area.
        var restarted = await BladeClient.ConnectAsync(blade.Connect(1), 1);
        var recovery = await restarted.RegisterAsync();

        recovery.OwnedSlabs.ShouldContain(s => s.SlabIndex == base0.SlabIndex && s.Span == 1);
        recovery.OwnedSlabs.ShouldContain(s => s.SlabIndex == span4.SlabIndex && s.Span == 4);
        recovery.OwnedSlabs.Count.ShouldBe(2);
    }

    [Fact]
    public async Task ABladeRestartKeepsAcknowledgedSpansAndFreesRingedOnes()
    {
        var nvm = new SimulatedNvm(8 << 20);
        var blade = EmbeddedBlade.Format(0, nvm, SlabSize, new BladeFormatOptions { MaxNodes = 4, RingCapacity = 8, MaxSlabSpan = 4, SpanRingCapacity = 2 });
        blade.Agent.RunOnce();
        var client = await RegisteredClient(blade, 1);
        var span = await client.AcquireSlabAsync(2);

        var restarted = EmbeddedBlade.Open(0, nvm);
        var state = restarted.Image.Scan();
        state.IsConsistent.ShouldBeTrue(string.Join("; ", state.Problems));
        state.DurablyOwnedBy(1).ShouldBe([span.SlabIndex]);
        state.Slabs.Count(s => s.State == SlabState.Ringed).ShouldBe(0, "a restart empties every ring");
        state.Rings[2].Sequencer.ShouldBeGreaterThan(span.Ticket, "the span ring's sequencer moved past every ticket handed out");
        SlabRings.SpanClassOf(state.Rings[2].Sequencer).ShouldBe(2, "and stayed in its own ticket space");
        state.Count(SlabState.Owned).ShouldBe(4, "the span's four base slabs are owned");
    }

    [Fact]
    public async Task AnAcknowledgementNamingATailSlabIsRejected()
    {
        var blade = NewBlade();
        blade.Agent.RunOnce();
        var client = await RegisteredClient(blade, 1);
        var span = await client.AcquireSlabAsync(1);
        blade.Agent.RunOnce();
        // A buggy node frees the span's second base slab instead of its head: the blade ignores it.
        await client.ReturnSlabAsync(span.SlabIndex + 1);
        blade.Agent.RunOnce();
        blade.Agent.Stats.FreesRejected.ShouldBe(1);
        blade.Image.Scan().Slabs[(int)span.SlabIndex + 1].State.ShouldBe(SlabState.Owned);
    }

    [Fact]
    public async Task AnImageWithoutSpansHasTheVersionOneLayout()
    {
        var geometry = BladeGeometry.ForRegion(16 << 20, SlabSize, new BladeFormatOptions());
        geometry.SpanRingCapacity.ShouldBe(0u);
        geometry.Layout.SpanRingControlsLengthBytes.ShouldBe(0);
        geometry.Layout.SpanRingEntriesLengthBytes.ShouldBe(0);
        geometry.Rings.Count.ShouldBe(1);
        await Task.CompletedTask;
    }

    [Theory]
    [InlineData(3u)]
    [InlineData(128u)]
    public void AMaximumSpanThatIsNotAPowerOfTwoUpTo64IsRefused(uint maxSpan)
    {
        var error = Should.Throw<BladeGeometryException>(() => BladeGeometry.ForRegion(16 << 20, SlabSize, new BladeFormatOptions { MaxSlabSpan = maxSpan }));
        error.Message.ShouldContain("maximum slab span");
    }

    [Fact]
    public async Task AnUnknownSpanClassIsAClearError()
    {
        var blade = NewBlade(maxSpan: 4);
        blade.Agent.RunOnce();
        var client = await RegisteredClient(blade, 1);
        var error = await Should.ThrowAsync<ArgumentOutOfRangeException>(() => client.AcquireSlabAsync(3));
        error.Message.ShouldContain("span classes 0 to 2");
    }

    [Fact]
    public async Task TheHeapServesObjectsLargerThanABaseSlabFromSpans()
    {
        var blade = NewBlade();
        blade.Agent.RunOnce();
        var heap = await EmbeddedNode.OpenHeapAsync([blade], 1);
        var big = await heap.AllocateAsync(200 * 1024);
        var payload = Enumerable.Range(0, 200 * 1024).Select(i => (byte)(i * 7)).ToArray();
        await heap.WriteAndPersistAsync(big, payload);
        var back = new byte[payload.Length];
        await heap.ReadBytesAsync(big, back);
        back.ShouldBe(payload);
        heap.GetStatistics().SlabsBySpanClass![2].ShouldBe(1, "a 200 KiB object needs a 256 KiB slab: 4 base slabs of 64 KiB");
        await heap.FreeAsync(big);
        heap.IsAllocated(big).ShouldBeFalse();
    }
}
