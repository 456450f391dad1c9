namespace RAllocator.KeyValue.Ycsb;

/// <summary>How a workload picks the records its reads and updates touch.</summary>
public enum KeyDistribution
{
    /// <summary>Every record equally likely.</summary>
    Uniform,

    /// <summary>YCSB's scrambled zipfian, constant 0.99.</summary>
    Zipfian,

    /// <summary>The most recent inserts most likely (workload D).</summary>
    Latest,
}

/// <summary>An operation of the run phase.</summary>
public enum YcsbOperation
{
    /// <summary>Get one record.</summary>
    Read,

    /// <summary>Replace one record's value.</summary>
    Update,

    /// <summary>Insert a new record (the next record number).</summary>
    Insert,

    /// <summary>Get one record, then replace its value (timed as one operation).</summary>
    ReadModifyWrite,
}

/// <summary>A YCSB core workload: operation proportions and the default key distribution.</summary>
/// <param name="Name">The workload's letter (A, B, C, D, F).</param>
/// <param name="Read">Proportion of reads.</param>
/// <param name="Update">Proportion of updates.</param>
/// <param name="Insert">Proportion of inserts.</param>
/// <param name="ReadModifyWrite">Proportion of read-modify-writes.</param>
/// <param name="Distribution">The default request distribution.</param>
public sealed record YcsbWorkload(string Name, double Read, double Update, double Insert, double ReadModifyWrite, KeyDistribution Distribution)
{
    /// <summary>A: update heavy, 50% reads, 50% updates, zipfian.</summary>
    public static YcsbWorkload A { get; } = new("A", 0.5, 0.5, 0, 0, KeyDistribution.Zipfian);

    /// <summary>B: read mostly, 95% reads, 5% updates, zipfian.</summary>
    public static YcsbWorkload B { get; } = new("B", 0.95, 0.05, 0, 0, KeyDistribution.Zipfian);

    /// <summary>C: read only, zipfian.</summary>
    public static YcsbWorkload C { get; } = new("C", 1.0, 0, 0, 0, KeyDistribution.Zipfian);

    /// <summary>D: read latest, 95% reads, 5% inserts, latest.</summary>
    public static YcsbWorkload D { get; } = new("D", 0.95, 0, 0.05, 0, KeyDistribution.Latest);

    /// <summary>F: read-modify-write, 50% reads, 50% read-modify-writes, zipfian.</summary>
    public static YcsbWorkload F { get; } = new("F", 0.5, 0, 0, 0.5, KeyDistribution.Zipfian);

    /// <summary>The workloads this driver runs, by letter.</summary>
    public static IReadOnlyList<YcsbWorkload> All { get; } = [A, B, C, D, F];

    /// <summary>The workload named <paramref name="name"/> (a letter, any case, optionally prefixed "workload").</summary>
    /// <exception cref="ArgumentException">Not one of A, B, C, D, F.</exception>
    public static YcsbWorkload Parse(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        string letter = name.Trim().ToUpperInvariant();
        if (letter.StartsWith("WORKLOAD", StringComparison.Ordinal))
        {
            letter = letter["WORKLOAD".Length..];
        }

        return All.FirstOrDefault(w => w.Name == letter)
            ?? throw new ArgumentException($"workload '{name}' is not one of A, B, C, D, F (E, scans, is not implemented).", nameof(name));
    }

    /// <summary>The operation for a uniform draw <paramref name="u"/> in [0, 1).</summary>
    public YcsbOperation Choose(double u)
    {
        if (u < Read)
        {
            return YcsbOperation.Read;
        }

        u -= Read;
        if (u < Update)
        {
            return YcsbOperation.Update;
        }

        u -= Update;
        if (u < Insert)
        {
            return YcsbOperation.Insert;
        }

        u -= Insert;
        return u < ReadModifyWrite ? YcsbOperation.ReadModifyWrite : (Read > 0 ? YcsbOperation.Read : YcsbOperation.Update);
    }
}
