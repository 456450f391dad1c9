using FsCheck;
using FsCheck.Fluent;

namespace RAllocator.Protocol.Tests.HeapModel;

/// <summary>
/// One step of a random scenario against working nodes and a blade. Commands name objects by <c>Pick</c>, an
/// index taken modulo the node's live objects, and a command whose node is down (or absent) is skipped, so every
/// sub-list of a scenario is still a valid scenario: that is what lets FsCheck shrink a failure by deleting steps.
/// </summary>
public abstract record HeapCommand
{
    /// <summary>The node the command acts on, or -1 for blade-wide commands.</summary>
    public virtual int Node => -1;

    /// <summary>Allocates <c>Count</c> objects of <c>SizeBytes</c> on a node.</summary>
    public sealed record Allocate(int OnNode, int SizeBytes, int Count) : HeapCommand
    {
        public override int Node => OnNode;

        public override string ToString() => $"Allocate(node {OnNode}, {SizeBytes} B x{Count})";
    }

    /// <summary>Frees one live object of a node.</summary>
    public sealed record Free(int OnNode, int Pick) : HeapCommand
    {
        public override int Node => OnNode;

        public override string ToString() => $"Free(node {OnNode}, object #{Pick})";
    }

    /// <summary>Writes a pattern into a live object, persisted (durable on return) or not.</summary>
    public sealed record Write(int OnNode, int Pick, bool Persist, byte Salt) : HeapCommand
    {
        public override int Node => OnNode;

        public override string ToString() => $"{(Persist ? "WriteAndPersist" : "Write")}(node {OnNode}, object #{Pick}, salt {Salt})";
    }

    /// <summary>Sets (and persists) the node's root to one of its live objects, or null when it has none.</summary>
    public sealed record SetRoot(int OnNode, int Pick) : HeapCommand
    {
        public override int Node => OnNode;

        public override string ToString() => $"SetRoot(node {OnNode}, object #{Pick})";
    }

    /// <summary>The node publishes the epoch it has passed (and beats its heartbeat).</summary>
    public sealed record PublishEpochs(int OnNode) : HeapCommand
    {
        public override int Node => OnNode;

        public override string ToString() => $"PublishEpochs(node {OnNode})";
    }

    /// <summary>The node opens an epoch guard (at most two open per node).</summary>
    public sealed record EnterEpoch(int OnNode) : HeapCommand
    {
        public override int Node => OnNode;

        public override string ToString() => $"EnterEpoch(node {OnNode})";
    }

    /// <summary>The node closes its oldest open epoch guard.</summary>
    public sealed record ExitEpoch(int OnNode) : HeapCommand
    {
        public override int Node => OnNode;

        public override string ToString() => $"ExitEpoch(node {OnNode})";
    }

    /// <summary>One pass of the blade agent.</summary>
    public sealed record AgentPass : HeapCommand
    {
        public override string ToString() => "AgentPass";
    }

    /// <summary>The node's process dies: its heap and epoch guards are gone, its blade areas stay.</summary>
    public sealed record CrashNode(int OnNode) : HeapCommand
    {
        public override int Node => OnNode;

        public override string ToString() => $"CrashNode(node {OnNode})";
    }

    /// <summary>The node (crashing it first if it is up) reopens its heap with the same id and completes recovery.</summary>
    public sealed record RestartNode(int OnNode) : HeapCommand
    {
        public override int Node => OnNode;

        public override string ToString() => $"RestartNode(node {OnNode})";
    }

    /// <summary>Power failure of the blade (SimulatedNvm.Crash(seed)), blade restart, then every up node reopens.</summary>
    public sealed record CrashBlade(int Seed) : HeapCommand
    {
        public override string ToString() => $"CrashBlade(seed {Seed})";
    }
}

/// <summary>A generated scenario: how many working nodes, and the commands.</summary>
public sealed record HeapScenario(int NodeCount, HeapCommand[] Commands)
{
    public override string ToString() =>
        $"{NodeCount} nodes, {Commands.Length} commands:{Environment.NewLine}"
        + string.Join(Environment.NewLine, Commands.Select((c, i) => $"  {i,3}: {c}"));
}

/// <summary>Generator and shrinker of <see cref="HeapScenario"/>s.</summary>
public static class HeapScenarios
{
    /// <summary>
    /// Object sizes: small and medium classes, one-object-per-slab classes that churn slabs, and sizes larger than
    /// a 64 KiB slab can hold (which must be refused without acquiring a slab). Under pressure, mostly one-object
    /// slabs, so that a scenario runs the blade (about 60 slabs) full and freed slabs are reused.
    /// </summary>
    public static Gen<int> Size(bool pressure) => Gen.Frequency(
        (pressure ? 10 : 35, Gen.Choose(1, 256)),
        (pressure ? 5 : 20, Gen.Choose(257, 8192)),
        (pressure ? 60 : 30, Gen.Choose(32 * 1024 + 1, 56 * 1024)),
        (2, Gen.Choose(56 * 1024 + 1, 256 * 1024)));

    /// <summary>A scenario of up to FsCheck's size (100 by default) commands on 2 or 3 nodes; one in three under pressure.</summary>
    public static Gen<HeapScenario> Scenario { get; } =
        from nodes in Gen.Choose(2, 3)
        from pressure in Gen.Frequency((2, Gen.Constant(false)), (1, Gen.Constant(true)))
        from commands in Command(nodes, pressure).ArrayOf()
        select new HeapScenario(nodes, commands);

    /// <summary>The arbitrary the model property runs on.</summary>
    public static Arbitrary<HeapScenario> Arbitrary { get; } = Arb.From(Scenario, Shrink);

    private static Gen<HeapCommand> Command(int nodes, bool pressure)
    {
        var node = Gen.Choose(0, nodes - 1);
        var pick = Gen.Choose(0, 1000);
        var allocate = from n in node
                       from size in Size(pressure)
                       from count in Gen.Frequency((3, Gen.Constant(1)), (2, Gen.Choose(2, 6)), (pressure ? 2 : 0, Gen.Choose(7, 12)))
                       select (HeapCommand)new HeapCommand.Allocate(n, size, count);
        var free = from n in node from p in pick select (HeapCommand)new HeapCommand.Free(n, p);
        var write = from n in node
                    from p in pick
                    from persist in Gen.Frequency((3, Gen.Constant(true)), (1, Gen.Constant(false)))
                    from salt in Gen.Choose(0, 255)
                    select (HeapCommand)new HeapCommand.Write(n, p, persist, (byte)salt);
        var setRoot = from n in node from p in pick select (HeapCommand)new HeapCommand.SetRoot(n, p);
        var publish = node.Select(n => (HeapCommand)new HeapCommand.PublishEpochs(n));
        var enter = node.Select(n => (HeapCommand)new HeapCommand.EnterEpoch(n));
        var exit = node.Select(n => (HeapCommand)new HeapCommand.ExitEpoch(n));
        var crashNode = node.Select(n => (HeapCommand)new HeapCommand.CrashNode(n));
        var restartNode = node.Select(n => (HeapCommand)new HeapCommand.RestartNode(n));
        var crashBlade = Gen.Choose(0, int.MaxValue).Select(s => (HeapCommand)new HeapCommand.CrashBlade(s));
        return Gen.Frequency(
            (30, allocate),
            (18, free),
            (10, write),
            (3, setRoot),
            (12, publish),
            (3, enter),
            (3, exit),
            (10, Gen.Constant((HeapCommand)new HeapCommand.AgentPass())),
            (2, crashNode),
            (4, restartNode),
            (3, crashBlade));
    }

    /// <summary>
    /// Shrinks toward a minimal failing scenario: drop a node nobody uses, delete runs of commands (halves first,
    /// then down to single commands), then simplify single commands (one object, smaller sizes, object #0, node 0).
    /// </summary>
    public static IEnumerable<HeapScenario> Shrink(HeapScenario scenario)
    {
        var commands = scenario.Commands;
        if (scenario.NodeCount == 3 && commands.All(c => c.Node != 2))
        {
            yield return scenario with { NodeCount = 2 };
        }

        for (int chunk = commands.Length / 2; chunk >= 1; chunk /= 2)
        {
            for (int start = 0; start + chunk <= commands.Length; start += chunk)
            {
                yield return scenario with { Commands = [.. commands[..start], .. commands[(start + chunk)..]] };
            }
        }

        for (int i = 0; i < commands.Length; i++)
        {
            foreach (var simpler in Simpler(commands[i]))
            {
                var copy = (HeapCommand[])commands.Clone();
                copy[i] = simpler;
                yield return scenario with { Commands = copy };
            }
        }
    }

    private static IEnumerable<HeapCommand> Simpler(HeapCommand command)
    {
        switch (command)
        {
            case HeapCommand.Allocate a:
                if (a.Count > 1)
                {
                    yield return a with { Count = 1 };
                    yield return a with { Count = a.Count - 1 };
                }

                foreach (int size in new[] { 16, 1024, 40 * 1024 }.Where(s => s < a.SizeBytes))
                {
                    yield return a with { SizeBytes = size };
                }

                break;
            case HeapCommand.Free { Pick: > 0 } f:
                yield return f with { Pick = 0 };
                break;
            case HeapCommand.Write w:
                if (w.Pick > 0)
                {
                    yield return w with { Pick = 0 };
                }

                if (!w.Persist)
                {
                    yield return w with { Persist = true };
                }

                break;
            case HeapCommand.SetRoot { Pick: > 0 } r:
                yield return r with { Pick = 0 };
                break;
            case HeapCommand.CrashBlade { Seed: > 0 } b:
                yield return b with { Seed = 0 };
                break;
        }

        if (command.Node > 0)
        {
            var onNodeZero = command switch
            {
                HeapCommand.Allocate a => a with { OnNode = 0 },
                HeapCommand.Free f => f with { OnNode = 0 },
                HeapCommand.Write w => w with { OnNode = 0 },
                HeapCommand.SetRoot r => r with { OnNode = 0 },
                HeapCommand.PublishEpochs p => p with { OnNode = 0 },
                HeapCommand.EnterEpoch e => e with { OnNode = 0 },
                HeapCommand.ExitEpoch x => x with { OnNode = 0 },
                HeapCommand.CrashNode c => c with { OnNode = 0 },
                HeapCommand.RestartNode r => r with { OnNode = 0 },
                _ => (HeapCommand?)null,
            };
            if (onNodeZero is not null)
            {
                yield return onNodeZero;
            }
        }
    }
}
