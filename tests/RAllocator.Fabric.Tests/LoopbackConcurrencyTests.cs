using static RAllocator.Fabric.Tests.Fixtures;

namespace RAllocator.Fabric.Tests;

/// <summary>Real threads through real atomics: the loopback adds no races of its own.</summary>
public sealed class LoopbackConcurrencyTests
{
    [Fact]
    public async Task EightThreadsFetchAddingThroughTwoConnectionsDrawDistinctTickets()
    {
        const int threadCount = 8;
        const int ticketsPerThread = 2_000;
        const long ticketWord = 0x40;
        var (fabric, region) = NewFabric();
        await using var first = fabric.Connect(0, Writable((ticketWord, 8)), nodeName: "first");
        await using var second = fabric.Connect(0, Writable((ticketWord, 8)), nodeName: "second");

        var tickets = new ulong[threadCount][];
        using var start = new Barrier(threadCount);
        var threads = Enumerable.Range(0, threadCount).Select(t => new Thread(() =>
        {
            var connection = t % 2 == 0 ? first : second;
            var mine = tickets[t] = new ulong[ticketsPerThread];
            start.SignalAndWait();
            for (var i = 0; i < ticketsPerThread; i++)
            {
                mine[i] = connection.FetchAddAsync(ticketWord, 1).AsTask().GetAwaiter().GetResult();
            }
        })).ToList();
        threads.ForEach(thread => thread.Start());
        threads.ForEach(thread => thread.Join());

        var all = tickets.SelectMany(t => t).ToList();
        all.Distinct().Count().ShouldBe(all.Count, "FETCH_AND_ADD must never hand the same ticket to two callers");
        all.Order().ShouldBe(
            Enumerable.Range(0, threadCount * ticketsPerThread).Select(i => (ulong)i),
            "the tickets must be exactly 0..n-1: no ticket lost, none skipped");
        region.LoadUInt64(ticketWord).ShouldBe((ulong)(threadCount * ticketsPerThread), "every increment must land");
        first.Counters.Snapshot().FetchAdds.ShouldBe(threadCount / 2 * ticketsPerThread, "counters must not lose concurrent increments");
        second.Counters.Snapshot().RoundTrips.ShouldBe(threadCount / 2 * ticketsPerThread, "counters must not lose concurrent increments");
    }
}
