using System.Globalization;
using System.Net;

namespace RAllocator.Hosting;

/// <summary>Where a blade server listens: a host name or address and a TCP port (<c>host:port</c>, <c>[v6]:port</c>).</summary>
/// <param name="Host">Host name or IP address.</param>
/// <param name="Port">TCP port, 1–65535 (0 only for a server that asks the system for a free port).</param>
public sealed record BladeEndpoint(string Host, int Port)
{
    /// <summary>Parses <c>host:port</c> or <c>[ipv6]:port</c>.</summary>
    /// <exception cref="FormatException">The text is not of that form; the message says what is wrong.</exception>
    public static BladeEndpoint Parse(string text, bool allowPortZero = false)
    {
        ArgumentNullException.ThrowIfNull(text);
        var trimmed = text.Trim();
        int colon = trimmed.StartsWith('[') ? trimmed.IndexOf("]:", StringComparison.Ordinal) + 1 : trimmed.LastIndexOf(':');
        if (colon <= 0 || colon == trimmed.Length - 1)
        {
            throw new FormatException($"'{text}' is not host:port (for example 127.0.0.1:7070 or [::1]:7070).");
        }

        var host = trimmed[..colon].Trim('[', ']');
        if (host.Length == 0 || (trimmed.StartsWith('[') is false && host.Contains(':', StringComparison.Ordinal)))
        {
            throw new FormatException($"'{text}' is not host:port: write IPv6 addresses in brackets, as [::1]:7070.");
        }

        if (!int.TryParse(trimmed[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port > 65535 || (port == 0 && !allowPortZero))
        {
            throw new FormatException($"'{text}': the port must be a number from {(allowPortZero ? 0 : 1)} to 65535.");
        }

        return new BladeEndpoint(host, port);
    }

    /// <summary>Resolves the host to addresses (IPv4 first).</summary>
    /// <exception cref="System.Net.Sockets.SocketException">The name does not resolve.</exception>
    public async Task<IPAddress[]> ResolveAsync(CancellationToken cancellationToken)
    {
        if (IPAddress.TryParse(Host, out var address))
        {
            return [address];
        }

        var addresses = await Dns.GetHostAddressesAsync(Host, cancellationToken).ConfigureAwait(false);
        return [.. addresses.OrderBy(a => a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6)];
    }

    /// <inheritdoc />
    public override string ToString() => Host.Contains(':', StringComparison.Ordinal) ? $"[{Host}]:{Port}" : $"{Host}:{Port}";
}
