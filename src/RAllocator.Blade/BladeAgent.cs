using RAllocator.Protocol.Layout;

namespace RAllocator.Blade;

/// <summary>
/// The blade's background loop, the only code the blade CPU runs for allocation: it keeps the ring filled with
/// free slabs (least worn first), applies acknowledgements and free requests from the nodes' areas, releases the
/// slabs of tickets that were taken and never acknowledged, advances the global epoch and reclaims freed slabs
/// whose epoch every live node has passed. It is never on a working node's critical path: a node acquires a
/// slab with FETCH_AND_ADD and READ while the agent sleeps, as long as the ring holds entries.
/// </summary>
/// <remarks>
/// Not thread-safe: one agent per image, one pass at a time (<see cref="RunOnce"/> or <see cref="RunAsync"/>).
/// See spec/protocol.md for the rules each step implements and why they are safe at every crash point.
/// </remarks>
public sealed partial class BladeAgent
{
    private readonly BladeImage _image;
    private readonly BladeAgentOptions _options;
    private readonly BladeLayout _layout;
    private readonly BladeGeometry _geometry;
    private readonly SlabState[] _states;
    private readonly uint[] _owners;
    private readonly SortedSet<(ulong Wear, ulong Slab)> _free = [];
    private readonly ulong[] _wear;
    private readonly Dictionary<ulong, ulong> _ringedSlabByTicket = [];
    private readonly Dictionary<ulong, ulong> _freedEpochBySlab = [];
    private readonly NodeLiveness[] _nodes;
    private readonly SlabRings _rings;

    // Per base slab: the span class of the slab it belongs to, and whether it is not that slab's head. Records
    // (ring entries, acknowledgements, frees) name a slab by its head; a tail never appears in one.
    private readonly byte[] _spanClassOf;
    private readonly bool[] _isTail;
    private readonly ulong[] _freeKey;
    private readonly ulong[] _filledThrough;

    // Per span ring: the free-set version at which coalescing last found no free run (-1: never).
    private readonly long[] _noRunSinceFreeSetVersion;
    private long _freeSetVersion;
    private ulong _globalEpoch;
    private BladeAgentStats _stats;

    /// <summary>
    /// Recovers the blade after a restart (clean or not) and returns its agent: applies durable acknowledgements
    /// found in the nodes' areas, voids every acquisition that was in flight (their connections died with the
    /// blade), clears the ring, and moves the sequencer past every ticket that can have been handed out.
    /// </summary>
    /// <exception cref="BladeImageException">The metadata is inconsistent; nothing is changed.</exception>
    public static BladeAgent Start(BladeImage image, BladeAgentOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (image.Mode != BladeOpenMode.ReadWrite)
        {
            throw new InvalidOperationException("The blade agent needs an image opened read-write.");
        }

        var state = image.Scan();
        state.ThrowIfInconsistent();
        var agent = new BladeAgent(image, options ?? new BladeAgentOptions(), state);
        agent.RecoverAfterRestart(state);
        return agent;
    }

    private BladeAgent(BladeImage image, BladeAgentOptions options, BladeState state)
    {
        _image = image;
        _options = options;
        _layout = image.Layout;
        _geometry = image.Geometry;
        int slabCount = (int)_geometry.SlabCount;
        _states = new SlabState[slabCount];
        _owners = new uint[slabCount];
        _wear = new ulong[slabCount];
        _spanClassOf = new byte[slabCount];
        _isTail = new bool[slabCount];
        _freeKey = new ulong[slabCount];
        _rings = _geometry.Rings;
        _filledThrough = new ulong[_rings.Count];
        _noRunSinceFreeSetVersion = Enumerable.Repeat(-1L, _rings.Count).ToArray();
        foreach (var slab in state.Slabs)
        {
            _states[slab.Index] = slab.State;
            _owners[slab.Index] = slab.Node;
            _wear[slab.Index] = slab.WearHandOuts;
            _spanClassOf[slab.Index] = (byte)System.Numerics.BitOperations.Log2(Math.Max(1u, slab.Span));
            _isTail[slab.Index] = !slab.IsHead;
            if (slab.State == SlabState.Free)
            {
                AddFree(slab.Index, slab.WearHandOuts);
            }
            else if (slab.State == SlabState.Freeing && slab.IsHead)
            {
                _freedEpochBySlab[slab.Index] = slab.FreedEpoch;
            }
        }

        _nodes = state.Nodes.Select(n => new NodeLiveness(n.Header.Heartbeat, n.Header.Incarnation)).ToArray();
        _globalEpoch = Math.Max(1, state.GlobalEpoch);
    }

    /// <summary>The agent's counters.</summary>
    public BladeAgentStats Stats => _stats;

    /// <summary>Calls of the blade's handler so far (one per pass): the blade CPU's work, counted.</summary>
    public long HandlerCalls => _stats.HandlerCalls;

    /// <summary>The global epoch.</summary>
    public ulong GlobalEpoch => _globalEpoch;

    /// <summary>While true, <see cref="RunAsync"/> skips passes (tests use it to show the critical path needs no blade CPU).</summary>
    public bool Paused { get; set; }

    /// <summary>Raised when a node's lease expires; the server fences it (revokes its registration) before its slabs are touched.</summary>
    public event Action<uint>? NodeLeaseExpired;

    /// <summary>
    /// Raised on the <see cref="RunAsync"/> loop's thread after each of its passes (not after <see cref="RunOnce"/>
    /// calls made by others): a server hangs its utilization snapshot and its CPU accounting on it.
    /// </summary>
    public event Action? PassCompleted;

    /// <summary>Raised once on the <see cref="RunAsync"/> loop's thread before its first pass (a server reads the thread's CPU time).</summary>
    public event Action? LoopStarted;

    /// <summary>Free slabs (not ringed, owned or freeing).</summary>
    public long FreeSlabCount => _free.Count;

    /// <summary>
    /// Runs passes on a dedicated thread until cancelled, pausing <see cref="BladeAgentOptions.PassInterval"/>
    /// between them. A dedicated thread, because the agent must keep the ring filled even when the process's
    /// thread pool is saturated by working-node code (as in an embedded blade).
    /// </summary>
    /// <returns>A task that completes when the loop stops, faulted if a pass threw.</returns>
    public Task RunAsync(CancellationToken cancellationToken) =>
        Task.Factory.StartNew(() => RunUntilCancelled(cancellationToken), cancellationToken, TaskCreationOptions.LongRunning, TaskScheduler.Default)
            .ContinueWith(t => t.IsCanceled ? Task.CompletedTask : t, TaskScheduler.Default).Unwrap();

    private void RunUntilCancelled(CancellationToken cancellationToken)
    {
        var interval = _options.PassInterval;
        LoopStarted?.Invoke();
        while (!cancellationToken.IsCancellationRequested)
        {
            if (!Paused)
            {
                RunOnce();
                PassCompleted?.Invoke();
            }

            if (interval >= TimeSpan.FromMilliseconds(1))
            {
                cancellationToken.WaitHandle.WaitOne(interval);
            }
            else
            {
                // Sub-millisecond pacing: sleeping would overshoot to the timer tick, so spin briefly instead.
                var until = System.Diagnostics.Stopwatch.GetTimestamp() + (long)(interval.TotalSeconds * System.Diagnostics.Stopwatch.Frequency);
                while (System.Diagnostics.Stopwatch.GetTimestamp() < until && !cancellationToken.IsCancellationRequested)
                {
                    Thread.Yield();
                }
            }
        }
    }

    /// <summary>One pass of the agent: the blade's only handler call.</summary>
    public void RunOnce()
    {
        _stats = _stats with { HandlerCalls = _stats.HandlerCalls + 1 };
        var control = _layout.Control(_image.Region);
        control.FetchAddAgentHeartbeat(1);

        // The sequencers are read before the node headers: a node that took a ticket below one had posted its
        // in-flight bit before its FETCH_AND_ADD, so the headers read next show it (see ReleaseAbandonedTickets).
        var sequencers = new ulong[_rings.Count];
        for (int ring = 0; ring < sequencers.Length; ring++)
        {
            sequencers[ring] = _image.Region.LoadUInt64(_rings[ring].SequencerOffset);
        }

        var headers = _image.ReadArray<NodeHeader>(_layout.NodeHeadersOffset, _layout.NodeHeadersCount);
        UpdateLiveness(headers);
        for (uint node = 0; node < headers.Length; node++)
        {
            if (headers[node].Incarnation != 0)
            {
                DrainAcknowledgements(node, headers[node]);
                DrainFrees(node, headers[node]);
            }
        }

        ReleaseAbandonedTickets(sequencers, headers);
        for (int ring = 0; ring < sequencers.Length; ring++)
        {
            Refill(_rings[ring], sequencers[ring]);
        }

        AdvanceEpochAndReclaim(headers);
        PublishUtilization();
    }
}
