using Microsoft.Coyote.Random;
using Microsoft.Coyote.Runtime;
using RAllocator.Fabric.Loopback;

namespace RAllocator.Coyote.Tests.Simulation;

/// <summary>
/// One Coyote iteration: a blade on simulated NVM with its agent running as a task, working nodes running
/// concurrent tasks on their heaps, injected crashes of both sides, then a quiesce and the final leak checks.
/// Every choice (what to allocate, what to free, where to crash, which stores a power failure keeps) comes from
/// Coyote's <see cref="Generator"/>, and every verb and every agent persist is a scheduling point, so a failing
/// iteration replays exactly from its trace.
/// </summary>
/// <remarks>
/// <para><b>Scheduling points.</b> Before every verb a node issues (<see cref="BeforeNodeVerb"/>), at every PERSIST
/// inside a node's batch, and at every persist of an agent pass (in the passes Coyote chooses to interleave): the
/// agent's stores become visible to nodes as it makes them, and durable at its persists, so nodes' verbs interleave
/// with the agent between any two of its persist points. Verbs run synchronously
/// (<see cref="LoopbackOptions.YieldAtEachVerb"/> off) and the points are <see cref="SchedulingPoint.Interleave"/>:
/// the same interleavings as a <c>Task.Yield</c> per verb, at a tenth of the cost per step under Coyote 1.7.</para>
/// <para><b>Blade crash.</b> At a Coyote-chosen persist of a Coyote-chosen pass (or right after the pass) the persist
/// throws <see cref="SimulatedPowerFailure"/> before flushing; the blade then restarts with
/// <see cref="SimulatedNvm.Crash(int)"/> under a Coyote-chosen seed, which keeps a random subset of the pending
/// stores. Every node connection dies with it and every node must reopen.</para>
/// <para><b>Node crash and fencing.</b> A node crash takes the node's link down for good at a Coyote-chosen point
/// (before any of its verbs, or at a PERSIST inside one of its batches, so a batch can be cut short) and drops its
/// heap; the node later reopens a heap under the same id. When the agent reports a node's lease expired, the test
/// fences that node the same way before the agent touches its tickets or epochs, as a blade server must.</para>
/// </remarks>
internal sealed class SimulatedCluster
{
    // RALLOCATOR_COYOTE_DEBUG=1: every agent pass records the slab states it changed in the event history.
    private static readonly bool s_debug = Environment.GetEnvironmentVariable("RALLOCATOR_COYOTE_DEBUG") == "1";

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<(long RegionBytes, BladeFormatOptions Format), byte[]> s_formattedImages = new();

    private readonly SimulatedNvm _nvm;
    private readonly SimulatedNode[] _nodes;
    private readonly List<(long AtVerb, int Node)> _nodeCrashes = [];
    private long _verbs;
    private bool _stopAgent;
    private bool _agentInPass;
    private bool _agentInterleaving;
    private bool _interleaveThisPass;
    private int _agentPersistsThisPass;
    private int _powerFailureAtPersist = -1;
    private bool _powerFailureAfterAcknowledgement;
    private bool _acknowledgedDuringPass;
    private int _bladeCrashesLeft;
    private bool _quiescing;
    private bool _restarting;

    private SimulatedCluster(ClusterScenario scenario, ClusterStats stats)
    {
        Scenario = scenario;
        Stats = stats;
        Random = Generator.Create();
        var format = new BladeFormatOptions
        {
            MaxNodes = scenario.MaxNodes,
            RingCapacity = scenario.RingCapacities[Random.NextInteger(scenario.RingCapacities.Count)],
            AckSlotsPerNode = 4,
            FreeSlotsPerNode = 4,
            NodeLeaseTicks = scenario.NodeLeaseTicks,
            MaxSlabSpan = scenario.MaxSlabSpan,
            SpanRingCapacity = 1,
        };

        // A freshly formatted image, formatted once per geometry: opening a copy is a fraction of the cost of a format.
        _nvm = SimulatedNvm.FromDurableImage(s_formattedImages.GetOrAdd((scenario.RegionBytes, format), key =>
        {
            using var region = new SimulatedNvm(key.RegionBytes);
            BladeImage.Format(region, BladeGeometry.MinSlabSizeBytes, key.Format, bladeUid: 1);
            return region.DurableImageCopy();
        }));
        Blade = EmbeddedBlade.Open(0, _nvm, new LoopbackOptions { YieldAtEachVerb = false });
        Oracle = new AllocatorOracle(scenario.Nodes, stats, DescribeBlade);
        ProtocolOptions = new ProtocolOptions
        {
            RingReadRetryLimit = scenario.RingReadRetryLimit,
            AreaFullRetryLimit = scenario.RingReadRetryLimit,
            Backoff = BackoffAsync,
        };
        WireAgent();

        // One pass before any node connects fills the ring (the hook is not installed yet: no scheduling point).
        Blade.Agent.RunOnce();
        _nvm.BeforePersist = OnPersist;
        _bladeCrashesLeft = scenario.BladeCrashes;
        _nodes = Enumerable.Range(0, scenario.Nodes).Select(id => new SimulatedNode(this, (uint)id)).ToArray();
        for (int node = 0; node < scenario.Nodes; node++)
        {
            for (int crash = 0; crash < scenario.NodeCrashesPerNode; crash++)
            {
                _nodeCrashes.Add((Random.NextInteger(scenario.NodeCrashWindow), node));
            }
        }
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

    /// <summary>
    /// The scheduling point before every verb a node issues (called by <see cref="ObservedConnection"/>): other
    /// nodes and the agent may run between any two verbs. It is also where injected node crashes land.
    /// </summary>
    public void BeforeNodeVerb()
    {
        Stats.Verbs++;
        SchedulingPoint.Interleave();
        CrashNodesDue();
    }

    private async Task RunMainPhaseAsync()
    {
        var agent = Task.Run(AgentLoop);
        NodesWorking = _nodes.Length;
        await Task.WhenAll(_nodes.Select(node => Task.Run(node.SuperviseAsync)).ToArray());
        _stopAgent = true;
        await agent;
    }

    /// <summary>
    /// The blade CPU: one agent pass, then a scheduling point, for a bounded number of passes. Coyote chooses which
    /// passes nodes may interleave with (at each of its persists), and in which pass the blade loses power.
    /// </summary>
    private void AgentLoop()
    {
        for (int pass = 0; pass < Scenario.MaxAgentPasses && !_stopAgent; pass++)
        {
            // A blade crash, once chosen, lands at a persist of this pass, right after it, or (armed until it fires)
            // at the first agent persist after a node completed an acquisition while the agent was interleaved out.
            var crashMode = PowerFailure.None;
            if (_bladeCrashesLeft > 0 && !_powerFailureAfterAcknowledgement && Random.NextInteger(Scenario.BladeCrashOneInPasses) == 0)
            {
                crashMode = (PowerFailure)Random.NextInteger(3);
                _powerFailureAfterAcknowledgement = crashMode == PowerFailure.AfterAcknowledgement;
            }

            bool crashThisPass = crashMode is PowerFailure.AtPersist or PowerFailure.AfterPass;
            _powerFailureAtPersist = crashMode == PowerFailure.AtPersist ? Random.NextInteger(24) : -1;
            _acknowledgedDuringPass = false;
            _interleaveThisPass = _powerFailureAfterAcknowledgement || Random.NextInteger(3) == 0;
            _agentPersistsThisPass = 0;
            Stats.AgentPasses++;
            bool failed = false;
            var before = s_debug ? SlabStates() : null;
            _agentInPass = true;
            try
            {
                Blade.Agent.RunOnce();
                if (before is not null)
                {
                    var after = SlabStates();
                    var changes = Enumerable.Range(0, after.Length).Where(i => after[i] != before[i]).Select(i => $"{i}:{before[i]}->{after[i]}");
                    Oracle.Record($"agent pass {pass}: {string.Join(" ", changes)} {Blade.Agent.Stats}");
                }
            }
            catch (SimulatedPowerFailure)
            {
                failed = true;
            }
            finally
            {
                _agentInPass = false;
            }

            if (!failed)
            {
                Oracle.CheckOffersHoldNothingHeld(OfferedSlabs());
            }

            if (crashThisPass || failed)
            {
                _bladeCrashesLeft--;
                _powerFailureAfterAcknowledgement = false;
                CrashBlade(failed ? $"agent pass {pass}, before persist {_agentPersistsThisPass - 1} of the pass was flushed" : $"after agent pass {pass}");
            }

            PassesCompleted++;

            // The loop's scheduling point (RunOnce, then yield).
            SchedulingPoint.Interleave();
        }

        AgentStopped = true;
    }

    /// <summary>
    /// Every slab the rings offer: entries for tickets nobody has taken yet (at or above the ring's sequencer and
    /// below its fill mark). Read straight from the NVM, so no scheduling point.
    /// </summary>
    private IEnumerable<(ulong Head, uint Span, ulong Ticket)> OfferedSlabs()
    {
        var region = Blade.Image.Region;
        foreach (var ring in Blade.Image.Geometry.Rings.All)
        {
            ulong sequencer = region.LoadUInt64(ring.SequencerOffset);
            ulong filled = region.LoadUInt64(ring.FillMarkOffset);
            for (ulong ticket = sequencer; ticket < filled && ticket < sequencer + ring.Capacity; ticket++)
            {
                var entry = RingEntryWord.Unpack(region.LoadUInt64(ring.EntryOffset(ticket)));
                if (entry.IsFor(ticket) && entry.Kind == RingEntryKind.Slab)
                {
                    yield return (entry.SlabIndex, ring.Span, ticket);
                }
            }
        }
    }

    /// <summary>Agent passes completed in the main phase.</summary>
    public long PassesCompleted { get; private set; }

    /// <summary>Whether the agent loop has ended.</summary>
    public bool AgentStopped { get; private set; }

    /// <summary>Nodes whose workers are still running.</summary>
    public int NodesWorking { get; set; }

    /// <summary>Spins (one scheduling point each, bounded) until the agent completed a pass after <paramref name="passesCompleted"/>.</summary>
    public void WaitForPassAfter(long passesCompleted)
    {
        for (int spin = 0; spin < 256 && !AgentStopped && PassesCompleted <= passesCompleted; spin++)
        {
            SchedulingPoint.Interleave();
        }
    }

    /// <summary>Every persist may be a scheduling point, and an agent persist may be where the blade loses power.</summary>
    private void OnPersist(long persistIndex)
    {
        if (_restarting || _quiescing)
        {
            return;
        }

        if (!_agentInPass || _agentInterleaving)
        {
            // A node's PERSIST, inside one of its batches: a scheduling point and a crash point between its verbs.
            SchedulingPoint.Interleave();
            CrashNodesDue();
            return;
        }

        if (_interleaveThisPass)
        {
            _agentInterleaving = true;
            Stats.AgentInterleaves++;
            try
            {
                SchedulingPoint.Interleave();
            }
            finally
            {
                _agentInterleaving = false;
            }
        }

        if (_agentPersistsThisPass++ == _powerFailureAtPersist || (_powerFailureAfterAcknowledgement && _acknowledgedDuringPass))
        {
            throw new SimulatedPowerFailure(persistIndex);
        }
    }

    /// <summary>A node's acquisition completed (its acknowledgement batch executed).</summary>
    public void OnAcknowledged()
    {
        if (_agentInPass)
        {
            _acknowledgedDuringPass = true;
        }
    }

    /// <summary>Crashes a node whose Coyote-chosen crash point (a count of verbs) has come, once it is alive.</summary>
    private void CrashNodesDue()
    {
        if (_quiescing)
        {
            return;
        }

        _verbs++;
        for (int i = 0; i < _nodeCrashes.Count; i++)
        {
            var (atVerb, node) = _nodeCrashes[i];
            if (_verbs >= atVerb && _nodes[node].IsAlive)
            {
                _nodeCrashes.RemoveAt(i);
                _nodes[node].Crash(stayDown: Scenario.CrashedNodesMayStayDown && Random.NextBoolean());
                return;
            }
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

        _restarting = true;
        try
        {
            Blade.Restart(region => ((SimulatedNvm)region).Crash(seed));
        }
        finally
        {
            _restarting = false;
        }

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

    /// <summary>A retry is a scheduling point; during the quiesce nothing else runs, so a retry also runs an agent pass.</summary>
    private async Task BackoffAsync(int attempt, CancellationToken cancellationToken)
    {
        Stats.Backoffs++;
        if (_quiescing)
        {
            await RunQuiescentPassesAsync(1);
        }
        else
        {
            SchedulingPoint.Interleave();
        }
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

        // Passes for the leases of the nodes that are down to expire, then for the freed slabs' epochs to pass.
        bool someoneDown = _nodes.Any(n => !n.IsAlive);
        await RunQuiescentPassesAsync((someoneDown ? (int)Scenario.NodeLeaseTicks : 0) + 4);
        Oracle.CheckNoPermanentLeak(Blade.Image.Scan(), "after the quiesce with crashed nodes still down", allowOwnedByDeadNodes: true);

        if (someoneDown)
        {
            foreach (var node in _nodes.Where(n => !n.IsAlive))
            {
                await node.RestartForQuiesceAsync();
                await node.ReturnEverythingAsync();
            }

            await RunQuiescentPassesAsync(4);
        }

        Oracle.CheckNoPermanentLeak(Blade.Image.Scan(), "after every node restarted and returned everything", allowOwnedByDeadNodes: false);
    }

    /// <summary>Agent passes, each after every live node beat its heartbeat, so only the nodes that are down expire.</summary>
    private async Task RunQuiescentPassesAsync(int passes)
    {
        for (int pass = 0; pass < passes; pass++)
        {
            foreach (var node in _nodes.Where(n => n.IsAlive))
            {
                await node.PublishEpochsAsync();
            }

            Blade.Agent.RunOnce();
        }
    }

    private string[] SlabStates() => Blade.Image.Scan().Slabs.Select(s => s.State switch
    {
        SlabState.Free => ".",
        SlabState.Ringed => $"R{s.Generation}",
        SlabState.Owned => $"O{s.Node}",
        _ => $"F{s.Node}",
    }).ToArray();

    /// <summary>The blade's node areas (raw slots too) and the agent's counters, for failure reports.</summary>
    private string DescribeBlade()
    {
        var image = Blade.Image;
        var state = image.Scan();
        var geometry = image.Geometry;
        var acks = image.ReadArray<AckRecord>(image.Layout.AckSlotsOffset, image.Layout.AckSlotsCount);
        var frees = image.ReadArray<FreeRecord>(image.Layout.FreeSlotsOffset, image.Layout.FreeSlotsCount);
        var nodes = state.Nodes.Where(n => n.Registered).Select(n =>
        {
            var ackSlots = Enumerable.Range(0, (int)geometry.AckSlotsPerNode).Select(i => acks[(n.Node * geometry.AckSlotsPerNode) + i])
                .Select(a => $"#{SequencedSlabWord.Unpack(a.Word).Sequence}:{SequencedSlabWord.Unpack(a.Word).SlabIndex}/t{a.Ticket}");
            var freeSlots = Enumerable.Range(0, (int)geometry.FreeSlotsPerNode).Select(i => frees[(n.Node * geometry.FreeSlotsPerNode) + i])
                .Select(f => $"#{SequencedSlabWord.Unpack(f.Word).Sequence}:{SequencedSlabWord.Unpack(f.Word).SlabIndex}");
            return $"node {n.Node}: incarnation {n.Header.Incarnation}, acks applied {n.Header.AcksApplied} (slots {string.Join(" ", ackSlots)}), " +
                $"frees applied {n.Header.FreesApplied} (slots {string.Join(" ", freeSlots)})";
        });
        var slabs = state.Slabs.Select(s => s.State switch
        {
            SlabState.Free => ".",
            SlabState.Ringed => $"R{s.Generation}",
            SlabState.Owned => $"O{s.Node}",
            _ => $"F{s.Node}",
        });
        return $"sequencer {state.Sequencer}, epoch {state.GlobalEpoch}, slabs [{string.Join(" ", slabs)}]; {string.Join("; ", nodes)}; agent {Blade.Agent.Stats}";
    }

    /// <summary>Where a blade crash lands, once Coyote has chosen to crash the blade.</summary>
    private enum PowerFailure
    {
        /// <summary>No crash chosen in this pass.</summary>
        None = -1,

        /// <summary>Right after the pass.</summary>
        AfterPass = 0,

        /// <summary>At a Coyote-chosen persist of the pass (before it flushes), or after the pass if it has fewer.</summary>
        AtPersist = 1,

        /// <summary>At the first agent persist, in this pass or a later one, after a node completed an acquisition while the agent was interleaved out.</summary>
        AfterAcknowledgement = 2,
    }
}
