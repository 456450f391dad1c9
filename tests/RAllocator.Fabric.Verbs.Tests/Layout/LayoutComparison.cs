namespace RAllocator.Fabric.Verbs.Tests.Layout;

/// <summary>
/// Compares the probe's lines (what gcc computes from the header) with the bindings' lines (what the runtime computes
/// for the generated structs). Lines are "layout KEY OFFSET SIZE", "enum NAME SIZE" or "value MEMBER VALUE".
/// </summary>
internal static class LayoutComparison
{
    /// <summary>Every difference, one sentence each naming the member, the header's numbers and the bindings'.</summary>
    public static IReadOnlyList<string> Compare(IReadOnlyList<string> header, IReadOnlyList<string> bindings)
    {
        var expected = Index(header, "probe");
        var actual = Index(bindings, "bindings");
        var differences = new List<string>();
        foreach (var (key, value) in expected)
        {
            if (!actual.TryGetValue(key, out string? bound))
            {
                differences.Add($"{key}: the probe printed it ({Describe(key, value)}) but the bindings do not measure it");
            }
            else if (bound != value)
            {
                differences.Add($"{key}: header has {Describe(key, value)}, bindings have {Describe(key, bound)}");
            }
        }

        foreach (var key in actual.Keys.Where(k => !expected.ContainsKey(k)))
        {
            differences.Add($"{key}: the bindings measure it ({Describe(key, actual[key])}) but the probe did not print it");
        }

        return differences;
    }

    private static Dictionary<string, string> Index(IReadOnlyList<string> lines, string source)
    {
        var index = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string line in lines)
        {
            string[] parts = line.Split(' ', 3);
            if (parts.Length != 3)
            {
                throw new FormatException($"{source} line '{line}' is not 'kind key values'");
            }

            index.Add($"{parts[0]} {parts[1]}", parts[2]);
        }

        return index;
    }

    private static string Describe(string key, string value)
    {
        if (key.StartsWith("layout ", StringComparison.Ordinal))
        {
            string[] numbers = value.Split(' ');
            return $"offset {numbers[0]} size {numbers[1]}";
        }

        return key.StartsWith("enum ", StringComparison.Ordinal) ? $"size {value}" : $"value {value}";
    }
}
