using RAllocator.Blade;
using RAllocator.Embedded;
using RAllocator.Node;
using RAllocator.Nvm;

namespace RAllocator.Cli.Commands.Ycsb;

/// <summary>What <c>ycsb</c> asks a heap factory for.</summary>
/// <param name="RegionBytes">A blade region large enough for the records, inserts and slack.</param>
/// <param name="Nvm"><c>file</c> (a mapped file) or <c>simulated</c> (in memory).</param>
/// <param name="Path">The file to create, or null for a temporary file deleted afterwards.</param>
internal sealed record YcsbTargetRequest(ulong RegionBytes, string Nvm, string? Path);

/// <summary>A working-node heap to run the store on, and how to release it.</summary>
internal sealed class YcsbTarget(WorkingNodeHeap heap, string description, string durability, Func<ValueTask> release) : IAsyncDisposable
{
    public WorkingNodeHeap Heap { get; } = heap;

    /// <summary>Where the blade is and what its NVM is (printed with the results).</summary>
    public string Description { get; } = description;

    /// <summary>What a persist means on this target (printed with the results).</summary>
    public string Durability { get; } = durability;

    public ValueTask DisposeAsync() => release();
}

/// <summary>Creates the heap <c>ycsb</c> runs on; the default is <see cref="EmbeddedYcsbTarget.CreateAsync"/>.</summary>
internal delegate Task<YcsbTarget> YcsbHeapFactory(YcsbTargetRequest request, CancellationToken cancellationToken);

/// <summary>The default target: one blade in-process on a mapped file (or simulated NVM), its agent running, one node.</summary>
internal static class EmbeddedYcsbTarget
{
    public const ulong SlabSizeBytes = 1 << 20;

    public static async Task<YcsbTarget> CreateAsync(YcsbTargetRequest request, CancellationToken cancellationToken)
    {
        string? file = null;
        bool deleteFile = false;
        INvmRegion region;
        if (request.Nvm == "simulated")
        {
            region = new SimulatedNvm((long)request.RegionBytes);
        }
        else
        {
            file = request.Path ?? System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"rallocator-ycsb-{Environment.ProcessId}-{Guid.NewGuid():N}.img");
            deleteFile = request.Path is null;
            try
            {
                region = MappedFileNvm.Create(file, (long)request.RegionBytes);
            }
            catch (NvmFileExistsException ex)
            {
                throw new CliFailureException($"{file} exists; ycsb formats a new blade there: remove it or give another --path.", ex);
            }
        }

        var blade = EmbeddedBlade.Format(0, region, SlabSizeBytes);
        var stop = new CancellationTokenSource();
        var agent = blade.RunAgentAsync(stop.Token);
        var heap = await EmbeddedNode.OpenHeapAsync([blade], 0, cancellationToken: cancellationToken).ConfigureAwait(false);
        string durability = region.PersistenceDomain switch
        {
            NvmPersistenceDomain.MappedFileMsync => "each persist is an msync of the mapped file: durable on this disk",
            NvmPersistenceDomain.PersistentMemory when Environment.GetEnvironmentVariable("PMEM_IS_PMEM_FORCE") == "1" =>
                "each persist is cache-line flushes + fence (PMEM_IS_PMEM_FORCE=1 on a page-cache mapping): the cost of real pmem, NOT durable on this machine",
            NvmPersistenceDomain.PersistentMemory => "each persist is cache-line flushes + fence to persistent memory: durable",
            _ => "simulated NVM in memory: nothing survives the process",
        };
        return new YcsbTarget(heap, $"embedded blade, {region.Description}{(file is null ? "" : $" at {file}")}", durability, async () =>
        {
            await stop.CancelAsync().ConfigureAwait(false);
            try
            {
                await agent.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }

            stop.Dispose();
            region.Dispose();
            if (deleteFile && file is not null)
            {
                File.Delete(file);
            }
        });
    }
}
