using static RAllocator.Fabric.Verbs.Interop.IbVerbs;

namespace RAllocator.Fabric.Verbs;

/// <summary>
/// Maps a work completion's <c>ibv_wc_status</c> to the <see cref="FabricStatus"/> the fabric interface reports.
/// </summary>
/// <remarks>
/// <list type="table">
/// <item><term>SUCCESS</term><description><see cref="FabricStatus.Success"/></description></item>
/// <item><term>REM_ACCESS_ERR, REM_INV_REQ_ERR, REM_INV_RD_REQ_ERR, REM_OP_ERR, LOC_PROT_ERR, LOC_ACCESS_ERR</term>
/// <description><see cref="FabricStatus.RemoteAccessError"/>: the blade (or our own registration) refused the
/// address, rkey or request; the loopback fabric reports the same refusals this way.</description></item>
/// <item><term>everything else (RETRY_EXC_ERR, RNR_RETRY_EXC_ERR, WR_FLUSH_ERR, FATAL_ERR, RESP_TIMEOUT_ERR, ...)</term>
/// <description><see cref="FabricStatus.Unreachable"/>: the peer did not answer or the queue pair is in error, so
/// nothing more will complete on this connection.</description></item>
/// </list>
/// Misaligned atomics never reach the NIC: the connection rejects them with
/// <see cref="FabricStatus.RemoteAlignmentError"/> first, as the loopback does.
/// </remarks>
internal static class VerbsCompletionStatus
{
    public static FabricStatus ToFabricStatus(ibv_wc_status status) => status switch
    {
        ibv_wc_status.IBV_WC_SUCCESS => FabricStatus.Success,
        ibv_wc_status.IBV_WC_REM_ACCESS_ERR
            or ibv_wc_status.IBV_WC_REM_INV_REQ_ERR
            or ibv_wc_status.IBV_WC_REM_INV_RD_REQ_ERR
            or ibv_wc_status.IBV_WC_REM_OP_ERR
            or ibv_wc_status.IBV_WC_LOC_PROT_ERR
            or ibv_wc_status.IBV_WC_LOC_ACCESS_ERR => FabricStatus.RemoteAccessError,
        _ => FabricStatus.Unreachable,
    };

    /// <summary>The C name of a status ("IBV_WC_REM_ACCESS_ERR"), for messages an operator can grep.</summary>
    public static string Name(ibv_wc_status status) =>
        Enum.IsDefined(status) ? status.ToString() : $"ibv_wc_status {(int)status}";
}
