using System.Security.Cryptography;
using System.Text;
using RAllocator.Fabric.Handshake;

namespace RAllocator.Hosting;

/// <summary>
/// The shared secret a working node presents at the handshake. Read from a token file that the blade's operator
/// distributes to the nodes allowed to use the blade; compared in constant time.
/// </summary>
public sealed class AccessToken
{
    private readonly byte[] _bytes;

    private AccessToken(byte[] bytes) => _bytes = bytes;

    /// <summary>The token's bytes, as sent in the handshake.</summary>
    public ReadOnlyMemory<byte> Bytes => _bytes;

    /// <summary>Creates a token from text (surrounding whitespace and line breaks are not part of it).</summary>
    /// <exception cref="AccessTokenException">The text is empty or longer than <see cref="HandshakeCodec.MaxTokenBytes"/> bytes.</exception>
    public static AccessToken FromText(string text, string source = "the token")
    {
        ArgumentNullException.ThrowIfNull(text);
        var bytes = Encoding.UTF8.GetBytes(text.Trim());
        if (bytes.Length == 0)
        {
            throw new AccessTokenException($"{source} is empty: put a secret (for example the output of 'openssl rand -hex 32') in it.");
        }

        if (bytes.Length > HandshakeCodec.MaxTokenBytes)
        {
            throw new AccessTokenException($"{source} holds {bytes.Length} bytes; a token is at most {HandshakeCodec.MaxTokenBytes} bytes.");
        }

        return new AccessToken(bytes);
    }

    /// <summary>Reads a token file.</summary>
    /// <exception cref="AccessTokenException">The file is missing, unreadable, empty or too long; the message names it.</exception>
    public static AccessToken ReadFile(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string text;
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists)
            {
                throw new AccessTokenException($"token file '{path}' does not exist.");
            }

            if (info.Length > 4 * HandshakeCodec.MaxTokenBytes)
            {
                throw new AccessTokenException($"token file '{path}' is {info.Length} bytes; a token is at most {HandshakeCodec.MaxTokenBytes} bytes (is this the right file?).");
            }

            text = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new AccessTokenException($"token file '{path}' cannot be read: {ex.Message}");
        }

        return FromText(text, $"token file '{path}'");
    }

    /// <summary>True when <paramref name="presented"/> is this token; takes the same time wherever they differ.</summary>
    public bool Matches(ReadOnlySpan<byte> presented)
    {
        // Hashing first makes the comparison independent of the presented length too.
        Span<byte> expectedHash = stackalloc byte[32];
        Span<byte> presentedHash = stackalloc byte[32];
        SHA256.HashData(_bytes, expectedHash);
        SHA256.HashData(presented, presentedHash);
        return CryptographicOperations.FixedTimeEquals(expectedHash, presentedHash);
    }

    /// <summary>Never shows the secret.</summary>
    public override string ToString() => $"access token ({_bytes.Length} bytes)";
}

/// <summary>A token file or token text that cannot be used; the message says why.</summary>
public sealed class AccessTokenException(string message) : Exception(message);
