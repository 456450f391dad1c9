namespace RAllocator.Protocol.Tests;

/// <summary>
/// The bugs the model test found in the correct code, each pinned by the smallest scenario that shows it
/// (see the shrunk counterexamples in the report of the change that fixed them).
/// </summary>
public sealed class ModelFindingsTests
{
    private const ulong SlabSize = 64 * 1024;

    /// <summary>
    /// Found as <c>CrashBlade; Allocate</c>: after a restart the fill mark equals the sequencer, so the first
    /// ticket is taken before its entry is filled. The refill window then spans more than one ring, and the entry
    /// of ticket t + capacity overwrote the entry of ticket t in the same pass: the taker of t never saw its slab
    /// (ProtocolStallException after 200 reads) and t's slab stayed Ringed.
    /// </summary>
    [Fact]
    public async Task ATicketTakenBeforeItsEntryIsFilledGetsItsOwnEntryAndNotOneRingLater()
    {
        var blade = EmbeddedBlade.Format(0, new SimulatedNvm(4 << 20), SlabSize, new BladeFormatOptions { MaxNodes = 2, RingCapacity = 4 });
        blade.Agent.RunOnce();
        int backoffs = 0;
        var client = await BladeClient.ConnectAsync(blade.Connect(0), 0, new ProtocolOptions
        {
            RingReadRetryLimit = 5,
            Backoff = (_, _) =>
            {
                backoffs++;
                blade.Agent.RunOnce();
                return Task.CompletedTask;
            },
        });
        await client.RegisterAsync();
        var slabs = new List<ulong>();

        // Four tickets from the pre-filled ring, then a fifth whose entry the next pass must fill.
        for (int i = 0; i < 5; i++)
        {
            slabs.Add((await client.AcquireSlabAsync()).SlabIndex);
        }

        backoffs.ShouldBe(1, "only the fifth ticket outran the ring, and one agent pass fills its entry");
        slabs.Distinct().Count().ShouldBe(5, "five tickets, five different slabs");
        blade.Agent.RunOnce();
        blade.Image.Scan().DurablyOwnedBy(0).ShouldBe(slabs.Order().ToArray(), "every acquired slab is the node's");
    }

    /// <summary>
    /// Found as <c>Allocate(node 0, 262089 B)</c>: with 64 KiB slabs the size classes above 65472 bytes carve
    /// slabs of zero objects, so an allocation acquired a slab, then failed with IndexOutOfRangeException, and
    /// every retry leaked one more slab into the class's empty list.
    /// </summary>
    [Fact]
    public async Task AnObjectLargerThanASlabIsRefusedWithoutAcquiringASlab()
    {
        var blade = EmbeddedBlade.Format(0, new SimulatedNvm(4 << 20), SlabSize, new BladeFormatOptions { MaxNodes = 2, RingCapacity = 4 });
        blade.Agent.RunOnce();
        var heap = await EmbeddedNode.OpenHeapAsync([blade], 0);

        var refused = await Should.ThrowAsync<ArgumentOutOfRangeException>(async () => await heap.AllocateAsync(57_345));

        refused.Message.ShouldContain("57344", customMessage: "the message names the largest size class a slab holds");
        heap.GetStatistics().SlabsAcquired.ShouldBe(0, "a refused allocation takes no slab");
        heap.OwnedSlabIndexes(0).ShouldBeEmpty();
        var largest = await heap.AllocateAsync(57_344);
        heap.IsAllocated(largest).ShouldBeTrue("the largest class that fits one object per slab still works");
    }
}
