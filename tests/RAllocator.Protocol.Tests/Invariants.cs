namespace RAllocator.Protocol.Tests;

/// <summary>
/// The names of the invariants the model test and the crash-point tests check: the five of DESIGN.md, the object
/// durability contract of spec/durability.md, and two bookkeeping checks. Every failure message starts with one
/// of them in brackets, so a test (and a reader) can tell which rule broke.
/// </summary>
internal static class Invariants
{
    /// <summary>A slab is never owned by two nodes, and an object is never handed out twice.</summary>
    public const string NoDoubleAllocation = "No double allocation";

    /// <summary>After recovery every slab is free, in the ring, or owned by a node that can recover it.</summary>
    public const string NoPermanentLeak = "No permanent leak";

    /// <summary>A working node that restarts gets back exactly the slabs it owned.</summary>
    public const string DurableOwnership = "Durable ownership";

    /// <summary>A freed slab is not reused before its epoch has passed.</summary>
    public const string SafeReuse = "Safe reuse";

    /// <summary>Zero blade-side handler calls between a node's request and its use of the slab.</summary>
    public const string CpuBypass = "CPU bypass";

    /// <summary>Persisted object bytes and the persisted root survive any crash (spec/durability.md).</summary>
    public const string ObjectDurability = "Object durability";

    /// <summary>The blade's bitmap, ownership table, ring and node areas agree (BladeImage.Scan finds no problem).</summary>
    public const string ConsistentImage = "Consistent blade image";

    /// <summary>The heap reports what the reference model predicts (live objects, owned slabs, documented errors).</summary>
    public const string HeapAgreesWithModel = "Heap agrees with the model";
}

/// <summary>A broken invariant; the message starts with <c>[invariant name]</c>.</summary>
public sealed class InvariantViolation : Exception
{
    public InvariantViolation(string invariant, string detail)
        : base($"[{invariant}] {detail}")
    {
        Invariant = invariant;
    }

    public InvariantViolation(string invariant, string detail, Exception inner)
        : base($"[{invariant}] {detail}: {inner.GetType().Name}: {inner.Message}", inner)
    {
        Invariant = invariant;
    }

    /// <summary>The name of the broken invariant (one of <see cref="Invariants"/>).</summary>
    public string Invariant { get; }
}
