using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using RAllocator.Cli.Commands;

namespace RAllocator.Cli.Reporting;

/// <summary>
/// The JSON the CLI prints, source-generated: snake_case property names derived from the report records, so
/// renaming a record property renames a key (the CLI tests pin the keys).
/// </summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, WriteIndented = true)]
[JsonSerializable(typeof(ImageReport))]
[JsonSerializable(typeof(CheckReport))]
[JsonSerializable(typeof(BenchReport))]
[JsonSerializable(typeof(RemoteBenchReport))]
[JsonSerializable(typeof(YcsbReport))]
[JsonSerializable(typeof(CoordinatorListeningLine))]
[JsonSerializable(typeof(CoordinatorRefreshLine))]
internal sealed partial class CliJsonContext : JsonSerializerContext
{
    /// <summary>
    /// The context the commands print with: as <see cref="JsonSerializerContext"/>'s default, but without escaping
    /// '+' or quotes in paths and backend names ("mmap+msync"); the output goes to terminals and files, not HTML.
    /// </summary>
    public static CliJsonContext Output { get; } = new(new JsonSerializerOptions
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });

    /// <summary>As <see cref="Output"/>, one object per line: for commands that print a stream of JSON lines.</summary>
    public static CliJsonContext Lines { get; } = new(new JsonSerializerOptions
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = false,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });
}
