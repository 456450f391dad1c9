using System.Security.Cryptography;
using System.Text.Json;

namespace RAllocator.Cli.Tests;

/// <summary>One in-process run of <c>rallocator</c>: its exit code and what it wrote to each stream.</summary>
internal sealed record CliRun(int ExitCode, string Out, string Error)
{
    public override string ToString() => $"exit {ExitCode}\n--- stdout ---\n{Out}\n--- stderr ---\n{Error}";

    /// <summary>Stdout parsed as exactly one JSON object (JsonDocument.Parse rejects trailing content).</summary>
    public JsonElement Json()
    {
        using var document = JsonDocument.Parse(Out);
        document.RootElement.ValueKind.ShouldBe(JsonValueKind.Object, "stdout must be one JSON object");
        return document.RootElement.Clone();
    }
}

internal static class Cli
{
    public static async Task<CliRun> RunAsync(params string[] args)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        int exitCode = await Program.RunAsync(args, stdout, stderr);
        return new CliRun(exitCode, stdout.ToString(), stderr.ToString());
    }

    public static string Sha256(string path) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path)));
}
