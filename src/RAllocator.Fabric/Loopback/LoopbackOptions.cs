namespace RAllocator.Fabric.Loopback;

/// <summary>How a <see cref="LoopbackFabric"/> imitates a real fabric's timing and concurrency.</summary>
public sealed record LoopbackOptions
{
    /// <summary>
    /// Added to every completion a caller waits on (single verbs and signaled batches, never unsignaled posts),
    /// after the verb has taken effect at the blade: other nodes can see a write before its writer learns it landed,
    /// as on hardware. Zero (the default) adds nothing. Below 50 µs the wait spins, because timers cannot resolve
    /// it; above, it uses <see cref="Task.Delay(TimeSpan)"/>. Leave it zero under systematic testing: the scheduler
    /// controls time there, and a spin would only burn real time.
    /// </summary>
    public TimeSpan RoundTripLatency { get; init; }

    /// <summary>
    /// When true, every verb (each verb of a batch too) first does <c>await Task.Yield()</c>. Under Coyote's
    /// rewritten scheduler that makes each verb a scheduling point, so other actors interleave between any two
    /// verbs, exactly where a real fabric lets them. False (the default) runs each call to completion synchronously.
    /// </summary>
    public bool YieldAtEachVerb { get; init; }
}
