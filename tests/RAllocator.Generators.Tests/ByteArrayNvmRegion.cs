using System.Buffers.Binary;
using RAllocator.Nvm;

namespace RAllocator.Generators.Tests;

/// <summary>
/// A byte[]-backed <see cref="INvmRegion"/> for tests. No crash model: every store is immediately "durable";
/// it records each operation (so tests can see whether a field went through the 8-byte word path or a byte
/// copy) and each persisted range. It enforces the interface's range and alignment rules.
/// </summary>
internal sealed class ByteArrayNvmRegion(int lengthBytes) : INvmRegion
{
    private readonly object _lock = new();

    public byte[] Bytes { get; } = new byte[lengthBytes];

    public List<string> Operations { get; } = [];

    public List<(long Offset, long Length)> Persisted { get; } = [];

    public long Length => Bytes.Length;

    public NvmPersistenceDomain PersistenceDomain => NvmPersistenceDomain.Simulated;

    public string Description => $"byte[{Bytes.Length}] test region";

    public ulong LoadUInt64(long offset)
    {
        lock (_lock)
        {
            Log($"Load@{offset}");
            return BinaryPrimitives.ReadUInt64LittleEndian(Word(offset));
        }
    }

    public void StoreUInt64(long offset, ulong value)
    {
        lock (_lock)
        {
            Log($"Store@{offset}");
            BinaryPrimitives.WriteUInt64LittleEndian(Word(offset), value);
        }
    }

    public ulong CompareExchangeUInt64(long offset, ulong expected, ulong desired)
    {
        lock (_lock)
        {
            Log($"CompareExchange@{offset}");
            var word = Word(offset);
            ulong found = BinaryPrimitives.ReadUInt64LittleEndian(word);
            if (found == expected)
            {
                BinaryPrimitives.WriteUInt64LittleEndian(word, desired);
            }

            return found;
        }
    }

    public ulong FetchAddUInt64(long offset, ulong delta)
    {
        lock (_lock)
        {
            Log($"FetchAdd@{offset}");
            var word = Word(offset);
            ulong found = BinaryPrimitives.ReadUInt64LittleEndian(word);
            BinaryPrimitives.WriteUInt64LittleEndian(word, unchecked(found + delta));
            return found;
        }
    }

    public void Read(long offset, Span<byte> destination)
    {
        lock (_lock)
        {
            Log($"Read@{offset}+{destination.Length}");
            Range(offset, destination.Length).CopyTo(destination);
        }
    }

    public void Write(long offset, ReadOnlySpan<byte> source)
    {
        lock (_lock)
        {
            Log($"Write@{offset}+{source.Length}");
            source.CopyTo(Range(offset, source.Length));
        }
    }

    public void Persist(long offset, long length)
    {
        lock (_lock)
        {
            _ = Range(offset, length);
            Persisted.Add((offset, length));
        }
    }

    public void Dispose()
    {
    }

    private void Log(string operation) => Operations.Add(operation);

    private Span<byte> Word(long offset)
    {
        var word = Range(offset, sizeof(ulong));
        if ((offset & 7) != 0)
        {
            throw new NvmAlignmentException(offset);
        }

        return word;
    }

    private Span<byte> Range(long offset, long length)
    {
        if (offset < 0 || length < 0 || offset > Bytes.Length || length > Bytes.Length - offset)
        {
            throw new ArgumentOutOfRangeException(nameof(offset), offset, $"[{offset}, +{length}) is outside {Bytes.Length} bytes");
        }

        return Bytes.AsSpan((int)offset, (int)length);
    }
}
