using System.Globalization;

namespace RAllocator.Benchmarks.Quick;

/// <summary><c>--name value</c> options and <c>--json</c> for the quick modes.</summary>
internal sealed class QuickOptions
{
    private readonly Dictionary<string, string> _values = new(StringComparer.Ordinal);

    public bool Json { get; private set; }

    public static QuickOptions Parse(IEnumerable<string> args)
    {
        var options = new QuickOptions();
        using var e = args.GetEnumerator();
        while (e.MoveNext())
        {
            string arg = e.Current;
            if (arg == "--json")
            {
                options.Json = true;
            }
            else if (arg.StartsWith("--", StringComparison.Ordinal) && e.MoveNext())
            {
                options._values[arg[2..]] = e.Current;
            }
            else
            {
                throw new ArgumentException($"unexpected argument '{arg}': options are --name value, or --json.");
            }
        }

        return options;
    }

    public string String(string name, string fallback) => _values.GetValueOrDefault(name, fallback);

    public int Int(string name, int fallback) => _values.TryGetValue(name, out string? v) ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;

    public long Long(string name, long fallback) => _values.TryGetValue(name, out string? v) ? long.Parse(v, CultureInfo.InvariantCulture) : fallback;

    /// <summary>
    /// Writes a mode's result to <c>--out</c> (default <c>bench/results/MODE.json</c>), indented, and echoes it: the
    /// form scripts/plot-results.py reads.
    /// </summary>
    public int WriteResult(System.Text.Json.Nodes.JsonObject result, string mode)
    {
        string output = String("out", $"bench/results/{mode}.json");
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(output))!);
        string text = result.ToJsonString(s_indented);
        File.WriteAllText(output, text + "\n");
        Console.WriteLine(text);
        return 0;
    }

    private static readonly System.Text.Json.JsonSerializerOptions s_indented = new()
    {
        WriteIndented = true,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };
}
