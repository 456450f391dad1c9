namespace RAllocator.KeyValue.Ycsb;

/// <summary>Chooses record numbers for a YCSB workload. Implementations are thread-safe unless noted.</summary>
public interface IKeyChooser
{
    /// <summary>The next record number, drawn with <paramref name="random"/> (one per thread).</summary>
    long Next(Random random);
}

/// <summary>Record numbers uniform on [0, count).</summary>
/// <param name="count">Records (at least 1).</param>
public sealed class UniformKeyChooser(long count) : IKeyChooser
{
    /// <inheritdoc />
    public long Next(Random random)
    {
        ArgumentNullException.ThrowIfNull(random);
        return random.NextInt64(count);
    }
}

/// <summary>
/// YCSB's ZipfianGenerator (Gray et al., "Quickly generating billion-record synthetic databases"): item i of
/// [min, max] with probability proportional to 1/(i-min+1)^theta, the most popular being <c>min</c>. The item
/// count may grow (<see cref="Next(Random, long)"/>), updating zeta incrementally as YCSB does.
/// </summary>
public sealed class ZipfianGenerator : IKeyChooser
{
    /// <summary>YCSB's default skew constant.</summary>
    public const double ZipfianConstant = 0.99;

    private readonly object _gate = new();
    private readonly long _base;
    private readonly double _theta;
    private readonly double _zeta2Theta;
    private readonly double _alpha;
    private long _items;
    private long _countForZeta;
    private double _zetaN;
    private double _eta;

    /// <summary>Items in [<paramref name="min"/>, <paramref name="max"/>] with YCSB's skew, <see cref="ZipfianConstant"/>.</summary>
    public ZipfianGenerator(long min, long max)
        : this(min, max, ZipfianConstant)
    {
    }

    /// <summary>Items in [<paramref name="min"/>, <paramref name="max"/>] with skew <paramref name="theta"/>.</summary>
    public ZipfianGenerator(long min, long max, double theta)
        : this(min, max, theta, Zeta(0, max - min + 1, theta, 0))
    {
    }

    /// <summary>As above with a precomputed zeta(n, theta) (YCSB's scrambled generator passes its constant).</summary>
    public ZipfianGenerator(long min, long max, double theta, double zetaN)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(max, min);
        _base = min;
        _items = max - min + 1;
        _theta = theta;
        _zeta2Theta = Zeta(0, 2, theta, 0);
        _alpha = 1.0 / (1.0 - theta);
        _zetaN = zetaN;
        _countForZeta = _items;
        _eta = Eta();
    }

    /// <summary>Items now.</summary>
    public long ItemCount => Interlocked.Read(ref _items);

    /// <summary>zeta(n, theta) = sum over i = 1..n of 1 / i^theta, continued from a sum over the first <paramref name="start"/> items.</summary>
    public static double Zeta(long start, long n, double theta, double initialSum)
    {
        double sum = initialSum;
        for (long i = start; i < n; i++)
        {
            sum += 1 / Math.Pow(i + 1, theta);
        }

        return sum;
    }

    /// <inheritdoc />
    public long Next(Random random) => Next(random, ItemCount);

    /// <summary>The next item among the first <paramref name="itemCount"/> (growing the generator when larger).</summary>
    public long Next(Random random, long itemCount)
    {
        ArgumentNullException.ThrowIfNull(random);
        double zetaN, eta;
        lock (_gate)
        {
            if (itemCount != _countForZeta)
            {
                if (itemCount > _countForZeta)
                {
                    _zetaN = Zeta(_countForZeta, itemCount, _theta, _zetaN);
                }
                else
                {
                    _zetaN = Zeta(0, itemCount, _theta, 0);
                }

                _countForZeta = itemCount;
                _items = itemCount;
                _eta = Eta();
            }

            zetaN = _zetaN;
            eta = _eta;
        }

        double u = random.NextDouble();
        double uz = u * zetaN;
        if (uz < 1.0)
        {
            return _base;
        }

        if (uz < 1.0 + Math.Pow(0.5, _theta))
        {
            return _base + 1;
        }

        long ret = _base + (long)(itemCount * Math.Pow((eta * u) - eta + 1, _alpha));
        return Math.Min(ret, _base + itemCount - 1);
    }

    private double Eta() => (1 - Math.Pow(2.0 / _items, 1 - _theta)) / (1 - (_zeta2Theta / _zetaN));
}

/// <summary>
/// YCSB's ScrambledZipfianGenerator: zipfian popularity (constant 0.99) over a 10^10-item space, hashed (FNV-1a
/// 64) onto [0, count), so popular records are spread over the key space instead of clustered at its start.
/// </summary>
public sealed class ScrambledZipfianKeyChooser : IKeyChooser
{
    /// <summary>YCSB's item space of the underlying generator.</summary>
    public const long ItemSpace = 10_000_000_000L;

    /// <summary>YCSB's precomputed zeta(10^10, 0.99).</summary>
    public const double ZetanForItemSpace = 26.46902820178302;

    private readonly long _count;
    private readonly ZipfianGenerator _zipfian = new(0, ItemSpace - 1, ZipfianGenerator.ZipfianConstant, ZetanForItemSpace);

    /// <summary>Record numbers on [0, <paramref name="count"/>).</summary>
    public ScrambledZipfianKeyChooser(long count)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        _count = count;
    }

    /// <inheritdoc />
    public long Next(Random random) => (long)(Fnv.Hash64((ulong)_zipfian.Next(random)) % (ulong)_count);
}

/// <summary>
/// YCSB's SkewedLatestGenerator: the most recently inserted records are the most popular (zipfian distance back
/// from the latest acknowledged insert).
/// </summary>
/// <param name="latest">The latest acknowledged record number, read at each draw.</param>
public sealed class LatestKeyChooser(Func<long> latest) : IKeyChooser
{
    private readonly ZipfianGenerator _zipfian = new(0, Math.Max(0, latest()));

    /// <inheritdoc />
    public long Next(Random random)
    {
        long max = latest();
        return max - _zipfian.Next(random, max + 1);
    }
}

/// <summary>FNV-1a 64 over the 8 bytes of a number, as YCSB's <c>Utils.fnvhash64</c>.</summary>
public static class Fnv
{
    /// <summary>The hash of <paramref name="value"/>.</summary>
    public static ulong Hash64(ulong value)
    {
        ulong hash = 0xCBF29CE484222325UL;
        for (int i = 0; i < 8; i++)
        {
            ulong octet = value & 0xff;
            value >>= 8;
            hash ^= octet;
            hash *= 1099511628211UL;
        }

        return hash;
    }
}
