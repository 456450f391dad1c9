using System.Globalization;

namespace RAllocator.Cli;

/// <summary>
/// Byte sizes as people type them, with the units of coreutils (<c>truncate -s</c>, <c>dd</c>): a bare number is
/// bytes; <c>K M G T</c> and <c>KiB MiB GiB TiB</c> are powers of 1024; <c>KB MB GB TB</c> are powers of 1000;
/// a trailing <c>B</c> alone means bytes. Units are case-insensitive; no fractions, no signs, no spaces inside.
/// </summary>
internal static class ByteSize
{
    /// <summary>The accepted forms, for error messages and help.</summary>
    public const string Forms =
        "a whole number of bytes with an optional unit: K, KiB, M, MiB, G, GiB, T, TiB (powers of 1024) or KB, MB, GB, TB (powers of 1000), e.g. 4096, 64KiB, 64MiB, 1GiB, 2TiB";

    // Longest suffixes first, so "KiB" is not read as "K" followed by junk.
    private static readonly (string Suffix, ulong Multiplier)[] s_units =
    [
        ("KiB", 1UL << 10), ("MiB", 1UL << 20), ("GiB", 1UL << 30), ("TiB", 1UL << 40),
        ("KB", 1_000UL), ("MB", 1_000_000UL), ("GB", 1_000_000_000UL), ("TB", 1_000_000_000_000UL),
        ("K", 1UL << 10), ("M", 1UL << 20), ("G", 1UL << 30), ("T", 1UL << 40),
        ("B", 1UL),
    ];

    /// <summary>Parses <paramref name="text"/>; on failure <paramref name="error"/> says why.</summary>
    public static bool TryParse(string? text, out ulong bytes, out string? error)
    {
        bytes = 0;
        string value = text?.Trim() ?? string.Empty;
        if (value.Length == 0)
        {
            error = "an empty size";
            return false;
        }

        int digits = 0;
        while (digits < value.Length && char.IsAsciiDigit(value[digits]))
        {
            digits++;
        }

        if (digits == 0)
        {
            error = $"'{text}' does not start with a whole number";
            return false;
        }

        if (!ulong.TryParse(value.AsSpan(0, digits), NumberStyles.None, CultureInfo.InvariantCulture, out ulong number))
        {
            error = $"'{text}' is too large";
            return false;
        }

        string suffix = value[digits..];
        ulong multiplier = 1;
        if (suffix.Length > 0)
        {
            var unit = s_units.FirstOrDefault(u => string.Equals(u.Suffix, suffix, StringComparison.OrdinalIgnoreCase));
            if (unit.Suffix is null)
            {
                error = $"'{text}' has an unknown unit '{suffix}'";
                return false;
            }

            multiplier = unit.Multiplier;
        }

        try
        {
            bytes = checked(number * multiplier);
        }
        catch (OverflowException)
        {
            error = $"'{text}' is too large";
            return false;
        }

        error = null;
        return true;
    }

    /// <summary>Formats <paramref name="bytes"/> exactly when it is a whole number of KiB/MiB/GiB/TiB, else with one decimal.</summary>
    public static string Format(ulong bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
        int unit = 0;
        double value = bytes;
        while (value >= 1024 && unit < units.Length - 1)
        {
            value /= 1024;
            unit++;
        }

        if (unit == 0)
        {
            return $"{bytes} B";
        }

        bool exact = bytes % (1UL << (10 * unit)) == 0;
        return exact
            ? string.Create(CultureInfo.InvariantCulture, $"{bytes >> (10 * unit)} {units[unit]}")
            : string.Create(CultureInfo.InvariantCulture, $"{value:0.0} {units[unit]}");
    }

    /// <summary><see cref="Format(ulong)"/> for a signed count.</summary>
    public static string Format(long bytes) => bytes < 0 ? $"-{Format((ulong)-bytes)}" : Format((ulong)bytes);
}
