using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace RAllocator.Cli.Commands.Ycsb;

/// <summary>
/// The <c>ycsb</c> JSON, source-generated with exactly the options of <see cref="Reporting.CliJsonContext.Output"/>
/// (snake_case, indented, '+' and quotes unescaped). A second context because the System.Text.Json generator
/// cannot take a <c>[JsonSerializable]</c> from another partial declaration of <c>CliJsonContext</c>; moving
/// <c>[JsonSerializable(typeof(YcsbReport))]</c> onto CliJsonContext would retire this one.
/// </summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, WriteIndented = true)]
[JsonSerializable(typeof(YcsbReport))]
internal sealed partial class YcsbJsonContext : JsonSerializerContext
{
    public static YcsbJsonContext Output { get; } = new(new JsonSerializerOptions
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });
}
