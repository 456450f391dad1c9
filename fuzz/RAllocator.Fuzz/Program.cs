using RAllocator.Fuzz;
using SharpFuzz;

// Usage: RAllocator.Fuzz TARGET            (under afl-fuzz, after `sharpfuzz` instrumentation; see fuzz/README.md)
//        RAllocator.Fuzz TARGET FILE...    (replay inputs, e.g. a crash AFL found)
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

Fuzzer.OutOfProcess.Run(stream =>
{
    using var buffer = new MemoryStream();
    stream.CopyTo(buffer);
    target(buffer.ToArray());
});
return 0;
