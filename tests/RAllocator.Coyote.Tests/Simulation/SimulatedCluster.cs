using Microsoft.Coyote.Random;
using Microsoft.Coyote.Runtime;
using RAllocator.Fabric.Loopback;

namespace RAllocator.Coyote.Tests.Simulation;

/// <summary>
/// One Coyote iteration: a blade on simulated NVM with its agent running as a task, working nodes running
/// concurrent tasks on their heaps, injected crashes of both sides, then a quiesce and the final leak checks.
/// Every choice (what to allocate, what to free, when to crash, which stores a power failure keeps) comes from
/// Coyote's <see cref="Generator"/>, and every verb and every agent persist is a scheduling point, so a failing
/// iteration replays exactly from its trace.
/// </summary>
/// <remarks>
/// <para><b>Scheduling points.</b> The loopback fabric yields before each verb (<see cref="LoopbackOptions.YieldAtEachVerb"/>).
/// The agent pass is synchronous code; the test makes each of its persists a scheduling point
/// (<see cref="SchedulingPoint.Interleave"/> from <see cref="SimulatedNvm.BeforePersist"/>), so nodes' verbs interleave
/// with the agent between any two of its persist points, which is where its stores become visible and durable.</para>
/// <para><b>Blade crash.</b> At a Coyote-chosen persist of a Coyote-chosen pass (or between passes) the persist
/// throws <see cref="SimulatedPowerFailure"/> before flushing; the blade then restarts with
/// <see cref="SimulatedNvm.Crash(int)"/> under a Coyote-chosen seed, which keeps a random subset of the pending
/// stores. Every node connection dies with it and every node must reopen.</para>
/// <para><b>Node crash and fencing.</b> A node crash disposes its connection at a Coyote-chosen point (between
/// any two verbs, also inside a batch) and drops its heap; the node later reopens a heap under the same id. When
/// the agent reports a node's lease expired, the test fences that node the same way before the agent touches its
/// tickets or epochs, as a blade server must.</para>
/// </remarks>
internal sealed class SimulatedCluster
{
    private readonly SimulatedNvm _nvm;
    private readonly SimulatedNode[] _nodes;
    private bool _stopAgent;
    private bool _agentInPass;
    private bool _agentInterleaving;
    private int _agentPersistsThisPass;
    private int _powerFailureAtPersist = -1;
    private int _bladeCrashesLeft;
    private bool _quiescing;

    private SimulatedCluster(ClusterScenario scenario, ClusterStats stats)
    {
        Scenario = scenario;
        Stats = stats;
        Random = Generator.Create();
        _nvm = new SimulatedNvm(scenario.RegionBytes);
        var format = new BladeFormatOptions
        {
            MaxNodes = scenario.MaxNodes,
            RingCapacity = scenario.RingCapacity,
            AckSlotsPerNode = 4,
            FreeSlotsPerNode = 4,
            NodeLeaseTicks = scenario.NodeLeaseTicks,
        };
        Blade = EmbeddedBlade.Format(0, _nvm, BladeGeometry.MinSlabSizeBytes, format, new LoopbackOptions { YieldAtEachVerb = true });
        Oracle = new AllocatorOracle(scenario.Nodes, stats);
        ProtocolOptions = new ProtocolOptions
        {
            RingReadRetryLimit = scenario.RingReadRetryLimit,
            AreaFullRetryLimit = 40,
            Backoff = BackoffAsync,
        };
        WireAgent();

        // One pass before any node connects fills the ring (the hook is not armed yet: no scheduling point).
        Blade.Agent.RunOnce();
        _nvm.BeforePersist = OnPersist;
        _bladeCrashesLeft = scenario.BladeCrashes;
        _nodes = Enumerable.Range(0, scenario.Nodes).Select(id => new SimulatedNode(this, (uint)id)).ToArray();
    }

    public ClusterScenario Scenario { get; }

    public ClusterStats Stats { get; }

    public Generator Random { get; }

    public EmbeddedBlade Blade { get; }

    public AllocatorOracle Oracle { get; }

    public ProtocolOptions ProtocolOptions { get; }

    /// <summary>EmptySlabThreshold 0: every slab that empties goes back to the blade, so slabs change hands often.</summary>
    public HeapOptions HeapOptions { get; } = new() { EmptySlabThreshold = 0 };

    /// <summary>The body of one Coyote iteration.</summary>
    public static async Task RunAsync(ClusterScenario scenario, ClusterStats stats)
    {
        stats.Iterations++;
        var cluster = new SimulatedCluster(scenario, stats);
        await cluster.RunMainPhaseAsync();
        await cluster.QuiesceAsync();
        stats.CompletedIterations++;
    }

    private async Task RunMainPhaseAsync()
    {
        var agent = Task.Run(AgentLoopAsync);
        var actors = new List<Task>();
        foreach (var node in _nodes)
        {
            actors.Add(Task.Run(node.SuperviseAsync));
            if (Scenario.NodeCrashesPerNode > 0)
            {
                actors.Add(Task.Run(() => InjectNodeCrashesAsync(node)));
            }
        }

        await Task.WhenAll(actors.ToArray());
        _stopAgent = true;
        await agent;
    }

    /// <summary>The blade CPU: one agent pass, then a scheduling point, for a bounded number of passes.</summary>
    private async Task AgentLoopAsync()
    {
        for (int pass = 0; pass < Scenario.MaxAgentPasses && !_stopAgent; pass++)
        {
            bool crashThisPass = _bladeCrashesLeft > 0 && Random.NextInteger(Scenario.BladeCrashOneInPasses) == 0;
            _powerFailureAtPersist = crashThisPass ? Random.NextInteger(24) : -1;
            _agentPersistsThisPass = 0;
            bool failed = false;
            _agentInPass = true;
            try
            {
                Blade.Agent.RunOnce();
            }
            catch (SimulatedPowerFailure)
            {
                failed = true;
            }
            finally
            {
                _agentInPass = false;
            }

            if (crashThisPass)
            {
                _bladeCrashesLeft--;
                CrashBlade(failed ? $"agent pass {pass}, before persist {_powerFailureAtPersist} of the pass was flushed" : $"after agent pass {pass}");
            }

            await Task.Yield();
        }
    }

    /// <summary>Every agent persist is a scheduling point, and may be where the blade loses power.</summary>
    private void OnPersist(long persistIndex)
    {
        // Only the agent's own persists: node verbs that run while the agent is interleaved out are left alone.
        if (!_agentInPass || _agentInterleaving)
        {
            return;
        }

        _agentInterleaving = true;
        try
        {
            SchedulingPoint.Interleave();
        }
        finally
        {
            _agentInterleaving = false;
        }

        if (_agentPersistsThisPass++ == _powerFailureAtPersist)
        {
            throw new SimulatedPowerFailure(persistIndex);
        }
    }

    private void CrashBlade(string where)
    {
        int seed = Random.NextInteger(int.MaxValue);
        Oracle.BladeCrashed(where, seed);
        foreach (var node in _nodes)
        {
            node.OnBladeCrashed();
        }

        Blade.Restart(region => ((SimulatedNvm)region).Crash(seed));
        WireAgent();
    }

    private void WireAgent()
    {
        var agent = Blade.Agent;
        agent.Faults = Scenario.AgentFaults;
        agent.NodeLeaseExpired += node =>
        {
            // The blade server fences a node whose lease expired before its tickets and epochs are released.
            if (node < _nodes.Length)
            {
                _nodes[node].Fence();
            }
        };
    }

    private async Task InjectNodeCrashesAsync(SimulatedNode node)
    {
        for (int crash = 0; crash < Scenario.NodeCrashesPerNode; crash++)
        {
            int delay = Random.NextInteger(Scenario.NodeCrashWindow);
            for (int step = 0; step < delay; step++)
            {
                await Task.Yield();
            }

            node.Crash(stayDown: Scenario.CrashedNodesMayStayDown && Random.NextBoolean());
        }
    }

    /// <summary>Retries yield; during the quiesce nothing else runs, so a retry also runs an agent pass.</summary>
    private async Task BackoffAsync(int attempt, CancellationToken cancellationToken)
    {
        if (_quiescing)
        {
            Blade.Agent.RunOnce();
        }

        await Task.Yield();
    }

    /// <summary>
    /// The final quiesce. First every live node frees everything while crashed nodes stay down until their leases
    /// expire: every slab must be free, in the ring, or owned by a crashed node that held it. Then every crashed node
    /// restarts (durable ownership is checked again), gets its slabs back and returns them: every slab must be free
    /// or in the ring.
    /// </summary>
    private async Task QuiesceAsync()
    {
        _quiescing = true;
        foreach (var node in _nodes.Where(n => n.IsAlive))
        {
            await node.ReturnEverythingAsync();
        }

        await RunQuiescentPassesAsync();
        Oracle.CheckNoPermanentLeak(Blade.Image.Scan(), "after the quiesce with crashed nodes still down", allowOwnedByDeadNodes: true);

        foreach (var node in _nodes.Where(n => !n.IsAlive))
        {
            await node.RestartForQuiesceAsync();
            await node.ReturnEverythingAsync();
        }

        await RunQuiescentPassesAsync();
        Oracle.CheckNoPermanentLeak(Blade.Image.Scan(), "after every node restarted and returned everything", allowOwnedByDeadNodes: false);
    }

    /// <summary>Enough passes for every lease of a node that is down to expire and every freed slab's epoch to pass.</summary>
    private async Task RunQuiescentPassesAsync()
    {
        for (int pass = 0; pass < Scenario.NodeLeaseTicks + 6; pass++)
        {
            foreach (var node in _nodes.Where(n => n.IsAlive))
            {
                await node.PublishEpochsAsync();
            }

            Blade.Agent.RunOnce();
        }
    }
}
