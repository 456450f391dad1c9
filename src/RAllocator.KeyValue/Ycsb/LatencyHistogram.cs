namespace RAllocator.KeyValue.Ycsb;

/// <summary>
/// Latencies in nanoseconds, log-linear buckets (128 per power of two above 128 ns, so a percentile is within
/// 0.8% of the recorded value). Not thread-safe: one per thread, merged at the end.
/// </summary>
public sealed class LatencyHistogram
{
    private const int SubBits = 7;
    private const int Sub = 1 << SubBits;
    private readonly long[] _counts = new long[(64 - SubBits + 1) * Sub];
    private long _sum;
    private long _max;

    /// <summary>Values recorded.</summary>
    public long Count { get; private set; }

    /// <summary>Mean of the recorded values.</summary>
    public double Mean => Count == 0 ? 0 : _sum / (double)Count;

    /// <summary>Largest recorded value.</summary>
    public long Max => _max;

    /// <summary>Records one latency.</summary>
    public void Record(long nanoseconds)
    {
        long v = Math.Max(0, nanoseconds);
        _counts[Index(v)]++;
        _sum += v;
        _max = Math.Max(_max, v);
        Count++;
    }

    /// <summary>Adds another histogram's values.</summary>
    public void Add(LatencyHistogram other)
    {
        ArgumentNullException.ThrowIfNull(other);
        for (int i = 0; i < _counts.Length; i++)
        {
            _counts[i] += other._counts[i];
        }

        _sum += other._sum;
        _max = Math.Max(_max, other._max);
        Count += other.Count;
    }

    /// <summary>The value at <paramref name="quantile"/> (0..1): the upper bound of its bucket, at most <see cref="Max"/>.</summary>
    public long Percentile(double quantile)
    {
        if (Count == 0)
        {
            return 0;
        }

        long rank = Math.Max(1, (long)Math.Ceiling(quantile * Count));
        long seen = 0;
        for (int i = 0; i < _counts.Length; i++)
        {
            seen += _counts[i];
            if (seen >= rank)
            {
                return Math.Min(UpperBound(i), _max);
            }
        }

        return _max;
    }

    private static int Index(long v)
    {
        if (v < Sub)
        {
            return (int)v;
        }

        // v in [2^msb, 2^(msb+1)): 128 buckets of width 2^(msb-7).
        int shift = 63 - System.Numerics.BitOperations.LeadingZeroCount((ulong)v) - SubBits;
        return ((shift + 1) * Sub) + (int)(v >> shift) - Sub;
    }

    private static long UpperBound(int index)
    {
        if (index < Sub)
        {
            return index;
        }

        int shift = (index / Sub) - 1;
        long mantissa = (index % Sub) + Sub;
        return ((mantissa + 1) << shift) - 1;
    }
}
