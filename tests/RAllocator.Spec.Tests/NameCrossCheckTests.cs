using RAllocator.Protocol;

namespace RAllocator.Spec.Tests;

/// <summary>
/// The C# state machine (AcquireState, AcquireTransition, SlabAcquisitionMachine in RAllocator.Protocol) and the
/// spin model use the same names and the same transition table.
/// </summary>
public sealed class NameCrossCheckTests
{
    private static readonly string Model = File.ReadAllText(SpinRunner.ModelPath);

    [Fact]
    public void StateNamesAgree() =>
        Differences(Enum.GetNames<AcquireState>(), ModelNames.Mtype(Model, nameof(AcquireState))).ShouldBeEmpty();

    [Fact]
    public void TransitionNamesAgree() =>
        Differences(Enum.GetNames<AcquireTransition>(), ModelNames.Mtype(Model, nameof(AcquireTransition))).ShouldBeEmpty();

    [Fact]
    public void TransitionTablesAgree()
    {
        var csharp = SlabAcquisitionMachine.Transitions.Select(t => $"{t.Key.From} --{t.Key.Via}--> {t.Value}").Order().ToArray();
        var model = ModelNames.Transitions(Model).Select(t => $"{t.From} --{t.Via}--> {t.To}").Order().ToArray();
        model.ShouldBe(csharp);
    }

    [Fact]
    public void TheProtocolDocumentNamesEveryStateAndTransition()
    {
        string doc = File.ReadAllText(RepositoryPaths.Combine("spec", "protocol.md"));
        var missing = Enum.GetNames<AcquireState>().Concat(Enum.GetNames<AcquireTransition>())
            .Where(name => !doc.Contains(name, StringComparison.Ordinal)).ToArray();
        missing.ShouldBeEmpty();
    }

    [Fact]
    public void ARenamedOrMissingNameIsReported()
    {
        // Seeded mismatches: the check above must fail on each.
        string renamed = Model.Replace("EntryNotFilled,", "EntryNotReady,", StringComparison.Ordinal);
        Differences(Enum.GetNames<AcquireTransition>(), ModelNames.Mtype(renamed, nameof(AcquireTransition)))
            .ShouldBe(["only in C#: EntryNotFilled", "only in the model: EntryNotReady"]);

        string dropped = Model.Replace(" Abandoned };", " };", StringComparison.Ordinal);
        Differences(Enum.GetNames<AcquireState>(), ModelNames.Mtype(dropped, nameof(AcquireState)))
            .ShouldBe(["only in C#: Abandoned"]);

        string reordered = Model.Replace("Idle, Announced,", "Announced, Idle,", StringComparison.Ordinal);
        Differences(Enum.GetNames<AcquireState>(), ModelNames.Mtype(reordered, nameof(AcquireState)))
            .ShouldBe(["order differs"]);

        string wrongEdge = Model.Replace("t == EntryNotFilled      && x == Claimed", "t == EntryNotFilled      && x == Idle", StringComparison.Ordinal);
        ModelNames.Transitions(wrongEdge).ShouldContain(("EntryRead", "EntryNotFilled", "Idle"));
        ModelNames.Transitions(wrongEdge).Count.ShouldBe(SlabAcquisitionMachine.Transitions.Count);
        ModelNames.Transitions(wrongEdge).ShouldNotContain(("EntryRead", "EntryNotFilled", "Claimed"));
    }

    /// <summary>Names only in one list, then (if the sets agree) whether the order differs.</summary>
    private static string[] Differences(IReadOnlyList<string> csharp, IReadOnlyList<string> model)
    {
        var result = csharp.Except(model).Select(n => $"only in C#: {n}")
            .Concat(model.Except(csharp).Select(n => $"only in the model: {n}")).ToList();
        if (result.Count == 0 && !csharp.SequenceEqual(model))
        {
            result.Add("order differs");
        }

        return [.. result];
    }
}
