using System.Buffers.Binary;
using System.Text;

namespace RAllocator.Fabric.Framing;

/// <summary>
/// Reads the frames of RAllocator's small binary TCP protocols (the blade handshake, the coordinator's hints): each
/// message is a 4-byte little-endian body length, then the body. Every length is checked against a bound before
/// anything is allocated, so a confused or hostile peer gets the protocol's own format exception, never an
/// allocation it chose.
/// </summary>
public static class BoundedFrames
{
    /// <summary>The size of the length that precedes every body.</summary>
    public const int HeaderBytes = 4;

    /// <summary>Reads one frame's body of 1 to <paramref name="maxBytes"/> bytes.</summary>
    /// <param name="stream">The connection.</param>
    /// <param name="maxBytes">The largest body accepted.</param>
    /// <param name="outOfBounds">Makes the exception thrown for a length of 0 or above <paramref name="maxBytes"/>, given that length.</param>
    /// <param name="cancellationToken">Cancels the read.</param>
    /// <returns>The body, without its length.</returns>
    /// <exception cref="EndOfStreamException">The peer closed the connection before a whole frame arrived.</exception>
    public static async Task<byte[]> ReadFrameAsync(Stream stream, int maxBytes, Func<uint, Exception> outOfBounds, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(outOfBounds);
        var header = new byte[HeaderBytes];
        await stream.ReadExactlyAsync(header, cancellationToken).ConfigureAwait(false);
        var length = BinaryPrimitives.ReadUInt32LittleEndian(header);
        if (length == 0 || length > (uint)maxBytes)
        {
            throw outOfBounds(length);
        }

        var body = new byte[length];
        await stream.ReadExactlyAsync(body, cancellationToken).ConfigureAwait(false);
        return body;
    }
}

/// <summary>
/// Builds one frame (see <see cref="BoundedFrames"/>): little-endian fields, byte strings and UTF-8 text prefixed by
/// a 4-byte length. A bound the caller breaks is its own bug, so it is an <see cref="ArgumentException"/>, not a
/// format exception.
/// </summary>
/// <param name="messageNoun">Names the message in the error for an oversized body ("handshake message").</param>
/// <param name="textNoun">Names a text field in the error for an oversized text ("text").</param>
public sealed class FrameWriter(string messageNoun, string textNoun)
{
    private readonly string _messageNoun = messageNoun ?? throw new ArgumentNullException(nameof(messageNoun));
    private readonly string _textNoun = textNoun ?? throw new ArgumentNullException(nameof(textNoun));
    private readonly MemoryStream _buffer = CreateBuffer();

    /// <summary>Appends one byte.</summary>
    public void Byte(byte value) => _buffer.WriteByte(value);

    /// <summary>Appends a 2-byte unsigned integer.</summary>
    public void UInt16(ushort value)
    {
        Span<byte> bytes = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(bytes, value);
        _buffer.Write(bytes);
    }

    /// <summary>Appends a 4-byte unsigned integer.</summary>
    public void UInt32(uint value)
    {
        Span<byte> bytes = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, value);
        _buffer.Write(bytes);
    }

    /// <summary>Appends an 8-byte unsigned integer.</summary>
    public void UInt64(ulong value)
    {
        Span<byte> bytes = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, value);
        _buffer.Write(bytes);
    }

    /// <summary>Appends a double as its 8-byte IEEE 754 bits.</summary>
    public void Double(double value) => UInt64(BitConverter.DoubleToUInt64Bits(value));

    /// <summary>Appends a byte string: its 4-byte length, then the bytes. The caller bounds it.</summary>
    public void Bytes(ReadOnlySpan<byte> value)
    {
        UInt32((uint)value.Length);
        _buffer.Write(value);
    }

    /// <summary>Appends text as a byte string of UTF-8.</summary>
    /// <exception cref="ArgumentException">The text is more than <paramref name="maxBytes"/> UTF-8 bytes.</exception>
    public void Text(string value, int maxBytes)
    {
        ArgumentNullException.ThrowIfNull(value);
        var bytes = Encoding.UTF8.GetBytes(value);
        if (bytes.Length > maxBytes)
        {
            throw new ArgumentException($"{_textNoun} of {bytes.Length} UTF-8 bytes; at most {maxBytes} are allowed.", nameof(value));
        }

        Bytes(bytes);
    }

    /// <summary>The frame: the body's length, then the body.</summary>
    /// <exception cref="ArgumentException">The body is more than <paramref name="maxBodyBytes"/> bytes.</exception>
    public byte[] ToFramed(int maxBodyBytes)
    {
        var framed = _buffer.ToArray();
        var bodyLength = framed.Length - BoundedFrames.HeaderBytes;
        if (bodyLength > maxBodyBytes)
        {
            throw new ArgumentException($"{_messageNoun} of {bodyLength} bytes; at most {maxBodyBytes} are allowed.");
        }

        BinaryPrimitives.WriteUInt32LittleEndian(framed, (uint)bodyLength);
        return framed;
    }

    private static MemoryStream CreateBuffer()
    {
        var buffer = new MemoryStream();
        buffer.Write(stackalloc byte[BoundedFrames.HeaderBytes]); // the body length, patched by ToFramed
        return buffer;
    }
}

/// <summary>
/// Reads the fields of one frame's body in order. Every read is bounds-checked: a short body, an oversized length,
/// invalid UTF-8 or trailing bytes throw the exception <c>malformed</c> makes from a message naming the message,
/// the field and why, so each protocol keeps its own exception type.
/// </summary>
/// <param name="body">The body, without its length.</param>
/// <param name="what">Names the message in errors ("handshake request").</param>
/// <param name="malformed">Makes the exception to throw from an error message.</param>
public ref struct FrameReader(ReadOnlySpan<byte> body, string what, Func<string, Exception> malformed)
{
    private readonly ReadOnlySpan<byte> _body = body;
    private readonly string _what = what ?? throw new ArgumentNullException(nameof(what));
    private readonly Func<string, Exception> _malformed = malformed ?? throw new ArgumentNullException(nameof(malformed));
    private int _position;

    /// <summary>Reads a 4-byte magic number and checks it.</summary>
    /// <param name="expected">The magic this message starts with.</param>
    /// <param name="hint">Why the peer may have sent something else, for the error.</param>
    public void Magic(uint expected, string hint)
    {
        var magic = UInt32("magic");
        if (magic != expected)
        {
            throw _malformed($"{_what}: magic 0x{magic:x8} is not 0x{expected:x8} ({hint}).");
        }
    }

    /// <summary>Reads a 2-byte protocol version and checks it is the one this build speaks.</summary>
    public void Version(ushort expected)
    {
        var version = UInt16("version");
        if (version != expected)
        {
            throw _malformed($"{_what}: version {version}; this build speaks version {expected} (upgrade the older side).");
        }
    }

    /// <summary>Reads one byte.</summary>
    public byte Byte(string field) => Take(field, 1)[0];

    /// <summary>Reads a 2-byte unsigned integer.</summary>
    public ushort UInt16(string field) => BinaryPrimitives.ReadUInt16LittleEndian(Take(field, 2));

    /// <summary>Reads a 4-byte unsigned integer.</summary>
    public uint UInt32(string field) => BinaryPrimitives.ReadUInt32LittleEndian(Take(field, 4));

    /// <summary>Reads an 8-byte unsigned integer.</summary>
    public ulong UInt64(string field) => BinaryPrimitives.ReadUInt64LittleEndian(Take(field, 8));

    /// <summary>Reads a double from its 8-byte IEEE 754 bits.</summary>
    public double Double(string field) => BitConverter.UInt64BitsToDouble(UInt64(field));

    /// <summary>Reads a byte string of at most <paramref name="maxLength"/> bytes.</summary>
    public byte[] Bytes(string field, int maxLength) => Sized(field, maxLength).ToArray();

    /// <summary>Reads UTF-8 text of at most <paramref name="maxBytes"/> bytes.</summary>
    public string Text(string field, int maxBytes)
    {
        var bytes = Sized(field, maxBytes);
        try
        {
            return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            throw _malformed($"{_what}: {field} is not valid UTF-8.");
        }
    }

    /// <summary>Checks that the body has no bytes after the last field read.</summary>
    public readonly void End()
    {
        if (_position != _body.Length)
        {
            throw _malformed($"{_what}: {_body.Length - _position} unexpected bytes after the last field.");
        }
    }

    private ReadOnlySpan<byte> Sized(string field, int maxLength)
    {
        var length = UInt32(field + " length");
        if (length > (uint)maxLength)
        {
            throw _malformed($"{_what}: {field} of {length} bytes; at most {maxLength} are allowed.");
        }

        return Take(field, (int)length);
    }

    private ReadOnlySpan<byte> Take(string field, int length)
    {
        if (length > _body.Length - _position)
        {
            throw _malformed($"{_what}: truncated at {field} (needs {length} bytes at offset {_position}, {_body.Length - _position} left).");
        }

        var slice = _body.Slice(_position, length);
        _position += length;
        return slice;
    }
}
