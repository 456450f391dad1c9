using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using RAllocator.Fabric.Verbs.Interop;
using static RAllocator.Fabric.Verbs.Interop.IbVerbs;

namespace RAllocator.Fabric.Verbs.Tests;

/// <summary>
/// The generated inline functions call through the ops table exactly as the header's do: a fake ibv_context whose
/// post_send, post_recv and poll_cq slots point at managed recorders proves the slot, the argument order and the
/// returned value, with no device.
/// </summary>
public sealed unsafe class InlineFunctionTests
{
    [ThreadStatic] private static nint[]? t_arguments;

    [Fact]
    public void PostSendCallsTheContextsPostSendSlotWithTheSameArguments()
    {
        using var fake = new FakeContext();
        fake.Context->ops.post_send = &RecordPostSend;
        ibv_qp qp = default;
        qp.context = fake.Context;
        ibv_send_wr wr = default;
        ibv_send_wr* bad = null;

        int result = ibv_post_send(&qp, &wr, &bad);

        result.ShouldBe(11);
        t_arguments.ShouldBe([(nint)(&qp), (nint)(&wr), (nint)(&bad)]);
    }

    [Fact]
    public void PostRecvCallsThePostRecvSlotNotPostSend()
    {
        using var fake = new FakeContext();
        fake.Context->ops.post_send = &RecordPostSend;
        fake.Context->ops.post_recv = &RecordPostRecv;
        ibv_qp qp = default;
        qp.context = fake.Context;
        ibv_recv_wr wr = default;
        ibv_recv_wr* bad = null;

        ibv_post_recv(&qp, &wr, &bad).ShouldBe(22);
        t_arguments.ShouldBe([(nint)(&qp), (nint)(&wr), (nint)(&bad)]);
    }

    [Fact]
    public void PollCqCallsThePollCqSlotThroughTheCqsContext()
    {
        using var fake = new FakeContext();
        fake.Context->ops.poll_cq = &RecordPollCq;
        ibv_cq cq = default;
        cq.context = fake.Context;
        var completions = stackalloc ibv_wc[4];

        ibv_poll_cq(&cq, 4, completions).ShouldBe(4);
        t_arguments.ShouldBe([(nint)(&cq), 4, (nint)completions]);
    }

    [UnmanagedCallersOnly]
    private static int RecordPostSend(ibv_qp* qp, ibv_send_wr* wr, ibv_send_wr** bad)
    {
        t_arguments = [(nint)qp, (nint)wr, (nint)bad];
        return 11;
    }

    [UnmanagedCallersOnly]
    private static int RecordPostRecv(ibv_qp* qp, ibv_recv_wr* wr, ibv_recv_wr** bad)
    {
        t_arguments = [(nint)qp, (nint)wr, (nint)bad];
        return 22;
    }

    [UnmanagedCallersOnly]
    private static int RecordPollCq(ibv_cq* cq, int entries, ibv_wc* wc)
    {
        t_arguments = [(nint)cq, entries, (nint)wc];
        return entries;
    }

    /// <summary>A zeroed ibv_context in native memory: every slot null unless a test sets it.</summary>
    private sealed class FakeContext : IDisposable
    {
        public FakeContext() => Context = (ibv_context*)NativeMemory.AllocZeroed((nuint)Unsafe.SizeOf<ibv_context>());

        public ibv_context* Context { get; }

        public void Dispose() => NativeMemory.Free(Context);
    }
}
