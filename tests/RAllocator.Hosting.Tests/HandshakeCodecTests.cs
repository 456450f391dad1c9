namespace RAllocator.Hosting.Tests;

public sealed class HandshakeCodecTests
{
    [Fact]
    public void Requests_and_responses_round_trip()
    {
        var request = new HandshakeRequest(7, FabricKind.Ucx, "secret"u8.ToArray(), "host pid 1", new byte[] { 1, 2, 3 });
        var decodedRequest = HandshakeCodec.DecodeRequest(HandshakeCodec.Encode(request).AsSpan(4));
        decodedRequest.NodeId.ShouldBe(7u);
        decodedRequest.Fabric.ShouldBe(FabricKind.Ucx);
        decodedRequest.Token.ToArray().ShouldBe("secret"u8.ToArray());
        decodedRequest.NodeName.ShouldBe("host pid 1");
        decodedRequest.FabricPayload.ToArray().ShouldBe(new byte[] { 1, 2, 3 });

        var response = new HandshakeResponse(HandshakeStatus.Accepted, "welcome", 42, 1 << 20, [new FabricRange(8, 8), new FabricRange(4096, 512)], new byte[] { 9 });
        var decoded = HandshakeCodec.DecodeResponse(HandshakeCodec.Encode(response).AsSpan(4));
        decoded.Status.ShouldBe(HandshakeStatus.Accepted);
        decoded.BladeProcessId.ShouldBe(42);
        decoded.RegionLength.ShouldBe(1 << 20);
        decoded.WritableRanges.ShouldBe([new FabricRange(8, 8), new FabricRange(4096, 512)]);
        decoded.FabricPayload.ToArray().ShouldBe(new byte[] { 9 });
    }

    [Fact]
    public void Every_truncation_and_random_corruption_gives_a_typed_error_or_a_well_formed_message()
    {
        var encoded = HandshakeCodec.Encode(new HandshakeResponse(HandshakeStatus.Accepted, "welcome", 42, 1 << 20, [new FabricRange(8, 8)], new byte[16]));
        var body = encoded.AsSpan(4).ToArray();
        for (var length = 0; length < body.Length; length++)
        {
            Should.Throw<HandshakeFormatException>(() => HandshakeCodec.DecodeResponse(body.AsSpan(0, length)));
        }

        var random = new Random(12345);
        var typedErrors = 0;
        for (var i = 0; i < 20_000; i++)
        {
            var mutated = (byte[])body.Clone();
            mutated[random.Next(mutated.Length)] = (byte)random.Next(256);
            try
            {
                var response = HandshakeCodec.DecodeResponse(mutated);
                foreach (var range in response.WritableRanges)
                {
                    (range.Offset + range.Length).ShouldBeLessThanOrEqualTo(response.RegionLength);
                }
            }
            catch (HandshakeFormatException)
            {
                typedErrors++;
            }
        }

        typedErrors.ShouldBeGreaterThan(0);
    }

    [Fact]
    public void An_observer_request_round_trips_with_the_reserved_node_id_and_no_real_node_id_is_an_observer()
    {
        var request = HandshakeRequest.Observer(FabricKind.SharedMemory, "secret"u8.ToArray(), "rallocator coordinator", ReadOnlyMemory<byte>.Empty);
        request.NodeId.ShouldBe(HandshakeCodec.ObserverNodeId);
        var decoded = HandshakeCodec.DecodeRequest(HandshakeCodec.Encode(request).AsSpan(4));
        decoded.IsObserver.ShouldBeTrue();
        decoded.NodeName.ShouldBe("rallocator coordinator");
        decoded.Fabric.ShouldBe(FabricKind.SharedMemory);

        // The largest id a blade could ever serve is still a node, not an observer.
        new HandshakeRequest(HandshakeCodec.ObserverNodeId - 1, FabricKind.Ucx, "t"u8.ToArray(), "n", default).IsObserver.ShouldBeFalse();
        new HandshakeRequest(0, FabricKind.Ucx, "t"u8.ToArray(), "n", default).IsObserver.ShouldBeFalse();
    }

    [Fact]
    public void The_too_many_observers_refusal_round_trips_and_an_unknown_status_is_a_typed_error()
    {
        var refusal = new HandshakeResponse(HandshakeStatus.TooManyObservers, "limit reached", 7, 0, [], default);
        var body = HandshakeCodec.Encode(refusal).AsSpan(4).ToArray();
        var decoded = HandshakeCodec.DecodeResponse(body);
        decoded.Status.ShouldBe(HandshakeStatus.TooManyObservers);
        decoded.Message.ShouldBe("limit reached");

        body[6] = 200; // magic (4) + version (2): the status byte
        Should.Throw<HandshakeFormatException>(() => HandshakeCodec.DecodeResponse(body)).Message.ShouldContain("unknown status 200");
    }

    [Fact]
    public void Every_truncation_and_random_corruption_of_an_observer_request_gives_a_typed_error_or_a_well_formed_request()
    {
        var encoded = HandshakeCodec.Encode(HandshakeRequest.Observer(FabricKind.Ucx, "secret"u8.ToArray(), "coordinator", new byte[] { 1, 2 }));
        var body = encoded.AsSpan(4).ToArray();
        for (var length = 0; length < body.Length; length++)
        {
            Should.Throw<HandshakeFormatException>(() => HandshakeCodec.DecodeRequest(body.AsSpan(0, length)));
        }

        Should.Throw<HandshakeFormatException>(() => HandshakeCodec.DecodeRequest([.. body, 0])).Message.ShouldContain("unexpected bytes");

        var random = new Random(4242);
        var typedErrors = 0;
        for (var i = 0; i < 20_000; i++)
        {
            var mutated = (byte[])body.Clone();
            mutated[random.Next(mutated.Length)] = (byte)random.Next(256);
            try
            {
                var request = HandshakeCodec.DecodeRequest(mutated);
                request.Token.Length.ShouldBeLessThanOrEqualTo(HandshakeCodec.MaxTokenBytes);
                Enum.IsDefined(request.Fabric).ShouldBeTrue();
            }
            catch (HandshakeFormatException)
            {
                typedErrors++;
            }
        }

        typedErrors.ShouldBeGreaterThan(0);
    }

    [Fact]
    public void A_range_outside_the_region_is_rejected()
    {
        var encoded = HandshakeCodec.Encode(new HandshakeResponse(HandshakeStatus.Accepted, "", 1, 4096, [new FabricRange(4000, 200)], default));
        Should.Throw<HandshakeFormatException>(() => HandshakeCodec.DecodeResponse(encoded.AsSpan(4))).Message.ShouldContain("outside");
    }

    [Fact]
    public async Task A_frame_longer_than_the_limit_is_rejected_before_it_is_read()
    {
        var header = BitConverter.GetBytes(HandshakeCodec.MaxMessageBytes + 1);
        using var stream = new MemoryStream(header);
        (await Should.ThrowAsync<HandshakeFormatException>(() => HandshakeCodec.ReadFrameAsync(stream, CancellationToken.None))).Message.ShouldContain("frames are");
    }
}

public sealed class AccessTokenAndEndpointTests
{
    [Fact]
    public void Token_files_that_cannot_be_used_are_named_with_the_reason()
    {
        using var directory = new TempDirectory();
        Should.Throw<AccessTokenException>(() => AccessToken.ReadFile(directory.File("missing"))).Message.ShouldContain("does not exist");
        File.WriteAllText(directory.File("empty"), " \n");
        Should.Throw<AccessTokenException>(() => AccessToken.ReadFile(directory.File("empty"))).Message.ShouldContain("empty");
        File.WriteAllText(directory.File("huge"), new string('x', 5000));
        Should.Throw<AccessTokenException>(() => AccessToken.ReadFile(directory.File("huge"))).Message.ShouldContain("at most");
        File.WriteAllText(directory.File("good"), "s3cret\n");
        var token = AccessToken.ReadFile(directory.File("good"));
        token.Matches("s3cret"u8).ShouldBeTrue();
        token.Matches("s3cret\n"u8).ShouldBeFalse();
        token.ToString().ShouldNotContain("s3cret");
    }

    [Theory]
    [InlineData("127.0.0.1:7070", "127.0.0.1", 7070)]
    [InlineData("blade-3.example:1", "blade-3.example", 1)]
    [InlineData("[::1]:65535", "::1", 65535)]
    public void Endpoints_parse(string text, string host, int port)
    {
        BladeEndpoint.Parse(text).ShouldBe(new BladeEndpoint(host, port));
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("127.0.0.1:")]
    [InlineData(":7070")]
    [InlineData("127.0.0.1:70700")]
    [InlineData("127.0.0.1:0")]
    [InlineData("::1:7070")]
    [InlineData("host:port")]
    public void Malformed_endpoints_say_what_is_wrong(string text)
    {
        Should.Throw<FormatException>(() => BladeEndpoint.Parse(text)).Message.ShouldContain(text);
    }
}
