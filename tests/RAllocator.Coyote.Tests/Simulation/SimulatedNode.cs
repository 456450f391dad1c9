using Microsoft.Coyote.Random;
using Microsoft.Coyote.Runtime;
using RAllocator.Fabric.Loopback;

namespace RAllocator.Coyote.Tests.Simulation;

/// <summary>
/// A working node: a supervisor that opens a heap (registering a new incarnation and recovering the node's slabs),
/// runs the node's concurrent tasks on it, and opens a new heap under the same id after each death. Each heap is
/// one "life"; a life dies when the test crashes it, the blade fences it, or the blade crashes.
/// </summary>
/// <remarks>
/// Tasks per life: object workers (allocate and write objects, free them, publish epochs, and read other nodes'
/// objects under <see cref="WorkingNodeHeap.EnterEpoch"/>) and slab workers (acquire a slab from the blade
/// directly, hold it a moment, return it). Every worker has a fixed budget of operations over all of the node's lives.
/// </remarks>
internal sealed class SimulatedNode
{
    private readonly SimulatedCluster _cluster;
    private readonly int[] _operationsLeft;
    private int _life;
    private bool _alive;
    private bool _stayDown;
    private int _livesLeft;
    private long _lastHeartbeatPass;
    private LoopbackConnection? _connection;
    private WorkingNodeHeap? _heap;

    public SimulatedNode(SimulatedCluster cluster, uint id)
    {
        _cluster = cluster;
        Id = id;
        var scenario = cluster.Scenario;
        _operationsLeft = Enumerable.Repeat(scenario.OperationsPerTask, scenario.ObjectTasksPerNode + scenario.SlabTasksPerNode).ToArray();
        _livesLeft = scenario.MaxLivesPerNode;
    }

    public uint Id { get; }

    public bool IsAlive => _alive;

    private AllocatorOracle Oracle => _cluster.Oracle;

    private ClusterStats Stats => _cluster.Stats;

    private Generator Random => _cluster.Random;

    public async Task SuperviseAsync()
    {
        try
        {
            while (!_stayDown && _livesLeft-- > 0)
            {
                if (!await RunLifeAsync())
                {
                    await HeartbeatWhileOthersWorkAsync(_life);
                    return;
                }
            }
        }
        finally
        {
            _cluster.NodesWorking--;
        }
    }

    /// <summary>
    /// A node whose work is done stays alive, beating its heartbeat once per agent pass, until every node is done
    /// (bounded): otherwise its lease would expire while the others work, and every iteration would end in fences.
    /// </summary>
    private async Task HeartbeatWhileOthersWorkAsync(int life)
    {
        _cluster.NodesWorking--;
        try
        {
            for (int beat = 0; beat < 64 && _cluster.NodesWorking > 0 && !_cluster.AgentStopped && IsCurrent(life); beat++)
            {
                long passes = _cluster.PassesCompleted;
                await _heap!.PublishEpochsAsync();
                _cluster.WaitForPassAfter(passes);
            }
        }
        catch (Exception error) when (IsDeath(error))
        {
            Kill(life, Describe(error));
        }
        finally
        {
            _cluster.NodesWorking++;
        }
    }

    /// <summary>Crash injected by the test (the caller checked that this node is alive).</summary>
    public void Crash(bool stayDown)
    {
        _stayDown |= stayDown;
        Stats.NodeCrashes++;
        Kill(_life, stayDown ? "injected crash; stays down" : "injected crash");
    }

    /// <summary>The blade reported this node's lease expired: fence it (revoke its connection) before anything else.</summary>
    public void Fence()
    {
        if (_alive)
        {
            Stats.Fences++;
            Kill(_life, "lease expired, fenced by the blade");
        }
    }

    /// <summary>The blade crashed: this life's connection is dead (the oracle has already recorded the death).</summary>
    public void OnBladeCrashed() => _alive = false;

    public Task PublishEpochsAsync() => _heap!.PublishEpochsAsync();

    /// <summary>Quiesce: restarts a node that is down (durable ownership is checked on the way) and finishes its recovery.</summary>
    public async Task RestartForQuiesceAsync()
    {
        int life = ++_life;
        _alive = true;
        var heap = await OpenAsync(life);
        await heap.CompleteRecoveryAsync([]);
    }

    /// <summary>Quiesce: frees every object, then hands back every slab the heap still owns (spares, empty slabs).</summary>
    public async Task ReturnEverythingAsync()
    {
        var heap = _heap!;
        foreach (var ptr in Oracle.ObjectsOf(Id))
        {
            Oracle.ObjectFreeing(Id, ptr);
            await heap.FreeAsync(ptr);
        }

        var client = heap.Blades[0];
        foreach (ulong slab in heap.OwnedSlabIndexes(0))
        {
            await client.ReturnSlabAsync(slab);
        }

        var stillHeld = Oracle.HeldBy(Id);
        Oracle.Check(stillHeld.Count == 0, Invariant.NoPermanentLeak,
            $"node {Id} holds slab(s) [{string.Join(", ", stillHeld.Order())}] that its heap does not know of after freeing everything.");
    }

    /// <summary>One life: open, recover, run the tasks. Returns whether the life ended in a death.</summary>
    private async Task<bool> RunLifeAsync()
    {
        int life = ++_life;
        _alive = true;
        try
        {
            var heap = await OpenAsync(life);
            if (!IsCurrent(life))
            {
                return true;
            }

            // Recovery by reachability: this test keeps no roots, so every recovered object is garbage.
            await heap.CompleteRecoveryAsync([]);
            var scenario = _cluster.Scenario;
            var tasks = new List<Task>();
            int slot = 0;
            for (int i = 0; i < scenario.ObjectTasksPerNode; i++, slot++)
            {
                int mySlot = slot;
                tasks.Add(Task.Run(() => ObjectWorkerAsync(heap, life, mySlot)));
            }

            for (int i = 0; i < scenario.SlabTasksPerNode; i++, slot++)
            {
                int mySlot = slot;
                tasks.Add(Task.Run(() => SlabWorkerAsync(heap, life, mySlot)));
            }

            if (scenario.ReaderRounds > 0)
            {
                tasks.Add(Task.Run(() => ReaderAsync(heap, life)));
            }

            await Task.WhenAll(tasks.ToArray());
            return !IsCurrent(life);
        }
        catch (Exception error) when (IsDeath(error))
        {
            Kill(life, Describe(error));
            return true;
        }
    }

    private async Task<WorkingNodeHeap> OpenAsync(int life)
    {
        int bladeLife = Oracle.BladeLife;
        var blade = _cluster.Blade;
        var loopback = blade.Connect(Id);
        _connection = loopback;
        var connection = new ObservedConnection(loopback, blade.Image.Geometry, Oracle, Id, life, _cluster.BeforeNodeVerb, _cluster.OnAcknowledged);
        var client = await BladeClient.ConnectAsync(connection, Id, _cluster.ProtocolOptions);
        client.Faults = _cluster.Scenario.ClientFaults;
        var heap = await WorkingNodeHeap.OpenAsync([client], _cluster.HeapOptions);
        var recovered = heap.Recoveries[0].OwnedSlabs.ToDictionary(s => s.SlabIndex, s => s.Span);
        Oracle.NodeOpened(Id, life, recovered, bladeLife, stillAlive: IsCurrent(life));
        _heap = heap;
        return heap;
    }

    /// <summary>Objects: allocate and write one, free one, or publish epochs.</summary>
    private async Task ObjectWorkerAsync(WorkingNodeHeap heap, int life, int slot)
    {
        var sizes = _cluster.Scenario.ObjectSizes;
        try
        {
            while (IsCurrent(life) && _operationsLeft[slot] > 0)
            {
                _operationsLeft[slot]--;
                await MaintainAsync(heap);
                switch (Random.NextInteger(6))
                {
                    case < 2 when Oracle.TryPickObject(Id, own: true, Random, out var victim, out _):
                        Oracle.ObjectFreeing(Id, victim);
                        await heap.FreeAsync(victim);
                        break;
                    case 2:
                        Stats.Publications++;
                        await heap.PublishEpochsAsync();
                        break;
                    default:
                        try
                        {
                            var ptr = await heap.AllocateAsync(sizes[Random.NextInteger(sizes.Count)]);
                            Oracle.ObjectAllocated(Id, life, ptr, SlabOf(heap, ptr));
                            await heap.WriteAsync(ptr, ptr.Packed);
                        }
                        catch (BladeOutOfMemoryException)
                        {
                            Stats.OutOfMemory++;
                        }

                        break;
                }
            }
        }
        catch (Exception error) when (IsDeath(error))
        {
            Kill(life, Describe(error));
        }
    }

    /// <summary>Slabs: acquire one from the blade directly, hold it for a few scheduling points, return it.</summary>
    private async Task SlabWorkerAsync(WorkingNodeHeap heap, int life, int slot)
    {
        var client = heap.Blades[0];
        try
        {
            while (IsCurrent(life) && _operationsLeft[slot] > 0)
            {
                _operationsLeft[slot]--;
                await MaintainAsync(heap);
                OwnedSlab slab;
                try
                {
                    slab = await client.AcquireSlabAsync(client.Rings.Count > 1 ? Random.NextInteger(client.Rings.Count) : 0);
                }
                catch (BladeOutOfMemoryException)
                {
                    Stats.OutOfMemory++;
                    continue;
                }

                Oracle.AcquisitionReturned(Id, life, slab.SlabIndex);
                for (int hold = Random.NextInteger(3); hold > 0; hold--)
                {
                    SchedulingPoint.Interleave();
                }

                await client.ReturnSlabAsync(slab.SlabIndex);
            }
        }
        catch (Exception error) when (IsDeath(error))
        {
            Kill(life, Describe(error));
        }
    }

    /// <summary>The reader: publishes epochs (a heartbeat), then reads another node's object under an epoch guard.</summary>
    private async Task ReaderAsync(WorkingNodeHeap heap, int life)
    {
        try
        {
            for (int round = 0; round < _cluster.Scenario.ReaderRounds && IsCurrent(life); round++)
            {
                Stats.Publications++;
                await heap.PublishEpochsAsync();
                if (Oracle.TryPickObject(Id, own: false, Random, out var ptr, out ulong slab))
                {
                    await ReadUnderGuardAsync(heap, ptr, slab);
                }
            }
        }
        catch (Exception error) when (IsDeath(error))
        {
            Kill(life, Describe(error));
        }
    }

    /// <summary>
    /// Takes a reference to another node's live object under an epoch guard, and keeps it across a few verbs,
    /// publishing epochs meanwhile: until the guard closes, the object's slab must not be re-acquired by anyone.
    /// </summary>
    private async Task ReadUnderGuardAsync(WorkingNodeHeap heap, RemotePtr ptr, ulong slab)
    {
        Stats.GuardedReads++;
        using var guard = heap.EnterEpoch();
        long guardId = Oracle.GuardOpened(Id);
        try
        {
            Oracle.ReferenceTaken(guardId, ptr, slab);
            // Each step spans an agent pass: the guard stays open while the blade drains, reclaims and refills.
            for (int step = 1 + Random.NextInteger(_cluster.Scenario.GuardHoldPasses); step > 0; step--)
            {
                _cluster.WaitForPassAfter(_cluster.PassesCompleted);
                if (Random.NextBoolean())
                {
                    await heap.ReadAsync<ulong>(ptr);
                }
                else
                {
                    Stats.Publications++;
                    await heap.PublishEpochsAsync();
                }
            }
        }
        finally
        {
            Oracle.GuardClosed(guardId);
        }
    }

    /// <summary>
    /// The node's maintenance: publish epochs (its heartbeat) once a third of a lease has passed since the last time,
    /// as <see cref="WorkingNodeHeap.MaintainAsync"/> does on a timer. A node that stops doing this is fenced.
    /// </summary>
    private async Task MaintainAsync(WorkingNodeHeap heap)
    {
        if (_cluster.PassesCompleted - _lastHeartbeatPass >= Math.Max(1, _cluster.Scenario.NodeLeaseTicks / 3))
        {
            _lastHeartbeatPass = _cluster.PassesCompleted;
            Stats.Publications++;
            await heap.PublishEpochsAsync();
        }
    }

    private bool IsCurrent(int life) => _alive && _life == life;

    private void Kill(int life, string reason)
    {
        if (!IsCurrent(life))
        {
            return;
        }

        _alive = false;
        Oracle.NodeDied(Id, life, reason);

        // The link goes down for good: later verbs, and the rest of a batch in progress, fail as Unreachable.
        _connection?.SetLinkUp(false);
    }

    private bool IsDeath(Exception error)
    {
        if (error is ProtocolStallException)
        {
            Stats.Stalls++;
        }

        return error is FabricException or ProtocolStallException;
    }

    private static string Describe(Exception error) => $"{error.GetType().Name}: {error.Message}";

    private static ulong SlabOf(WorkingNodeHeap heap, RemotePtr ptr)
    {
        var geometry = heap.Blades[0].Geometry;
        return (ulong)(ptr.Offset - geometry.DataOffset) / geometry.SlabSizeBytes;
    }
}
