using System.Globalization;

namespace RAllocator.Hosting;

/// <summary>
/// CPU time read from Linux /proc: what the blade's CPU spent, counted honestly rather than assumed. Returns
/// <see cref="TimeSpan.Zero"/> where /proc is absent (the figure is then reported as unavailable by callers).
/// </summary>
public static class CpuClocks
{
    /// <summary>True when /proc is available to read CPU times from.</summary>
    public static bool Available => Directory.Exists("/proc/self/task");

    /// <summary>The calling thread's kernel thread id (from /proc/thread-self), or -1 without /proc.</summary>
    public static int CurrentThreadId()
    {
        try
        {
            var target = new DirectoryInfo("/proc/thread-self").ResolveLinkTarget(false)?.Name;
            return int.TryParse(target, NumberStyles.None, CultureInfo.InvariantCulture, out var tid) ? tid : -1;
        }
        catch (IOException)
        {
            return -1;
        }
    }

    /// <summary>CPU time a thread of this process has run (nanosecond resolution, from schedstat).</summary>
    public static TimeSpan ThreadCpuTime(int threadId)
    {
        if (threadId <= 0)
        {
            return TimeSpan.Zero;
        }

        try
        {
            var fields = File.ReadAllText($"/proc/self/task/{threadId}/schedstat").Split(' ');
            return TimeSpan.FromTicks(long.Parse(fields[0], CultureInfo.InvariantCulture) / 100);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException)
        {
            return TimeSpan.Zero;
        }
    }

    /// <summary>User plus system CPU time of a whole process (clock-tick resolution, from /proc/PID/stat).</summary>
    public static TimeSpan ProcessCpuTime(int processId)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{processId}/stat");
            // The command name is parenthesised and may contain spaces: fields are counted after its ')'.
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            var ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
            return TimeSpan.FromSeconds(ticks / (double)ClockTicksPerSecond);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return TimeSpan.Zero;
        }
    }

    // sysconf(_SC_CLK_TCK) is 100 on every Linux architecture .NET runs on.
    private const int ClockTicksPerSecond = 100;
}
