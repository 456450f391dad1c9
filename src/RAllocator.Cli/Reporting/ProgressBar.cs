using System.Diagnostics;
using System.Globalization;

namespace RAllocator.Cli.Reporting;

/// <summary>
/// A one-line progress bar on stderr, drawn only when stderr is a terminal, only for work that has already taken a
/// second (short runs stay silent), at most ten times a second, and erased when done so nothing is left in logs.
/// </summary>
internal sealed class ProgressBar : IDisposable
{
    private const int Width = 30;
    private static readonly long s_quietTicks = Stopwatch.Frequency;
    private static readonly long s_redrawTicks = Stopwatch.Frequency / 10;

    private readonly TextWriter _error;
    private readonly bool _enabled;
    private readonly long _started = Stopwatch.GetTimestamp();
    private readonly Lock _gate = new();
    private long _lastDrawn;
    private bool _drawn;
    private string _label;
    private long _total;

    public ProgressBar(TextWriter error, string label, long total, bool enabled)
    {
        _error = error;
        _label = label;
        _total = Math.Max(1, total);
        _enabled = enabled && ReferenceEquals(error, Console.Error) && !Console.IsErrorRedirected;
    }

    /// <summary>Starts a new stage with its own label and total.</summary>
    public void Stage(string label, long total)
    {
        lock (_gate)
        {
            _label = label;
            _total = Math.Max(1, total);
        }
    }

    /// <summary>Reports <paramref name="done"/> of the stage's total.</summary>
    public void Report(long done)
    {
        if (!_enabled)
        {
            return;
        }

        var now = Stopwatch.GetTimestamp();
        if (now - _started < s_quietTicks || now - Volatile.Read(ref _lastDrawn) < s_redrawTicks)
        {
            return;
        }

        lock (_gate)
        {
            _lastDrawn = now;
            var fraction = Math.Clamp(done / (double)_total, 0, 1);
            var filled = (int)(fraction * Width);
            _error.Write(string.Create(CultureInfo.InvariantCulture, $"\r{_label,-22} [{new string('#', filled)}{new string('.', Width - filled)}] {fraction,6:P1}"));
            _error.Flush();
            _drawn = true;
        }
    }

    /// <summary>Erases the bar (idempotent).</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_drawn)
            {
                _error.Write("\r" + new string(' ', Width + 34) + "\r");
                _error.Flush();
                _drawn = false;
            }
        }
    }
}
