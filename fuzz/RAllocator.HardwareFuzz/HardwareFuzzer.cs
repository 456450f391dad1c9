using System.Diagnostics;
using RAllocator.Blade;
using RAllocator.Fabric;
using RAllocator.Node;
using RAllocator.Protocol;

namespace RAllocator.HardwareFuzz;

/// <summary>How long and how hard to fuzz.</summary>
/// <param name="Seed">Every choice derives from it: the same seed on the same fabric replays the same run.</param>
/// <param name="Duration">Stop starting new steps after this long (checked between steps).</param>
/// <param name="Nodes">Working nodes (at most the blade's MaxNodes).</param>
/// <param name="MaxSteps">Stop after this many steps whatever the time.</param>
public sealed record HardwareFuzzOptions(int Seed, TimeSpan Duration, int Nodes = 3, long MaxSteps = long.MaxValue);

/// <summary>What a run did and every invariant violation it found (empty when it passed).</summary>
public sealed record HardwareFuzzReport(
    string Fabric,
    int Seed,
    long Steps,
    long Allocations,
    long Frees,
    long OutOfMemory,
    long EpochPublishes,
    long AgentPasses,
    long NodeCrashes,
    long BladeRestarts,
    long InvariantChecks,
    TimeSpan Elapsed,
    IReadOnlyList<string> Violations)
{
    /// <summary>True when no invariant was violated and no step failed unexpectedly.</summary>
    public bool Passed => Violations.Count == 0;

    /// <summary>A human-readable report; the first line says pass/fail and how to replay.</summary>
    public override string ToString()
    {
        var text = new System.Text.StringBuilder();
        text.AppendLine(Passed
            ? $"PASS: hardware fuzz on {Fabric}, seed {Seed}: {Steps} steps, {InvariantChecks} invariant checks, no violation"
            : $"FAIL: hardware fuzz on {Fabric}, seed {Seed}: {Violations.Count} violation(s); replay with --seed {Seed}");
        text.AppendLine($"  steps {Steps} in {Elapsed.TotalSeconds:F1} s: allocations {Allocations}, frees {Frees}, out-of-memory {OutOfMemory}, "
            + $"epoch publishes {EpochPublishes}, agent passes {AgentPasses}, node crashes {NodeCrashes}, blade restarts {BladeRestarts}");
        foreach (string violation in Violations.Take(20))
        {
            text.AppendLine("  violation: " + violation);
        }

        return text.ToString();
    }
}

/// <summary>
/// Runs random sequences of protocol operations (allocate, free, publish epoch, agent pass) on several working nodes,
/// with injected crashes (a node abandons its state and re-registers; the blade loses power and restarts on its
/// image), and after every recovery checks the invariants of DESIGN.md on the blade's image:
/// <list type="bullet">
/// <item>the image is consistent (<see cref="BladeState.Problems"/> is empty);</item>
/// <item>no slab is durably owned by two nodes;</item>
/// <item>every acknowledged ownership is kept: a node re-registering gets back exactly the slabs it owned, and every
/// slab a node holds is recorded as its own;</item>
/// <item>no leak: every slab the image records as owned belongs to a live node that knows it.</item>
/// </list>
/// Single-threaded and seeded: agent passes run only where the driver (or the protocol's backoff) asks, so a seed
/// replays exactly on the loopback fabric.
/// </summary>
public static class HardwareFuzzer
{
    private const int BladeId = 0;
    private static readonly int[] s_sizes = [16, 48, 200, 1000, 4000, 16000];

    /// <summary>Fuzzes <paramref name="fabric"/> until the options' duration or step limit; never throws for a violation.</summary>
    public static async Task<HardwareFuzzReport> RunAsync(IFabricUnderTest fabric, HardwareFuzzOptions options, TextWriter? log = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(fabric);
        ArgumentNullException.ThrowIfNull(options);
        var run = new Run(fabric, options, log);
        var clock = Stopwatch.StartNew();
        try
        {
            await run.ExecuteAsync(clock, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception unexpected) when (unexpected is not OperationCanceledException)
        {
            run.Violation($"step {run.Steps} failed unexpectedly: {unexpected.GetType().Name}: {unexpected.Message}");
        }

        return run.Report(clock.Elapsed);
    }

    private sealed class Run(IFabricUnderTest fabric, HardwareFuzzOptions options, TextWriter? log)
    {
        private readonly Random _random = new(options.Seed);
        private readonly List<string> _violations = [];
        private readonly Node[] _nodes = new Node[options.Nodes];
        private long _allocations;
        private long _frees;
        private long _outOfMemory;
        private long _epochPublishes;
        private long _agentPasses;
        private long _nodeCrashes;
        private long _bladeRestarts;
        private long _checks;

        public long Steps { get; private set; }

        public async Task ExecuteAsync(Stopwatch clock, CancellationToken cancellationToken)
        {
            for (int i = 0; i < _nodes.Length; i++)
            {
                _nodes[i] = new Node((uint)i);
                await OpenAsync(_nodes[i], cancellationToken).ConfigureAwait(false);
            }

            Check("after start");
            while (clock.Elapsed < options.Duration && Steps < options.MaxSteps && _violations.Count == 0)
            {
                cancellationToken.ThrowIfCancellationRequested();
                Steps++;
                var node = _nodes[_random.Next(_nodes.Length)];
                int dice = _random.Next(100);
                if (dice < 40)
                {
                    await AllocateAsync(node, cancellationToken).ConfigureAwait(false);
                }
                else if (dice < 65)
                {
                    await FreeAsync(node, cancellationToken).ConfigureAwait(false);
                }
                else if (dice < 77)
                {
                    await node.Heap!.PublishEpochsAsync(cancellationToken).ConfigureAwait(false);
                    _epochPublishes++;
                }
                else if (dice < 90)
                {
                    AgentPass();
                }
                else if (dice < 97)
                {
                    await CrashNodeAsync(node, cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    await RestartBladeAsync(cancellationToken).ConfigureAwait(false);
                }

                if (Steps % 100 == 0)
                {
                    AgentPass();
                    AgentPass();
                    Check($"periodic check at step {Steps}");
                }
            }

            AgentPass();
            AgentPass();
            Check("at the end");
        }

        public void Violation(string text)
        {
            _violations.Add(text);
            log?.WriteLine("violation: " + text);
        }

        public HardwareFuzzReport Report(TimeSpan elapsed) => new(
            fabric.Name, options.Seed, Steps, _allocations, _frees, _outOfMemory, _epochPublishes, _agentPasses, _nodeCrashes, _bladeRestarts, _checks, elapsed, _violations);

        private async Task AllocateAsync(Node node, CancellationToken cancellationToken)
        {
            int size = s_sizes[_random.Next(s_sizes.Length)];
            try
            {
                var ptr = await node.Heap!.AllocateAsync(size, cancellationToken).ConfigureAwait(false);
                if (node.Live.Contains(ptr) || _nodes.Any(other => other != node && other.Live.Contains(ptr)))
                {
                    Violation($"node {node.Id} was handed {ptr}, an object that is already live (double allocation)");
                }

                node.Live.Add(ptr);
                _allocations++;
            }
            catch (BladeOutOfMemoryException)
            {
                // The blade is full: a legal answer. Freeing makes room again.
                _outOfMemory++;
            }
        }

        private async Task FreeAsync(Node node, CancellationToken cancellationToken)
        {
            if (node.Live.Count == 0)
            {
                return;
            }

            int index = _random.Next(node.Live.Count);
            var ptr = node.Live[index];
            node.Live.RemoveAt(index);
            await node.Heap!.FreeAsync(ptr, cancellationToken).ConfigureAwait(false);
            _frees++;
        }

        private void AgentPass()
        {
            fabric.RunAgentPass();
            _agentPasses++;
        }

        private async Task CrashNodeAsync(Node node, CancellationToken cancellationToken)
        {
            // Abandon everything the node holds in memory; only the blade's image and the application's own record
            // of its live objects (which it would keep in NVM next to its data) survive.
            var owned = node.Heap!.OwnedSlabIndexes(BladeId).ToHashSet();
            await node.Connection!.DisposeAsync().ConfigureAwait(false);
            node.Heap = null;
            _nodeCrashes++;
            await OpenAsync(node, cancellationToken).ConfigureAwait(false);
            ExpectRecovered(node, owned, "after its crash");
            await CompleteRecoveryAsync(node, "after its crash", cancellationToken).ConfigureAwait(false);
            AgentPass();
            AgentPass();
            Check($"after node {node.Id} crashed and re-registered (step {Steps})");
        }

        private async Task RestartBladeAsync(CancellationToken cancellationToken)
        {
            var owned = _nodes.ToDictionary(n => n.Id, n => n.Heap!.OwnedSlabIndexes(BladeId).ToHashSet());
            await fabric.RestartBladeAsync(_random.Next(), cancellationToken).ConfigureAwait(false);
            _bladeRestarts++;
            foreach (var node in _nodes)
            {
                await node.Connection!.DisposeAsync().ConfigureAwait(false);
                node.Heap = null;
                await OpenAsync(node, cancellationToken).ConfigureAwait(false);
                ExpectRecovered(node, owned[node.Id], "after the blade restarted");
                await CompleteRecoveryAsync(node, "after the blade restarted", cancellationToken).ConfigureAwait(false);
            }

            AgentPass();
            AgentPass();
            Check($"after the blade lost power and restarted (step {Steps})");
        }

        /// <summary>Hands the node's live objects back; an object outside every recovered slab is a lost ownership.</summary>
        private async Task CompleteRecoveryAsync(Node node, string when, CancellationToken cancellationToken)
        {
            var recovered = node.Heap!.Recoveries[BladeId].OwnedSlabs;
            var orphans = node.Live.Where(ptr => !recovered.Any(slab => ptr.Offset >= slab.Offset && ptr.Offset < slab.Offset + (long)node.Heap.Blades[BladeId].Geometry.SlabSizeBytes)).ToList();
            foreach (var orphan in orphans.Take(5))
            {
                Violation($"node {node.Id}'s live object {orphan} is in no slab it got back {when} (acknowledged ownership lost)");
            }

            node.Live.RemoveAll(orphans.Contains);
            try
            {
                await node.Heap.CompleteRecoveryAsync(node.Live, cancellationToken).ConfigureAwait(false);
            }
            catch (InvalidOperationException refused)
            {
                // The slab came back but its persistent carving did not: the objects in it are lost all the same.
                Violation($"node {node.Id} could not hand back its live objects {when}: {refused.Message} (acknowledged ownership lost)");
                node.Live.Clear();
                await node.Heap.CompleteRecoveryAsync([], cancellationToken).ConfigureAwait(false);
            }
        }

        private void ExpectRecovered(Node node, HashSet<ulong> owned, string when)
        {
            var recovered = node.Heap!.Recoveries[BladeId].OwnedSlabs.Select(s => s.SlabIndex).ToHashSet();
            foreach (ulong lost in owned.Except(recovered).Order())
            {
                Violation($"node {node.Id} owned slab {lost} (acknowledged) but did not get it back {when}");
            }

            foreach (ulong extra in recovered.Except(owned).Order())
            {
                Violation($"node {node.Id} got back slab {extra} {when}, which it did not own");
            }
        }

        private async Task OpenAsync(Node node, CancellationToken cancellationToken)
        {
            node.Connection = await fabric.ConnectAsync(node.Id, cancellationToken).ConfigureAwait(false);

            // The protocol's backoff runs an agent pass: the ring refills and acknowledgements apply exactly when the
            // protocol waits for them, with no thread and no timer, so the run stays a function of the seed.
            var protocol = new ProtocolOptions
            {
                Backoff = (_, _) =>
                {
                    AgentPass();
                    return Task.CompletedTask;
                },
            };
            var client = await BladeClient.ConnectAsync(node.Connection, node.Id, protocol, cancellationToken).ConfigureAwait(false);
            node.Heap = await WorkingNodeHeap.OpenAsync([client], null, cancellationToken).ConfigureAwait(false);
        }

        private void Check(string when)
        {
            _checks++;
            var state = fabric.ScanImage();
            foreach (string problem in state.Problems.Take(5))
            {
                Violation($"{when}: the image is inconsistent: {problem}");
            }

            var durable = _nodes.ToDictionary(n => n.Id, n => state.DurablyOwnedBy(n.Id).ToHashSet());
            for (int a = 0; a < _nodes.Length; a++)
            {
                for (int b = a + 1; b < _nodes.Length; b++)
                {
                    foreach (ulong slab in durable[_nodes[a].Id].Intersect(durable[_nodes[b].Id]).Order())
                    {
                        Violation($"{when}: slab {slab} is owned by both node {_nodes[a].Id} and node {_nodes[b].Id}");
                    }
                }
            }

            foreach (var node in _nodes)
            {
                var held = node.Heap!.OwnedSlabIndexes(BladeId).ToHashSet();
                foreach (ulong slab in held.Except(durable[node.Id]).Order())
                {
                    Violation($"{when}: node {node.Id} holds slab {slab}, which the image does not record as its own (acknowledged ownership lost)");
                }

                foreach (ulong slab in durable[node.Id].Except(held).Order())
                {
                    Violation($"{when}: the image records slab {slab} as node {node.Id}'s, but the node does not hold it (leak)");
                }
            }

            var known = _nodes.Select(n => n.Id).ToHashSet();
            foreach (var slab in state.Slabs.Where(s => s.State == Protocol.Layout.SlabState.Owned && !known.Contains(s.Node)))
            {
                Violation($"{when}: slab {slab.Index} is owned by node {slab.Node}, which does not exist (leak)");
            }
        }
    }

    private sealed class Node(uint id)
    {
        public uint Id { get; } = id;

        public IFabricConnection? Connection { get; set; }

        public WorkingNodeHeap? Heap { get; set; }

        /// <summary>The objects the application still holds: what it passes to CompleteRecoveryAsync after a crash.</summary>
        public List<RemotePtr> Live { get; } = [];
    }
}
