using RAllocator.Fabric.Loopback;
using RAllocator.Nvm;

namespace RAllocator.Fabric.SharedMemory;

/// <summary>
/// A working node on the blade's host: it maps the blade's NVM file itself and runs every verb on its own
/// mapping, with the CPU's atomic instructions for FETCH_AND_ADD and CMP_AND_SWP (coherent with the blade's and
/// every other node's mapping of the same file) and <c>pmem_persist</c> or <c>msync</c> for PERSIST. The blade's
/// CPU is never involved: this is the true CPU-bypass path on one host.
/// </summary>
/// <remarks>
/// <para>Counting and failure rules are those of <see cref="LoopbackConnection"/>, which executes the verbs: the
/// same checks against the node's registrations, the same counters.</para>
/// <para>Isolation is cooperative here: the registrations are checked in the node's process, and a process that
/// can open the image file read-write can write anywhere in it. File permissions are the boundary on one host;
/// see spec/processes.md, "Access isolation".</para>
/// </remarks>
public sealed class SharedMemoryConnection : IFabricConnection
{
    private readonly MappedFileNvm _mapping;
    private readonly LoopbackFabric _fabric;
    private readonly LoopbackConnection _verbs;

    private SharedMemoryConnection(MappedFileNvm mapping, int bladeId, FabricAccess access, string nodeName)
    {
        _mapping = mapping;
        _fabric = new LoopbackFabric(mapping);
        _verbs = _fabric.Connect(bladeId, access, nodeName);
    }

    /// <summary>Maps the blade image at <paramref name="imagePath"/> read-write and connects through it.</summary>
    /// <exception cref="FabricException">The image cannot be mapped (status <see cref="FabricStatus.Unreachable"/>), with the reason.</exception>
    public static SharedMemoryConnection Open(string imagePath, int bladeId, FabricAccess access, string nodeName, long expectedRegionLength)
    {
        ArgumentNullException.ThrowIfNull(access);
        return Open(imagePath, bladeId, access, nodeName, expectedRegionLength, NvmAccess.ReadWrite);
    }

    /// <summary>
    /// Maps the blade image at <paramref name="imagePath"/> read-only (<c>PROT_READ</c>) for an observer: READ works
    /// anywhere, every other verb fails with <see cref="FabricStatus.RemoteAccessError"/>, and no store can reach
    /// the image from this process whatever the code does. Needs only read permission on the file.
    /// </summary>
    /// <exception cref="FabricException">The image cannot be mapped (status <see cref="FabricStatus.Unreachable"/>), with the reason.</exception>
    public static SharedMemoryConnection OpenReadOnly(string imagePath, int bladeId, string nodeName, long expectedRegionLength) =>
        Open(imagePath, bladeId, FabricAccess.ReadOnly, nodeName, expectedRegionLength, NvmAccess.ReadOnly);

    private static SharedMemoryConnection Open(string imagePath, int bladeId, FabricAccess access, string nodeName, long expectedRegionLength, NvmAccess mode)
    {
        ArgumentException.ThrowIfNullOrEmpty(imagePath);
        MappedFileNvm mapping;
        try
        {
            mapping = MappedFileNvm.Open(imagePath, mode);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidOperationException)
        {
            throw new FabricException(FabricStatus.Unreachable,
                $"shared-memory fabric: cannot map the blade image '{imagePath}' ({ex.Message}). The shared-memory fabric works only on the blade's host, for a user allowed to {(mode == NvmAccess.ReadOnly ? "read" : "read and write")} the image; use --fabric ucx from other hosts.");
        }

        if (mapping.Length != expectedRegionLength)
        {
            var actual = mapping.Length;
            mapping.Dispose();
            throw new FabricException(FabricStatus.Unreachable,
                $"shared-memory fabric: '{imagePath}' is {actual} bytes but the blade serves {expectedRegionLength}: it is not the blade's image (another file at the same path on this host?).");
        }

        return new SharedMemoryConnection(mapping, bladeId, access, nodeName);
    }

    /// <inheritdoc />
    public int BladeId => _verbs.BladeId;

    /// <inheritdoc />
    public long RegionLength => _verbs.RegionLength;

    /// <inheritdoc />
    public FabricCounters Counters => _verbs.Counters;

    /// <summary>How the mapping persists (libpmem or msync) and why.</summary>
    public string MappingDescription => _mapping.Description;

    /// <summary>Fails every later operation with <see cref="FabricStatus.Unreachable"/>: the blade process is gone,
    /// and a node must not keep changing the image behind a restarting blade's recovery.</summary>
    public void MarkBladeLost() => _fabric.SetReachable(false);

    /// <inheritdoc />
    public ValueTask ReadAsync(long remoteOffset, Memory<byte> destination, CancellationToken cancellationToken = default) =>
        _verbs.ReadAsync(remoteOffset, destination, cancellationToken);

    /// <inheritdoc />
    public ValueTask WriteAsync(long remoteOffset, ReadOnlyMemory<byte> source, CancellationToken cancellationToken = default) =>
        _verbs.WriteAsync(remoteOffset, source, cancellationToken);

    /// <inheritdoc />
    public ValueTask<ulong> FetchAddAsync(long remoteOffset, ulong delta, CancellationToken cancellationToken = default) =>
        _verbs.FetchAddAsync(remoteOffset, delta, cancellationToken);

    /// <inheritdoc />
    public ValueTask<ulong> CompareSwapAsync(long remoteOffset, ulong expected, ulong desired, CancellationToken cancellationToken = default) =>
        _verbs.CompareSwapAsync(remoteOffset, expected, desired, cancellationToken);

    /// <inheritdoc />
    public ValueTask PersistAsync(long remoteOffset, long length, CancellationToken cancellationToken = default) =>
        _verbs.PersistAsync(remoteOffset, length, cancellationToken);

    /// <inheritdoc />
    public FabricBatch CreateBatch() => _verbs.CreateBatch();

    /// <summary>Closes the connection and unmaps the image (stores already persisted stay durable).</summary>
    public async ValueTask DisposeAsync()
    {
        await _verbs.DisposeAsync().ConfigureAwait(false);
        _mapping.Dispose();
    }

    /// <inheritdoc />
    public override string ToString() => $"shm {_verbs}";
}
