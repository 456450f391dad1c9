using System.Security.Cryptography;
using System.Text;
using RAllocator.Cli;

namespace RAllocator.Fuzz;

public static partial class FuzzTargets
{
    /// <summary>Commands the "cli" target runs; the others (demo, bench, serve, coordinator, ycsb) are parsed only.</summary>
    private static readonly HashSet<string> s_runnable = ["format", "inspect", "check"];

    private const ulong MaxFormatBytes = 64UL << 20;

    /// <summary>
    /// Arbitrary bytes as a command line (newline-separated arguments) of the <c>rallocator</c> CLI, run in-process
    /// against a fresh temp directory holding a valid image <c>blade.img</c>. Every argument that could name a
    /// file is mapped into that directory, so nothing outside it is touched. The promise: an exit code of 0, 1
    /// or 2, an "error:" line on stderr for 1 and 2, no exception out of <c>Program.RunAsync</c>, and an
    /// unchanged image after <c>inspect</c> and <c>check</c>. Commands that run for long (serve, coordinator,
    /// bench, demo, ycsb) are parsed, not run: parsing must not throw either.
    /// </summary>
    public static void RunCommandLine(byte[] input)
    {
        var tokens = Encoding.UTF8.GetString(input).Split('\n').Take(12).Select(t => t.Length > 80 ? t[..80] : t).ToArray();
        string sandbox = Path.Combine(Path.GetTempPath(), "rallocator-fuzz-cli", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(sandbox);
        try
        {
            string image = Path.Combine(sandbox, "blade.img");
            File.WriteAllBytes(image, s_areasTemplate.Value);
            byte[] imageHash = SHA256.HashData(File.ReadAllBytes(image));
            string? command = tokens.FirstOrDefault(t => !t.StartsWith('-'));
            var args = tokens.Select(t => Sandbox(t, sandbox)).ToArray();
            var stdout = new StringWriter();
            var stderr = new StringWriter();

            if (command is null || !s_runnable.Contains(command) || args.Contains("--help") || args.Contains("-h") || args.Contains("-?"))
            {
                // Parse only: the parser sees the arguments as given, except response files ("@path", which
                // System.CommandLine reads while parsing) mapped into the sandbox. Program.RunAsync turns any exception
                // out of Parse into exit 2 "error: the command line could not be parsed" (e.g. a NUL in "@path":
                // ArgumentException), so the same exception here is that handled outcome, not a finding
                // (fuzz/regressions/cli/crashes-*, fuzz/README.md).
                try
                {
                    RAllocator.Cli.Program.BuildRootCommand(new CliContext(stdout, stderr))
                        .Parse(tokens.Select(t => t.StartsWith('@') ? "@" + Path.Combine(sandbox, Path.GetFileName(Sandbox(t[1..], sandbox))) : t).ToArray());
                }
                catch (Exception)
                {
                    // RunAsync: catch (Exception) around root.Parse(args) -> ExitCodes.Usage.
                }

                return;
            }

            int exit = RAllocator.Cli.Program.RunAsync(args, stdout, stderr).GetAwaiter().GetResult();
            if (exit is not (0 or 1 or 2))
            {
                throw new FuzzFindingException($"exit code {exit} for [{string.Join(' ', args)}]");
            }

            if (exit != 0 && !stderr.ToString().Contains("error:", StringComparison.Ordinal))
            {
                throw new FuzzFindingException($"exit code {exit} without an 'error:' line for [{string.Join(' ', args)}]: {stderr}");
            }

            if (command is "inspect" or "check" && File.Exists(image) && !SHA256.HashData(File.ReadAllBytes(image)).AsSpan().SequenceEqual(imageHash))
            {
                throw new FuzzFindingException($"'{command}' changed the image it looked at: [{string.Join(' ', args)}]");
            }
        }
        finally
        {
            Directory.Delete(sandbox, recursive: true);
        }
    }

    /// <summary>
    /// Maps an argument into the sandbox: options stay, sizes and numbers stay (sizes above 64MiB are clamped so
    /// the harness never writes a large file), command names stay, anything else becomes a file name inside the
    /// sandbox (separators and dots replaced), so a path can never leave it.
    /// </summary>
    private static string Sandbox(string token, string sandbox)
    {
        if (token.StartsWith('-') && !token.Contains('/') && !token.Contains('\\') && !token.Contains('='))
        {
            return token;
        }

        if (s_runnable.Contains(token) || token is "demo" or "bench" or "serve" or "coordinator" or "ycsb")
        {
            return token;
        }

        if (ByteSize.TryParse(token, out ulong bytes, out _))
        {
            return bytes > MaxFormatBytes ? "64MiB" : token;
        }

        var name = new StringBuilder();
        foreach (char c in token)
        {
            name.Append(char.IsLetterOrDigit(c) || c is '_' or '-' ? c : '_');
        }

        return Path.Combine(sandbox, name.Length == 0 ? "empty" : name.ToString());
    }
}
