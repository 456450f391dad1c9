using RAllocator.Fabric.Verbs.Interop;
using static RAllocator.Fabric.Verbs.Interop.IbVerbs;

namespace RAllocator.Fabric.Verbs;

/// <summary>
/// Builds the exact <c>ibv_send_wr</c> (and its single <c>ibv_sge</c>) posted for each verb. Pure functions over
/// caller-owned memory, so every field is checked by tests on a machine without a device.
/// </summary>
/// <remarks>
/// Every request carries one scatter/gather entry naming the connection's registered staging buffer (<c>lkey</c>
/// in each builder). Atomics always move one aligned 8-byte word: the sge receives the value found at the blade.
/// </remarks>
internal static unsafe class VerbsWorkRequests
{
    /// <summary>Atomic operations return the 8-byte word found at the blade.</summary>
    public const uint AtomicResultBytes = sizeof(ulong);

    public static void Read(ibv_send_wr* wr, ibv_sge* sge, ulong wrId, ulong localAddress, uint length, uint lkey, ulong remoteAddress, uint rkey, bool signaled)
    {
        Common(wr, sge, wrId, ibv_wr_opcode.IBV_WR_RDMA_READ, localAddress, length, lkey, signaled);
        wr->wr.rdma.remote_addr = remoteAddress;
        wr->wr.rdma.rkey = rkey;
    }

    /// <summary>An RDMA WRITE; with <c>inline</c> the payload is copied into the work request at post time (length at
    /// most the QP's max_inline_data), so the staging bytes may be reused as soon as the post returns.</summary>
    public static void Write(ibv_send_wr* wr, ibv_sge* sge, ulong wrId, ulong localAddress, uint length, uint lkey, ulong remoteAddress, uint rkey, bool signaled, bool inline)
    {
        Common(wr, sge, wrId, ibv_wr_opcode.IBV_WR_RDMA_WRITE, localAddress, length, lkey, signaled);
        if (inline)
        {
            wr->send_flags |= (uint)ibv_send_flags.IBV_SEND_INLINE;
        }

        wr->wr.rdma.remote_addr = remoteAddress;
        wr->wr.rdma.rkey = rkey;
    }

    public static void FetchAdd(ibv_send_wr* wr, ibv_sge* sge, ulong wrId, ulong resultAddress, uint lkey, ulong remoteAddress, uint rkey, ulong delta, bool signaled)
    {
        Common(wr, sge, wrId, ibv_wr_opcode.IBV_WR_ATOMIC_FETCH_AND_ADD, resultAddress, AtomicResultBytes, lkey, signaled);
        wr->wr.atomic.remote_addr = remoteAddress;
        wr->wr.atomic.rkey = rkey;
        wr->wr.atomic.compare_add = delta;
        wr->wr.atomic.swap = 0;
    }

    public static void CompareSwap(ibv_send_wr* wr, ibv_sge* sge, ulong wrId, ulong resultAddress, uint lkey, ulong remoteAddress, uint rkey, ulong expected, ulong desired, bool signaled)
    {
        Common(wr, sge, wrId, ibv_wr_opcode.IBV_WR_ATOMIC_CMP_AND_SWP, resultAddress, AtomicResultBytes, lkey, signaled);
        wr->wr.atomic.remote_addr = remoteAddress;
        wr->wr.atomic.rkey = rkey;
        wr->wr.atomic.compare_add = expected;
        wr->wr.atomic.swap = desired;
    }

    /// <summary>
    /// The persist of [remoteAddress, +length): rdma-core 44 has no IBV_WR_FLUSH, so a READ of the range's first
    /// bytes (at most 8, at least 1) behind the writes on the same RC queue pair. The responder executes requests in
    /// order and a READ response cannot pass the WRITEs before it, so when the READ completes those writes have left
    /// the NIC for the blade's memory, which on an ADR platform is the persistence domain. IBV_SEND_FENCE is not
    /// needed: it orders behind earlier READs and atomics, not writes.
    /// </summary>
    public static void PersistByRead(ibv_send_wr* wr, ibv_sge* sge, ulong wrId, ulong localAddress, uint lkey, ulong remoteAddress, long length, uint rkey, bool signaled) =>
        Read(wr, sge, wrId, localAddress, PersistReadBytes(length), lkey, remoteAddress, rkey, signaled);

    public static uint PersistReadBytes(long length) => (uint)Math.Clamp(length, 1, 8);

    private static void Common(ibv_send_wr* wr, ibv_sge* sge, ulong wrId, ibv_wr_opcode opcode, ulong localAddress, uint length, uint lkey, bool signaled)
    {
        // Zeroed first: a reused request must not carry a previous verb's union members or chain pointer.
        *wr = default;
        *sge = default;
        sge->addr = localAddress;
        sge->length = length;
        sge->lkey = lkey;
        wr->wr_id = wrId;
        wr->next = null;
        wr->sg_list = sge;
        wr->num_sge = 1;
        wr->opcode = opcode;
        wr->send_flags = signaled ? (uint)ibv_send_flags.IBV_SEND_SIGNALED : 0u;
    }
}

/// <summary>The attribute sets that move an RC queue pair RESET → INIT → RTR → RTS, as pure builders.</summary>
internal static class VerbsQpTransitions
{
    /// <summary>Outstanding RDMA READs and atomics per queue pair, each way (capped by the device's limits).</summary>
    public const byte DefaultRdAtomic = 16;

    public const int InitMask = (int)(ibv_qp_attr_mask.IBV_QP_STATE | ibv_qp_attr_mask.IBV_QP_PKEY_INDEX
        | ibv_qp_attr_mask.IBV_QP_PORT | ibv_qp_attr_mask.IBV_QP_ACCESS_FLAGS);

    public const int RtrMask = (int)(ibv_qp_attr_mask.IBV_QP_STATE | ibv_qp_attr_mask.IBV_QP_AV | ibv_qp_attr_mask.IBV_QP_PATH_MTU
        | ibv_qp_attr_mask.IBV_QP_DEST_QPN | ibv_qp_attr_mask.IBV_QP_RQ_PSN | ibv_qp_attr_mask.IBV_QP_MAX_DEST_RD_ATOMIC
        | ibv_qp_attr_mask.IBV_QP_MIN_RNR_TIMER);

    public const int RtsMask = (int)(ibv_qp_attr_mask.IBV_QP_STATE | ibv_qp_attr_mask.IBV_QP_TIMEOUT | ibv_qp_attr_mask.IBV_QP_RETRY_CNT
        | ibv_qp_attr_mask.IBV_QP_RNR_RETRY | ibv_qp_attr_mask.IBV_QP_SQ_PSN | ibv_qp_attr_mask.IBV_QP_MAX_QP_RD_ATOMIC);

    /// <summary>RESET → INIT. <c>remoteAccess</c> is what the peer may do through this QP (the blade grants READ, WRITE,
    /// ATOMIC; a node grants nothing).</summary>
    public static IbVerbs.ibv_qp_attr Init(byte portNumber, ibv_access_flags remoteAccess)
    {
        IbVerbs.ibv_qp_attr attr = default;
        attr.qp_state = ibv_qp_state.IBV_QPS_INIT;
        attr.pkey_index = 0;
        attr.port_num = portNumber;
        attr.qp_access_flags = (uint)remoteAccess;
        return attr;
    }

    /// <summary>Ready to receive from <paramref name="remote"/>. RoCE (a non-zero GID) needs the global route header.</summary>
    public static unsafe IbVerbs.ibv_qp_attr ReadyToReceive(VerbsQpAddress remote, ibv_mtu pathMtu, byte portNumber, byte gidIndex, byte maxDestRdAtomic)
    {
        IbVerbs.ibv_qp_attr attr = default;
        attr.qp_state = ibv_qp_state.IBV_QPS_RTR;
        attr.path_mtu = pathMtu;
        attr.dest_qp_num = remote.QpNumber;
        attr.rq_psn = remote.Psn;
        attr.max_dest_rd_atomic = maxDestRdAtomic;
        attr.min_rnr_timer = 12; // 0.64 ms: only matters for SENDs, which this fabric never posts
        attr.ah_attr.dlid = remote.Lid;
        attr.ah_attr.sl = 0;
        attr.ah_attr.src_path_bits = 0;
        attr.ah_attr.port_num = portNumber;
        if (!remote.Gid.IsZero)
        {
            attr.ah_attr.is_global = 1;
            remote.Gid.WriteTo(new Span<byte>(attr.ah_attr.grh.dgid.raw, 16));
            attr.ah_attr.grh.sgid_index = gidIndex;
            attr.ah_attr.grh.hop_limit = 1;
        }

        return attr;
    }

    /// <summary>Ready to send, starting at <paramref name="localPsn"/>.</summary>
    public static IbVerbs.ibv_qp_attr ReadyToSend(uint localPsn, byte maxRdAtomic)
    {
        IbVerbs.ibv_qp_attr attr = default;
        attr.qp_state = ibv_qp_state.IBV_QPS_RTS;
        attr.timeout = 14;   // 4.096 us * 2^14 = 67 ms per retry
        attr.retry_cnt = 7;  // then the request fails with IBV_WC_RETRY_EXC_ERR: the blade is unreachable
        attr.rnr_retry = 7;
        attr.sq_psn = localPsn;
        attr.max_rd_atomic = maxRdAtomic;
        return attr;
    }
}
