namespace RAllocator.Coyote.Tests.Simulation;

/// <summary>
/// A working node: a supervisor that opens a heap (registering a new incarnation and recovering the node's slabs),
/// runs the node's concurrent tasks on it, and opens a new heap under the same id after each death. Each heap is
/// one "life"; a life dies when the test crashes it, the blade fences it, or the blade crashes.
/// </summary>
/// <remarks>
/// Tasks per life: object workers (allocate, write, free objects through the heap), slab workers (acquire a slab
/// from the blade directly and return it), and one epoch task that publishes epochs (the node's heartbeat) and,
/// as a reader, takes references into other nodes' objects under <see cref="WorkingNodeHeap.EnterEpoch"/>.
/// </remarks>
internal sealed class SimulatedNode
{
    private readonly SimulatedCluster _cluster;
    private readonly int[] _operationsLeft;
    private int _life;
    private bool _alive;
    private bool _stayDown;
    private int _livesLeft;
    private int _workersRunning;
    private RAllocator.Fabric.Loopback.LoopbackConnection? _connection;
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

    public async Task SuperviseAsync()
    {
        while (!_stayDown && _livesLeft-- > 0)
        {
            if (!await RunLifeAsync())
            {
                return;
            }
        }
    }

    /// <summary>Crash injected by the test (no-op if this node is already down).</summary>
    public void Crash(bool stayDown)
    {
        if (!_alive)
        {
            return;
        }

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
        Microsoft.Coyote.Specifications.Specification.Assert(stillHeld.Count == 0,
            $"{Invariant.NoPermanentLeak} violated: node {Id} holds slab(s) [{string.Join(", ", stillHeld.Order())}] that its heap does not know of after freeing everything.");
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

            _workersRunning = tasks.Count;
            tasks.Add(Task.Run(() => EpochWorkerAsync(heap, life)));
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
        var connection = new ObservedConnection(loopback, blade.Image.Geometry, Oracle, Id, life);
        var client = await BladeClient.ConnectAsync(connection, Id, _cluster.ProtocolOptions);
        client.Faults = _cluster.Scenario.ClientFaults;
        var heap = await WorkingNodeHeap.OpenAsync([client], _cluster.HeapOptions);
        var recovered = heap.Recoveries[0].OwnedSlabs.Select(s => s.SlabIndex).ToArray();
        Oracle.NodeOpened(Id, life, recovered, bladeLife, stillAlive: IsCurrent(life));
        _heap = heap;
        return heap;
    }

    private async Task ObjectWorkerAsync(WorkingNodeHeap heap, int life, int slot)
    {
        var random = _cluster.Random;
        var sizes = _cluster.Scenario.ObjectSizes;
        try
        {
            while (IsCurrent(life) && _operationsLeft[slot] > 0)
            {
                _operationsLeft[slot]--;
                if (random.NextBoolean() && Oracle.TryPickObject(Id, own: true, random, out var victim, out _))
                {
                    Oracle.ObjectFreeing(Id, victim);
                    await heap.FreeAsync(victim);
                    continue;
                }

                try
                {
                    var ptr = await heap.AllocateAsync(sizes[random.NextInteger(sizes.Count)]);
                    Oracle.ObjectAllocated(Id, life, ptr, SlabOf(heap, ptr));
                    await heap.WriteAsync(ptr, ptr.Packed);
                }
                catch (BladeOutOfMemoryException)
                {
                    Stats.OutOfMemory++;
                }
            }
        }
        catch (Exception error) when (IsDeath(error))
        {
            Kill(life, Describe(error));
        }
        finally
        {
            _workersRunning--;
        }
    }

    private async Task SlabWorkerAsync(WorkingNodeHeap heap, int life, int slot)
    {
        var random = _cluster.Random;
        var client = heap.Blades[0];
        try
        {
            while (IsCurrent(life) && _operationsLeft[slot] > 0)
            {
                _operationsLeft[slot]--;
                OwnedSlab slab;
                try
                {
                    slab = await client.AcquireSlabAsync();
                }
                catch (BladeOutOfMemoryException)
                {
                    Stats.OutOfMemory++;
                    continue;
                }

                Oracle.AcquisitionReturned(Id, life, slab.SlabIndex);
                for (int hold = random.NextInteger(3); hold > 0; hold--)
                {
                    await Task.Yield();
                }

                await client.ReturnSlabAsync(slab.SlabIndex);
            }
        }
        catch (Exception error) when (IsDeath(error))
        {
            Kill(life, Describe(error));
        }
        finally
        {
            _workersRunning--;
        }
    }

    /// <summary>The node's heartbeat (epoch publication), and a reader of other nodes' objects under epoch guards.</summary>
    private async Task EpochWorkerAsync(WorkingNodeHeap heap, int life)
    {
        var random = _cluster.Random;
        try
        {
            while (IsCurrent(life) && _workersRunning > 0)
            {
                await heap.PublishEpochsAsync();
                if (_cluster.Scenario.Readers && random.NextBoolean())
                {
                    await ReadUnderGuardAsync(heap, random);
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
    private async Task ReadUnderGuardAsync(WorkingNodeHeap heap, Microsoft.Coyote.Random.Generator random)
    {
        if (!Oracle.TryPickObject(Id, own: false, random, out var ptr, out ulong slab))
        {
            return;
        }

        using var guard = heap.EnterEpoch();
        long guardId = Oracle.GuardOpened(Id);
        try
        {
            Oracle.ReferenceTaken(guardId, ptr, slab);
            for (int step = 1 + random.NextInteger(3); step > 0; step--)
            {
                if (random.NextBoolean())
                {
                    await heap.ReadAsync<ulong>(ptr);
                }
                else
                {
                    await heap.PublishEpochsAsync();
                }
            }
        }
        finally
        {
            Oracle.GuardClosed(guardId);
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
