using System.Buffers.Binary;

namespace RAllocator.Fabric.Verbs.Tests;

/// <summary>The TCP handshake codec: round trips, the documented byte layout, and rejection of anything malformed.</summary>
public sealed class HandshakeCodecTests
{
    private static readonly VerbsQpAddress s_node = new(0x00ABCD, 0x123456, 0x0011, new VerbsGid(0xFE80_0000_0000_0000, 0x0011_22FF_FE33_4455));
    private static readonly VerbsQpAddress s_blade = new(0x000042, 0x000007, 0x0022, new VerbsGid(0, 0));

    private static VerbsWelcome Welcome(params VerbsRangeKey[] ranges) =>
        new(s_blade, 0x7F12_3456_0000, 1 << 20, 0xDEAD, ranges);

    [Fact]
    public void HelloRoundTripsAndHasTheDocumentedLayout()
    {
        var hello = new VerbsHello(7, s_node);
        byte[] bytes = VerbsHandshake.EncodeHello(hello);

        bytes.Length.ShouldBe(VerbsHandshake.HelloBytes);
        BinaryPrimitives.ReadUInt32LittleEndian(bytes).ShouldBe(0x31425652u);
        BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(8)).ShouldBe(7u);
        BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(12)).ShouldBe(0xABCDu);
        bytes[24].ShouldBe((byte)0xFE, "the GID travels in network order, as union ibv_gid holds it");
        VerbsHandshake.DecodeHello(bytes).ShouldBe(hello);
    }

    [Fact]
    public void WelcomeRoundTripsWithEveryRange()
    {
        var welcome = Welcome(new VerbsRangeKey(0, 4096, 1), new VerbsRangeKey(8192, 64, 2));
        byte[] bytes = VerbsHandshake.EncodeWelcome(welcome);

        bytes.Length.ShouldBe(VerbsHandshake.WelcomeHeaderBytes + (2 * VerbsHandshake.RangeBytes));
        VerbsHandshake.DecodeWelcome(bytes).ShouldBe(welcome);
    }

    [Fact]
    public async Task StreamFramingCarriesHelloThenWelcome()
    {
        var welcome = Welcome(new VerbsRangeKey(64, 128, 9));
        using var wire = new MemoryStream();
        await VerbsHandshake.WriteAsync(wire, VerbsHandshake.EncodeHello(new VerbsHello(3, s_node)), TestContext.Current.CancellationToken);
        await VerbsHandshake.WriteAsync(wire, VerbsHandshake.EncodeWelcome(welcome), TestContext.Current.CancellationToken);
        wire.Position = 0;

        (await VerbsHandshake.ReadHelloAsync(wire, TestContext.Current.CancellationToken)).ShouldBe(new VerbsHello(3, s_node));
        (await VerbsHandshake.ReadWelcomeAsync(wire, TestContext.Current.CancellationToken)).ShouldBe(welcome);
    }

    [Fact]
    public async Task ARefusalIsThrownWithTheBladesReason()
    {
        using var wire = new MemoryStream(VerbsHandshake.EncodeRefusal("node 9 is not registered"));

        var refused = await Should.ThrowAsync<FabricException>(() => VerbsHandshake.ReadWelcomeAsync(wire, TestContext.Current.CancellationToken).AsTask());

        refused.Status.ShouldBe(FabricStatus.RemoteAccessError);
        refused.Message.ShouldBe("the blade refused the connection: node 9 is not registered");
    }

    [Fact]
    public void AWrongMagicIsRejectedAsAnotherProtocol()
    {
        byte[] bytes = VerbsHandshake.EncodeHello(new VerbsHello(1, s_node));
        bytes[0] = (byte)'G';

        Should.Throw<InvalidDataException>(() => VerbsHandshake.DecodeHello(bytes)).Message.ShouldContain("is something else listening on this port?");
    }

    [Fact]
    public void AnotherVersionIsRejected()
    {
        byte[] bytes = VerbsHandshake.EncodeHello(new VerbsHello(1, s_node));
        bytes[4] = 2;

        Should.Throw<InvalidDataException>(() => VerbsHandshake.DecodeHello(bytes)).Message.ShouldBe("hello: handshake version 2, this build speaks 1");
    }

    [Fact]
    public void ATruncatedWelcomeIsRejected()
    {
        byte[] bytes = VerbsHandshake.EncodeWelcome(Welcome(new VerbsRangeKey(0, 64, 1)));

        Should.Throw<InvalidDataException>(() => VerbsHandshake.DecodeWelcome(bytes.AsSpan(0, bytes.Length - 1)))
            .Message.ShouldBe($"welcome is {bytes.Length - 1} bytes, expected {bytes.Length}");
    }

    [Fact]
    public void ARangeOutsideTheRegionIsRejected()
    {
        byte[] bytes = VerbsHandshake.EncodeWelcome(Welcome(new VerbsRangeKey((1 << 20) - 32, 64, 1)));

        Should.Throw<InvalidDataException>(() => VerbsHandshake.DecodeWelcome(bytes)).Message.ShouldContain("is not inside the region");
    }

    [Fact]
    public void AQueuePairNumberWiderThan24BitsIsRejected()
    {
        byte[] bytes = VerbsHandshake.EncodeHello(new VerbsHello(1, s_node with { QpNumber = 0x0100_0000 }));

        Should.Throw<InvalidDataException>(() => VerbsHandshake.DecodeHello(bytes)).Message.ShouldContain("does not fit 24 bits");
    }

    [Fact]
    public void TooManyRangesAreRejectedOnBothSides()
    {
        var ranges = Enumerable.Range(0, VerbsHandshake.MaxRanges + 1).Select(i => new VerbsRangeKey(i * 8, 8, 1)).ToArray();
        Should.Throw<ArgumentOutOfRangeException>(() => VerbsHandshake.EncodeWelcome(Welcome(ranges)));

        byte[] header = VerbsHandshake.EncodeWelcome(Welcome());
        BinaryPrimitives.WriteUInt16LittleEndian(header.AsSpan(22), VerbsHandshake.MaxRanges + 1);
        Should.Throw<InvalidDataException>(() => VerbsHandshake.WelcomeRangeBytes(header)).Message.ShouldContain("at most 4096");
    }

    [Fact]
    public async Task APeerClosingMidHandshakeIsInvalidData()
    {
        using var wire = new MemoryStream(VerbsHandshake.EncodeHello(new VerbsHello(1, s_node)).AsSpan(0, 20).ToArray());

        (await Should.ThrowAsync<InvalidDataException>(() => VerbsHandshake.ReadHelloAsync(wire, TestContext.Current.CancellationToken).AsTask()))
            .Message.ShouldBe("the peer closed the handshake connection before sending its hello");
    }
}
