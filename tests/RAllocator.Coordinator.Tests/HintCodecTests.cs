using System.Buffers.Binary;

namespace RAllocator.Coordinator.Tests;

public sealed class HintCodecTests
{
    private static readonly PlacementHints s_hints = new(42, 0.85,
    [
        new BladeHint(0, Reachable: true, Shed: false, Weight: 3UL << 30, Utilization: 0.125, FreeBytes: 7UL << 30),
        new BladeHint(1, Reachable: true, Shed: true, Weight: 0, Utilization: 0.9, FreeBytes: 1UL << 20),
        new BladeHint(2, Reachable: false, Shed: false, Weight: 0, Utilization: 0, FreeBytes: 0),
    ]);

    private static byte[] Body(byte[] framed)
    {
        BinaryPrimitives.ReadUInt32LittleEndian(framed).ShouldBe((uint)(framed.Length - 4));
        return framed[4..];
    }

    [Fact]
    public void A_response_with_hints_round_trips_exactly()
    {
        var decoded = HintCodec.DecodeResponse(Body(HintCodec.Encode(new HintResponse(HintStatus.Ok, "", 0xfeed, s_hints))));
        decoded.Status.ShouldBe(HintStatus.Ok);
        decoded.Incarnation.ShouldBe(0xfeedUL);
        decoded.Hints!.Version.ShouldBe(42);
        decoded.Hints.HighWaterMark.ShouldBe(0.85);
        decoded.Hints.Blades.ShouldBe(s_hints.Blades);
    }

    [Theory]
    [InlineData(HintStatus.NoHintsYet)]
    [InlineData(HintStatus.Malformed)]
    [InlineData(HintStatus.Busy)]
    public void A_response_without_hints_round_trips_with_its_message(HintStatus status)
    {
        var decoded = HintCodec.DecodeResponse(Body(HintCodec.Encode(new HintResponse(status, "why: ünïcode", 7, null))));
        decoded.ShouldBe(new HintResponse(status, "why: ünïcode", 7, null));
    }

    [Fact]
    public void A_request_decodes_and_anything_else_is_a_typed_error()
    {
        var request = Body(HintCodec.EncodeRequest());
        HintCodec.DecodeRequest(request);
        for (var length = 0; length < request.Length; length++)
        {
            Should.Throw<HintFormatException>(() => HintCodec.DecodeRequest(request.AsSpan(0, length))).Message.ShouldContain("truncated");
        }

        Should.Throw<HintFormatException>(() => HintCodec.DecodeRequest([.. request, 0])).Message.ShouldContain("unexpected bytes");
        Should.Throw<HintFormatException>(() => HintCodec.DecodeRequest("GET / HTTP/1.1\r\n"u8)).Message.ShouldContain("magic");
        var future = (byte[])request.Clone();
        future[4] = (byte)(HintCodec.Version + 1);
        Should.Throw<HintFormatException>(() => HintCodec.DecodeRequest(future)).Message.ShouldContain($"version {HintCodec.Version + 1}");
    }

    [Fact]
    public void Every_truncation_and_random_corruption_of_a_response_gives_a_typed_error_or_well_formed_hints()
    {
        var body = Body(HintCodec.Encode(new HintResponse(HintStatus.Ok, "", 1, s_hints)));
        for (var length = 0; length < body.Length; length++)
        {
            Should.Throw<HintFormatException>(() => HintCodec.DecodeResponse(body.AsSpan(0, length)));
        }

        var random = new Random(8);
        var typedErrors = 0;
        for (var i = 0; i < 20_000; i++)
        {
            var mutated = (byte[])body.Clone();
            mutated[random.Next(mutated.Length)] = (byte)random.Next(256);
            try
            {
                var response = HintCodec.DecodeResponse(mutated);
                if (response.Hints is { } hints)
                {
                    hints.HighWaterMark.ShouldBeInRange(double.Epsilon, 1.0);
                    hints.Version.ShouldBeGreaterThanOrEqualTo(0);
                    for (var b = 0; b < hints.Blades.Count; b++)
                    {
                        hints.Blades[b].BladeId.ShouldBe(b);
                        hints.Blades[b].Utilization.ShouldBeInRange(0.0, 1.0);
                        (hints.Blades[b].Shed && !hints.Blades[b].Reachable).ShouldBeFalse();
                    }
                }
            }
            catch (HintFormatException)
            {
                typedErrors++;
            }
        }

        typedErrors.ShouldBeGreaterThan(0);
    }

    [Fact]
    public void Inconsistent_hints_are_named_field_by_field()
    {
        static string Fails(Action<byte[]> corrupt)
        {
            var body = Body(HintCodec.Encode(new HintResponse(HintStatus.Ok, "", 1, s_hints)));
            corrupt(body);
            return Should.Throw<HintFormatException>(() => HintCodec.DecodeResponse(body)).Message;
        }

        // Layout: magic 4, version 2, status 1, message length 4 (empty), incarnation 8, hints version 8, mark 8,
        // count 4, then per blade: id 4, flags 1, weight 8, utilization 8, free 8.
        const int Mark = 4 + 2 + 1 + 4 + 8 + 8;
        const int Count = Mark + 8;
        const int FirstBlade = Count + 4;
        Fails(b => BinaryPrimitives.WriteDoubleLittleEndian(b.AsSpan(Mark), 1.5)).ShouldContain("high-water mark");
        Fails(b => BinaryPrimitives.WriteDoubleLittleEndian(b.AsSpan(Mark), double.NaN)).ShouldContain("high-water mark");
        Fails(b => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(Count), HintCodec.MaxBlades + 1)).ShouldContain("at most");
        Fails(b => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(FirstBlade), 1)).ShouldContain("has id 1");
        Fails(b => b[FirstBlade + 4] = 0x80).ShouldContain("unknown flags");
        Fails(b => b[FirstBlade + 4] = 2).ShouldContain("shed but unreachable");
        Fails(b => BinaryPrimitives.WriteDoubleLittleEndian(b.AsSpan(FirstBlade + 13), -0.5)).ShouldContain("utilization");
        Fails(b => b[6] = 9).ShouldContain("unknown status 9");
    }

    [Fact]
    public void Encoding_refuses_what_decoding_would_reject()
    {
        Should.Throw<ArgumentException>(() => HintCodec.Encode(new HintResponse(HintStatus.Ok, "", 1, null)));
        Should.Throw<ArgumentException>(() => HintCodec.Encode(new HintResponse(HintStatus.Busy, "", 1, s_hints)));
        Should.Throw<ArgumentException>(() => HintCodec.Encode(new HintResponse(HintStatus.Busy, new string('x', HintCodec.MaxMessageBytes + 1), 1, null)));
        var many = new PlacementHints(1, 0.5, Enumerable.Range(0, HintCodec.MaxBlades + 1).Select(i => new BladeHint(i, true, false, 1, 0, 1)).ToArray());
        Should.Throw<ArgumentException>(() => HintCodec.Encode(new HintResponse(HintStatus.Ok, "", 1, many)));
    }

    [Fact]
    public async Task A_frame_longer_than_the_limit_is_rejected_before_it_is_read()
    {
        using var stream = new MemoryStream(BitConverter.GetBytes(HintCodec.MaxRequestBytes + 1));
        (await Should.ThrowAsync<HintFormatException>(() => HintCodec.ReadFrameAsync(stream, HintCodec.MaxRequestBytes, CancellationToken.None))).Message.ShouldContain("frames are 1 to");
        using var empty = new MemoryStream(new byte[4]);
        await Should.ThrowAsync<HintFormatException>(() => HintCodec.ReadFrameAsync(empty, HintCodec.MaxRequestBytes, CancellationToken.None));
        using var cut = new MemoryStream([8, 0, 0, 0, 1, 2]);
        await Should.ThrowAsync<EndOfStreamException>(() => HintCodec.ReadFrameAsync(cut, HintCodec.MaxRequestBytes, CancellationToken.None));
    }
}
