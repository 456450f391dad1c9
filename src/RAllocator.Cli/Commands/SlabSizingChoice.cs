using System.CommandLine;
using System.Globalization;
using System.Numerics;
using RAllocator.Node;
using RAllocator.Protocol.Layout;

namespace RAllocator.Cli.Commands;

/// <summary>
/// <c>--slab-sizing fixed|fixed:N|adaptive</c>: how a working node sizes the slabs it acquires
/// (<see cref="HeapOptions.SlabSizing"/>). <c>fixed</c> is <c>fixed:1</c> (base slabs, the library's default);
/// <c>fixed:N</c> takes slabs of N base slabs (a power of two up to the blade's maximum span); <c>adaptive</c> is
/// <see cref="AdaptiveSlabSizing"/> (spec/slab-sizing.md).
/// </summary>
/// <param name="FixedSpan">Base slabs per slab for a fixed size; null for adaptive.</param>
internal sealed record SlabSizingChoice(uint? FixedSpan)
{
    /// <summary>The maximum span <c>bench</c> formats its blade with for <c>adaptive</c> unless <c>--max-span</c> says otherwise.</summary>
    public const uint AdaptiveDefaultMaxSpan = 16;

    /// <summary>The forms the option accepts, for help and errors.</summary>
    public const string Forms = "fixed, fixed:N (N base slabs per slab: 1, 2, 4 ... 64) or adaptive";

    /// <summary>The library's default: base slabs.</summary>
    public static SlabSizingChoice Default { get; } = new((uint?)1);

    /// <summary>The canonical name: <c>fixed:N</c> or <c>adaptive</c>.</summary>
    public string Name => FixedSpan is { } span ? $"fixed:{span}" : "adaptive";

    /// <summary>The smallest maximum span that serves this choice when <c>--max-span</c> is not given.</summary>
    public uint DefaultMaxSpan => FixedSpan ?? AdaptiveDefaultMaxSpan;

    /// <summary>The policy for the heap.</summary>
    public ISlabSizingPolicy Policy => FixedSpan is { } span ? new FixedSlabSizing(BitOperations.Log2(span)) : new AdaptiveSlabSizing();

    /// <summary>Parses <paramref name="text"/>; on failure <paramref name="error"/> names the option and the accepted forms.</summary>
    public static bool TryParse(string text, out SlabSizingChoice choice, out string? error)
    {
        choice = Default;
        error = null;
        string value = text.Trim().ToLowerInvariant();
        if (value == "adaptive")
        {
            choice = new SlabSizingChoice((uint?)null);
            return true;
        }

        if (value == "fixed")
        {
            return true;
        }

        if (value.StartsWith("fixed:", StringComparison.Ordinal)
            && uint.TryParse(value.AsSpan("fixed:".Length), NumberStyles.None, CultureInfo.InvariantCulture, out uint span)
            && BitOperations.IsPow2(span) && span <= BladeGeometry.MaxSlabSpanLimit)
        {
            choice = new SlabSizingChoice(span);
            return true;
        }

        error = $"--slab-sizing '{text}' is invalid: expected {Forms}.";
        return false;
    }

    /// <summary>The <c>--slab-sizing</c> option, validated (an error names the option and the accepted forms).</summary>
    public static Option<string> CreateOption()
    {
        var option = new Option<string>("--slab-sizing")
        {
            Description = "How the working node sizes its slabs: fixed (base slabs), fixed:N (slabs of N base slabs, a power of two up to --max-span) "
                + "or adaptive (small slabs first, doubled for a class that uses them up; spec/slab-sizing.md).",
            HelpName = "fixed|fixed:N|adaptive",
            DefaultValueFactory = _ => "fixed",
        };
        option.Validators.Add(result =>
        {
            if (result.Tokens.Count > 0 && !TryParse(result.Tokens[0].Value, out _, out string? error))
            {
                result.AddError(error!);
            }
        });
        return option;
    }
}
