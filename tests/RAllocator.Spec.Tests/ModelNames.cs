using System.Text.RegularExpressions;

namespace RAllocator.Spec.Tests;

/// <summary>Reads the names of states and transitions, and the transition table, out of the Promela model's text.</summary>
public static partial class ModelNames
{
    /// <summary>The members of <c>mtype:<paramref name="name"/> = { ... }</c>, in order.</summary>
    public static IReadOnlyList<string> Mtype(string model, string name)
    {
        var match = Regex.Match(model, @"mtype\s*:\s*" + Regex.Escape(name) + @"\s*=\s*\{(?<members>[^}]*)\}");
        if (!match.Success)
        {
            throw new InvalidOperationException($"the model declares no 'mtype:{name} = {{ ... }}'");
        }

        return match.Groups["members"].Value
            .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .ToArray();
    }

    /// <summary>The (from, transition, to) triples of the model's LEGAL macro (SlabAcquisitionMachine's table).</summary>
    public static IReadOnlyList<(string From, string Via, string To)> Transitions(string model)
    {
        int start = model.IndexOf("#define LEGAL(", StringComparison.Ordinal);
        if (start < 0)
        {
            throw new InvalidOperationException("the model has no '#define LEGAL(f, t, x)' transition table");
        }

        // The macro runs over continuation lines ending in a backslash.
        var lines = new List<string>();
        foreach (var line in model[start..].Split('\n'))
        {
            lines.Add(line);
            if (!line.TrimEnd().EndsWith('\\'))
            {
                break;
            }
        }

        return Triple().Matches(string.Join('\n', lines))
            .Select(m => (m.Groups["f"].Value, m.Groups["t"].Value, m.Groups["x"].Value))
            .ToArray();
    }

    [GeneratedRegex(@"\(f\s*==\s*(?<f>\w+)\s*&&\s*t\s*==\s*(?<t>\w+)\s*&&\s*x\s*==\s*(?<x>\w+)\)")]
    private static partial Regex Triple();
}
