namespace RAllocator.Fabric.Tests;

/// <summary>
/// A single-threaded synchronization context that runs posted continuations only when the test pumps it, so a
/// test decides exactly where each <c>await Task.Yield()</c> resumes: a hand-driven stand-in for Coyote's scheduler.
/// </summary>
internal sealed class ManualSynchronizationContext : SynchronizationContext
{
    // Bounds RunAll: a continuation that re-posts itself forever is a bug in the code under test, not a hang.
    private const int MaxContinuations = 10_000;

    private readonly Queue<(SendOrPostCallback Callback, object? State)> _posted = new();

    public int Pending => _posted.Count;

    public override void Post(SendOrPostCallback d, object? state) => _posted.Enqueue((d, state));

    public override void Send(SendOrPostCallback d, object? state) => throw new NotSupportedException("Tests pump posts only.");

    /// <summary>Runs the oldest posted continuation; false when none is pending.</summary>
    public bool RunOne()
    {
        if (!_posted.TryDequeue(out var next))
        {
            return false;
        }

        next.Callback(next.State);
        return true;
    }

    public void RunAll()
    {
        for (var i = 0; i < MaxContinuations; i++)
        {
            if (!RunOne())
            {
                return;
            }
        }

        throw new InvalidOperationException($"More than {MaxContinuations} continuations: something keeps yielding.");
    }

    /// <summary>Installs a context on the current thread and restores the previous one on dispose.</summary>
    public static Installed Install(out ManualSynchronizationContext context)
    {
        context = new ManualSynchronizationContext();
        var previous = Current;
        SetSynchronizationContext(context);
        return new Installed(previous);
    }

    public readonly struct Installed(SynchronizationContext? previous) : IDisposable
    {
        public void Dispose() => SetSynchronizationContext(previous);
    }
}
