using System.Runtime.InteropServices;
using RAllocator.Fuzz;
using SharpFuzz;

// Usage: dotnet RAllocator.Fuzz.dll TARGET         (under afl-fuzz, after `sharpfuzz` instrumentation; see fuzz/README.md)
//        dotnet RAllocator.Fuzz.dll TARGET FILE... (replay inputs, e.g. a crash AFL found)
//
// The RAllocator assemblies in the published directory are instrumented: every branch writes into
// SharpFuzz.Common.Trace.SharedMem, a byte* that is null until Fuzzer.*.Run attaches AFL's shared memory. Code that
// runs before that (FuzzTargets' static initializer builds BladeFormatOptions; the replay path runs the targets)
// would dereference null and abort the process (afl-fuzz: "Fork server crashed with signal 6"). So point the
// trace at a private scratch map first; under afl-fuzz, Fuzzer.OutOfProcess.Run replaces it with the real one.
unsafe
{
    SharpFuzz.Common.Trace.SharedMem = (byte*)NativeMemory.AllocZeroed(1 << 16);
}

if (args.Length == 0 || !FuzzTargets.All.TryGetValue(args[0], out var target))
{
    Console.Error.WriteLine($"usage: RAllocator.Fuzz TARGET [FILE...]; targets: {string.Join(", ", FuzzTargets.All.Keys)}");
    return 2;
}

if (args.Length > 1)
{
    foreach (var file in args.Skip(1))
    {
        target(File.ReadAllBytes(file));
        Console.WriteLine($"{file}: ok");
    }

    return 0;
}

// OutOfProcess: the process afl-fuzz starts is only the fork server; it runs each input in a child started as
// `dotnet <Environment.CommandLine>`, so afl-fuzz must start it as `dotnet RAllocator.Fuzz.dll TARGET` (not the
// apphost), and a hang or an uncatchable crash (stack overflow) costs a child restart, not the campaign.
Fuzzer.OutOfProcess.Run(stream =>
{
    using var buffer = new MemoryStream();
    stream.CopyTo(buffer);
    target(buffer.ToArray());
});
return 0;
