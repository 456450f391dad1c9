using RAllocator.Fabric.Verbs.Interop;
using static RAllocator.Fabric.Verbs.Interop.IbVerbs;

namespace RAllocator.Fabric.Verbs.Tests;

/// <summary>The exact ibv_send_wr posted for each verb, field by field: what the NIC would be told to do.</summary>
public sealed unsafe class WorkRequestTests
{
    private const ulong Local = 0x7f00_0000_1000;
    private const ulong Remote = 0x5500_0000_2000;
    private const uint Lkey = 0x1111;
    private const uint Rkey = 0x2222;

    [Fact]
    public void ReadNamesTheRemoteAddressAndRkeyInTheRdmaMemberAndOneSgeForTheDestination()
    {
        var (wr, sge) = Garbage();
        VerbsWorkRequests.Read(&wr, &sge, 7, Local, 4096, Lkey, Remote, Rkey, signaled: true);

        AssertCommon(wr, &sge, 7, ibv_wr_opcode.IBV_WR_RDMA_READ, (uint)ibv_send_flags.IBV_SEND_SIGNALED);
        AssertSge(sge, Local, 4096);
        wr.wr.rdma.remote_addr.ShouldBe(Remote);
        wr.wr.rdma.rkey.ShouldBe(Rkey);
    }

    [Fact]
    public void AnUnsignaledInlineWriteCarriesOnlyTheInlineFlag()
    {
        var (wr, sge) = Garbage();
        VerbsWorkRequests.Write(&wr, &sge, 8, Local, 32, Lkey, Remote, Rkey, signaled: false, inline: true);

        AssertCommon(wr, &sge, 8, ibv_wr_opcode.IBV_WR_RDMA_WRITE, (uint)ibv_send_flags.IBV_SEND_INLINE);
        AssertSge(sge, Local, 32);
        wr.wr.rdma.remote_addr.ShouldBe(Remote);
        wr.wr.rdma.rkey.ShouldBe(Rkey);
    }

    [Fact]
    public void FetchAddPutsTheDeltaInCompareAddAndReceivesEightBytes()
    {
        var (wr, sge) = Garbage();
        VerbsWorkRequests.FetchAdd(&wr, &sge, 9, Local, Lkey, Remote, Rkey, delta: 5, signaled: true);

        AssertCommon(wr, &sge, 9, ibv_wr_opcode.IBV_WR_ATOMIC_FETCH_AND_ADD, (uint)ibv_send_flags.IBV_SEND_SIGNALED);
        AssertSge(sge, Local, 8);
        wr.wr.atomic.remote_addr.ShouldBe(Remote);
        wr.wr.atomic.rkey.ShouldBe(Rkey);
        wr.wr.atomic.compare_add.ShouldBe(5UL);
        wr.wr.atomic.swap.ShouldBe(0UL);
    }

    [Fact]
    public void CompareSwapPutsExpectedInCompareAddAndDesiredInSwap()
    {
        var (wr, sge) = Garbage();
        VerbsWorkRequests.CompareSwap(&wr, &sge, 10, Local, Lkey, Remote, Rkey, expected: 0xAAAA, desired: 0xBBBB, signaled: true);

        AssertCommon(wr, &sge, 10, ibv_wr_opcode.IBV_WR_ATOMIC_CMP_AND_SWP, (uint)ibv_send_flags.IBV_SEND_SIGNALED);
        AssertSge(sge, Local, 8);
        wr.wr.atomic.remote_addr.ShouldBe(Remote);
        wr.wr.atomic.rkey.ShouldBe(Rkey);
        wr.wr.atomic.compare_add.ShouldBe(0xAAAAUL);
        wr.wr.atomic.swap.ShouldBe(0xBBBBUL);
    }

    [Theory]
    [InlineData(0L, 1u)]
    [InlineData(3L, 3u)]
    [InlineData(4096L, 8u)]
    public void PersistIsAReadOfAtMostEightAndAtLeastOneByteOfTheRange(long length, uint readBytes)
    {
        var (wr, sge) = Garbage();
        VerbsWorkRequests.PersistByRead(&wr, &sge, 11, Local, Lkey, Remote, length, Rkey, signaled: true);

        AssertCommon(wr, &sge, 11, ibv_wr_opcode.IBV_WR_RDMA_READ, (uint)ibv_send_flags.IBV_SEND_SIGNALED);
        AssertSge(sge, Local, readBytes);
        wr.wr.rdma.remote_addr.ShouldBe(Remote);
        wr.wr.rdma.rkey.ShouldBe(Rkey);
    }

    [Fact]
    public void QueuePairTransitionsSetTheRcAttributesAndMasks()
    {
        var init = VerbsQpTransitions.Init(1, ibv_access_flags.IBV_ACCESS_REMOTE_READ | ibv_access_flags.IBV_ACCESS_REMOTE_ATOMIC);
        init.qp_state.ShouldBe(ibv_qp_state.IBV_QPS_INIT);
        init.port_num.ShouldBe((byte)1);
        init.qp_access_flags.ShouldBe((uint)(ibv_access_flags.IBV_ACCESS_REMOTE_READ | ibv_access_flags.IBV_ACCESS_REMOTE_ATOMIC));
        VerbsQpTransitions.InitMask.ShouldBe(1 | 8 | 16 | 32, "STATE | ACCESS_FLAGS | PKEY_INDEX | PORT");

        var remote = new VerbsQpAddress(0x123456, 0xABCDE, 0x17, new VerbsGid(0xFE80_0000_0000_0000, 0x0202_03FF_FE04_0506));
        var rtr = VerbsQpTransitions.ReadyToReceive(remote, ibv_mtu.IBV_MTU_4096, 1, 3, 16);
        rtr.qp_state.ShouldBe(ibv_qp_state.IBV_QPS_RTR);
        rtr.dest_qp_num.ShouldBe(0x123456u);
        rtr.rq_psn.ShouldBe(0xABCDEu);
        rtr.path_mtu.ShouldBe(ibv_mtu.IBV_MTU_4096);
        rtr.max_dest_rd_atomic.ShouldBe((byte)16);
        rtr.ah_attr.dlid.ShouldBe((ushort)0x17);
        rtr.ah_attr.is_global.ShouldBe((byte)1, "RoCE (a non-zero GID) needs the global route header");
        rtr.ah_attr.grh.sgid_index.ShouldBe((byte)3);
        rtr.ah_attr.grh.dgid.raw[0].ShouldBe((byte)0xFE);
        rtr.ah_attr.grh.dgid.raw[15].ShouldBe((byte)0x06);
        VerbsQpTransitions.RtrMask.ShouldBe(1 | (1 << 7) | (1 << 8) | (1 << 20) | (1 << 12) | (1 << 17) | (1 << 15));

        var rts = VerbsQpTransitions.ReadyToSend(0x42, 16);
        rts.qp_state.ShouldBe(ibv_qp_state.IBV_QPS_RTS);
        rts.sq_psn.ShouldBe(0x42u);
        rts.max_rd_atomic.ShouldBe((byte)16);
        rts.retry_cnt.ShouldBe((byte)7);
        VerbsQpTransitions.RtsMask.ShouldBe(1 | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 16) | (1 << 13));
    }

    [Fact]
    public void AnInfinibandPeerWithoutGidGetsNoGlobalRoute()
    {
        var rtr = VerbsQpTransitions.ReadyToReceive(new VerbsQpAddress(1, 2, 3, default), ibv_mtu.IBV_MTU_2048, 1, 0, 4);
        rtr.ah_attr.is_global.ShouldBe((byte)0);
    }

    /// <summary>A request and sge full of stale bytes, as a reused slot holds: the builders must overwrite all of it.</summary>
    private static (ibv_send_wr Wr, ibv_sge Sge) Garbage()
    {
        ibv_send_wr wr = default;
        ibv_sge sge = default;
        new Span<byte>(&wr, sizeof(ibv_send_wr)).Fill(0xCD);
        new Span<byte>(&sge, sizeof(ibv_sge)).Fill(0xCD);
        return (wr, sge);
    }

    private static void AssertCommon(ibv_send_wr wr, ibv_sge* sge, ulong wrId, ibv_wr_opcode opcode, uint flags)
    {
        wr.wr_id.ShouldBe(wrId);
        ((nint)wr.next).ShouldBe(0, "a single request ends its chain");
        ((nint)wr.sg_list).ShouldBe((nint)sge);
        wr.num_sge.ShouldBe(1);
        wr.opcode.ShouldBe(opcode);
        wr.send_flags.ShouldBe(flags);
        wr.imm_data.ShouldBe(0u, "stale bytes of a reused slot are cleared");
        wr.qp_type.xrc.remote_srqn.ShouldBe(0u);
    }

    private static void AssertSge(ibv_sge sge, ulong address, uint length)
    {
        sge.addr.ShouldBe(address);
        sge.length.ShouldBe(length);
        sge.lkey.ShouldBe(Lkey);
    }
}
