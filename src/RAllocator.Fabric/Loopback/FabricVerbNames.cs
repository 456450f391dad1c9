namespace RAllocator.Fabric;

/// <summary>The RDMA names of the verbs, so error messages read like the completions an operator would grep for.</summary>
internal static class FabricVerbNames
{
    public static string RdmaName(this FabricVerb verb) => verb switch
    {
        FabricVerb.Read => "READ",
        FabricVerb.Write => "WRITE",
        FabricVerb.FetchAdd => "ATOMIC_FETCH_AND_ADD",
        FabricVerb.CompareSwap => "ATOMIC_CMP_AND_SWP",
        FabricVerb.Persist => "PERSIST",
        _ => verb.ToString(),
    };
}
