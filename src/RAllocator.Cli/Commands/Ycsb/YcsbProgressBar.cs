using System.Diagnostics;
using System.Globalization;
using RAllocator.KeyValue.Ycsb;

namespace RAllocator.Cli.Commands.Ycsb;

/// <summary>
/// A one-line progress bar on stderr, redrawn in place, shown only when stderr is a terminal and only once a phase
/// has run for a second; erased when the phase ends, so nothing of it stays in the output.
/// </summary>
internal sealed class YcsbProgressBar(TextWriter error, bool enabled) : IProgress<YcsbProgress>
{
    private const int Width = 30;
    private readonly Stopwatch _sinceDraw = Stopwatch.StartNew();
    private bool _drawn;

    /// <summary>A bar for <paramref name="error"/>: enabled when it is the process's stderr and that is a terminal.</summary>
    public static YcsbProgressBar For(TextWriter error) => new(error, ReferenceEquals(error, Console.Error) && !Console.IsErrorRedirected);

    public void Report(YcsbProgress value)
    {
        if (!enabled)
        {
            return;
        }

        if (value.Done >= value.Total)
        {
            if (_drawn)
            {
                error.Write("\r" + new string(' ', Width + 60) + "\r");
                error.Flush();
                _drawn = false;
            }

            return;
        }

        if (value.Elapsed < TimeSpan.FromSeconds(1) || (_drawn && _sinceDraw.ElapsedMilliseconds < 200))
        {
            return;
        }

        double fraction = value.Total == 0 ? 1 : (double)value.Done / value.Total;
        int filled = (int)(fraction * Width);
        double rate = value.Done / Math.Max(value.Elapsed.TotalSeconds, 1e-9);
        error.Write(string.Create(CultureInfo.InvariantCulture,
            $"\r{value.Phase,-4} [{new string('#', filled)}{new string('.', Width - filled)}] {fraction * 100,5:0.0}% {value.Done}/{value.Total} {rate:0} ops/s   "));
        error.Flush();
        _drawn = true;
        _sinceDraw.Restart();
    }
}
