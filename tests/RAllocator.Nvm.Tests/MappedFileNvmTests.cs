using System.Diagnostics;
using System.Security.Cryptography;

namespace RAllocator.Nvm.Tests;

public sealed class MappedFileNvmTests : IDisposable
{
    private const long Gibibyte = 1L << 30;

    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    /// <summary>Backend names for theories (the request enum is internal, so it cannot be a test parameter).</summary>
    public static TheoryData<string> Backends => new() { MappedFileNvm.LibpmemBackend, MappedFileNvm.MsyncBackend };

    private static NvmBackendRequest Request(string backend)
    {
        Assert.SkipWhen(
            backend == MappedFileNvm.LibpmemBackend && !NvmRegions.IsLibpmemAvailable,
            $"libpmem backend not testable: {NvmRegions.LibpmemUnavailableReason}");
        return backend == MappedFileNvm.LibpmemBackend ? NvmBackendRequest.Libpmem : NvmBackendRequest.Msync;
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void PersistedDataSurvivesDisposeAndReopen(string backendName)
    {
        var backend = Request(backendName);
        string path = _directory.File("image.nvm");
        var payload = RandomNumberGenerator.GetBytes(1000);

        using (var region = MappedFileNvm.Create(path, 64 * 1024, backend))
        {
            region.StoreUInt64(0, 0x5EED_0000_0000_0001);
            region.FetchAddUInt64(8, 41);
            region.CompareExchangeUInt64(16, 0, 7);
            region.Write(40_001, payload);
            region.Persist(0, 24);
            region.Persist(40_001, payload.Length);
        }

        // Reopen with both backends: the image is an ordinary file, whichever backend wrote it.
        foreach (var reopenWith in new[] { NvmBackendRequest.Auto, NvmBackendRequest.Msync })
        {
            using var reopened = MappedFileNvm.Open(path, NvmAccess.ReadWrite, reopenWith);
            reopened.Length.ShouldBe(64 * 1024, "reopening maps the whole file");
            reopened.LoadUInt64(0).ShouldBe(0x5EED_0000_0000_0001UL, "a persisted store survives dispose and reopen");
            reopened.LoadUInt64(8).ShouldBe(41UL, "a persisted fetch-add survives dispose and reopen");
            reopened.LoadUInt64(16).ShouldBe(7UL, "a persisted CAS survives dispose and reopen");
            var back = new byte[payload.Length];
            reopened.Read(40_001, back);
            back.ShouldBe(payload, "persisted bulk bytes survive dispose and reopen");
        }

        var fileBytes = File.ReadAllBytes(path);
        BitConverter.ToUInt64(fileBytes, 0).ShouldBe(0x5EED_0000_0000_0001UL, "the file itself holds the persisted little-endian word");
    }

    [Fact]
    public void TheLibpmemBackendIsChosenWhenLibpmemLoadsAndPersistsWithMsyncOffRealPmem()
    {
        Assert.SkipUnless(NvmRegions.IsLibpmemAvailable, $"libpmem not available: {NvmRegions.LibpmemUnavailableReason}");
        string path = _directory.File("auto.nvm");
        using var region = MappedFileNvm.Create(path, 8192, NvmBackendRequest.Auto);

        region.Backend.ShouldBe("libpmem", "with libpmem present the auto choice is libpmem");
        region.FallbackReason.ShouldBeNull("no fallback happened");
        region.Path.ShouldBe(Path.GetFullPath(path), "Path is the full path");
        region.Description.ShouldContain(region.Path, customMessage: "the description names the file");
        if (region.PersistenceDomain == NvmPersistenceDomain.PersistentMemory)
        {
            // Real DAX persistent memory (or PMEM_IS_PMEM_FORCE=1): pmem_persist is durable there.
            return;
        }

        region.PersistenceDomain.ShouldBe(
            NvmPersistenceDomain.MappedFileMsync,
            "on a page-cache mapping only msync is durable, and the region must say so");
    }

    [Fact]
    public void TheForcedMsyncFallbackSaysWhyItIsUsed()
    {
        using var region = MappedFileNvm.Create(_directory.File("forced.nvm"), 8192, NvmBackendRequest.Msync);
        region.Backend.ShouldBe("mmap+msync", "a forced fallback uses mmap + msync");
        region.PersistenceDomain.ShouldBe(NvmPersistenceDomain.MappedFileMsync, "mmap + msync persists with msync");
        region.FallbackReason.ShouldNotBeNull("a fallback always says why");
        region.FallbackReason.ShouldContain(MappedFileNvm.BackendEnvironmentVariable, customMessage: "the reason names the switch that forced it");
        region.Description.ShouldContain(region.FallbackReason, customMessage: "the description carries the fallback reason");
    }

    [Fact]
    public void AMissingLibpmemIsReportedWithTheInstallCommand()
    {
        string? reason = Interop.Pmem.Probe("libpmem-that-is-not-installed.so.1");
        reason.ShouldBe(
            "libpmem-that-is-not-installed.so.1 not found; using mmap + msync. Install it with: apt-get install libpmem1",
            "a missing library names itself, the fallback, and the fix");
        Interop.Pmem.Probe(Interop.Libraries.Libc + ".so.6").ShouldBeNull("a library that loads gives no fallback reason");
    }

    [Fact]
    public void ReadOnlyOpenRefusesEveryStoreAndLeavesTheFileBytesUnchanged()
    {
        string path = _directory.File("inspect.nvm");
        using (var writer = MappedFileNvm.Create(path, 16 * 1024))
        {
            writer.StoreUInt64(64, 0xABCD);
            writer.Write(100, "image under inspection"u8);
            writer.PersistAll();
        }

        byte[] hashBefore = SHA256.HashData(File.ReadAllBytes(path));
        using (var reader = MappedFileNvm.Open(path, NvmAccess.ReadOnly))
        {
            reader.Access.ShouldBe(NvmAccess.ReadOnly, "the region remembers how it was opened");
            reader.LoadUInt64(64).ShouldBe(0xABCDUL, "a read-only region reads the image");
            var text = new byte[22];
            reader.Read(100, text);
            text.ShouldBe("image under inspection"u8.ToArray(), "a read-only region reads bulk bytes");

            AssertRefused(() => reader.StoreUInt64(64, 1), "StoreUInt64");
            AssertRefused(() => reader.CompareExchangeUInt64(64, 0xABCD, 1), "CompareExchangeUInt64");
            AssertRefused(() => reader.FetchAddUInt64(64, 1), "FetchAddUInt64");
            AssertRefused(() => reader.Write(100, new byte[4]), "Write");
            reader.Persist(0, reader.Length);
            reader.LoadUInt64(64).ShouldBe(0xABCDUL, "a refused store changes nothing");

            void AssertRefused(Action store, string what)
            {
                var e = Should.Throw<InvalidOperationException>(store, $"{what} on a read-only region must be refused");
                e.Message.ShouldContain(reader.Path, customMessage: "the refusal names the file");
            }
        }

        SHA256.HashData(File.ReadAllBytes(path)).ShouldBe(hashBefore, "opening read-only must leave the file's bytes unchanged");
    }

    [Fact]
    public void ReadOnlyOpenWorksOnAFileWithoutWritePermission()
    {
        string path = _directory.File("frozen.nvm");
        using (var writer = MappedFileNvm.Create(path, 4096))
        {
            writer.StoreUInt64(0, 77);
            writer.PersistAll();
        }

        Assert.SkipWhen(OperatingSystem.IsWindows(), "Unix file modes only");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.GroupRead);
        }

        using var reader = MappedFileNvm.Open(path, NvmAccess.ReadOnly);
        reader.LoadUInt64(0).ShouldBe(77UL, "inspection needs only read permission");
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void CreateOnAnExistingPathFailsNamingThePathAndLeavesTheFileAlone(string backendName)
    {
        var backend = Request(backendName);
        string path = _directory.File("existing.nvm");
        File.WriteAllBytes(path, [1, 2, 3, 4, 5, 6, 7, 8]);

        var e = Should.Throw<NvmFileExistsException>(
            () => MappedFileNvm.Create(path, 4096, backend),
            "creating a region must never overwrite an existing image");
        e.Path.ShouldBe(Path.GetFullPath(path), "the exception carries the path");
        e.Message.ShouldContain(Path.GetFullPath(path), customMessage: "the message names the path");
        File.ReadAllBytes(path).ShouldBe(new byte[] { 1, 2, 3, 4, 5, 6, 7, 8 }, "a refused create leaves the file untouched");
    }

    [Fact]
    public void OpenOfAMissingFileThrowsFileNotFoundExceptionNamingIt()
    {
        string path = _directory.File("missing.nvm");
        var e = Should.Throw<FileNotFoundException>(() => MappedFileNvm.Open(path), "a missing image is an error");
        e.Message.ShouldContain(path, customMessage: "the message names the missing file");
    }

    [Fact]
    public void OpenOfAnEmptyFileFailsWithAClearMessage()
    {
        string path = _directory.File("empty.nvm");
        File.WriteAllBytes(path, []);
        foreach (var backend in new[] { NvmBackendRequest.Auto, NvmBackendRequest.Msync })
        {
            var e = Should.Throw<IOException>(() => MappedFileNvm.Open(path, NvmAccess.ReadWrite, backend), "an empty file cannot be a region");
            e.Message.ShouldContain(path, customMessage: "the message names the file");
        }
    }

    [Fact]
    public void CreateRejectsANonPositiveLength()
    {
        Should.Throw<ArgumentOutOfRangeException>(() => MappedFileNvm.Create(_directory.File("zero.nvm"), 0), "a region has at least one byte");
        File.Exists(_directory.File("zero.nvm")).ShouldBeFalse("a rejected create leaves no file behind");
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void AnEightGibibyteRegionIsCreatedInstantlyAsASparseFile(string backendName)
    {
        var backend = Request(backendName);
        string path = _directory.File("big.nvm");
        var clock = Stopwatch.StartNew();
        using var region = MappedFileNvm.Create(path, 8 * Gibibyte, backend);
        region.StoreUInt64(8 * Gibibyte - 8, 0xE0F);
        region.StoreUInt64(0, 0xB0F);
        region.Persist(8 * Gibibyte - 8, 8);
        region.Persist(0, 8);
        clock.Stop();

        region.Length.ShouldBe(8 * Gibibyte, "the region is as long as requested");
        new FileInfo(path).Length.ShouldBe(8 * Gibibyte, "the file is as long as the region");
        clock.Elapsed.ShouldBeLessThan(TimeSpan.FromSeconds(10), "a sparse 8 GiB file is created without writing 8 GiB");
        region.LoadUInt64(8 * Gibibyte - 8).ShouldBe(0xE0FUL, "the last word of an 8 GiB region is usable");

        long? allocatedKiB = AllocatedKibibytes(path);
        if (allocatedKiB is { } kib)
        {
            kib.ShouldBeLessThan(64 * 1024, "a sparse file allocates only the blocks that were written");
        }
    }

    [Fact]
    public void DisposeRacingWithAccessesNeverCrashesAndLaterAccessesThrowObjectDisposed()
    {
        var region = MappedFileNvm.Create(_directory.File("race.nvm"), 4096, NvmBackendRequest.Auto);
        var unexpected = new List<Exception>();
        using var start = new Barrier(4);
        var threads = Enumerable.Range(0, 3).Select(_ => new Thread(() =>
        {
            start.SignalAndWait();
            try
            {
                for (int i = 0; i < 10_000_000; i++)
                {
                    region.FetchAddUInt64(0, 1);
                    region.Read(8, new byte[64]);
                }
            }
            catch (ObjectDisposedException)
            {
            }
            catch (Exception e)
            {
                lock (unexpected)
                {
                    unexpected.Add(e);
                }
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        start.SignalAndWait(TestContext.Current.CancellationToken);
        Thread.Sleep(20);
        region.Dispose();
        threads.ForEach(t => t.Join());

        unexpected.ShouldBeEmpty("an access racing with Dispose either completes or throws ObjectDisposedException");
        Should.Throw<ObjectDisposedException>(() => region.LoadUInt64(0), "after Dispose every access is refused")
            .Message.ShouldContain("race.nvm", customMessage: "the message names the file");
    }

    [Fact]
    public void OpenOrCreateCreatesOnceThenOpensAndRefusesToResize()
    {
        string path = _directory.File("blade.nvm");
        using (var first = NvmRegions.OpenOrCreate(path, 8192, out bool created))
        {
            created.ShouldBeTrue("a missing file is created");
            first.StoreUInt64(0, 99);
            first.PersistAll();
        }

        using (var second = NvmRegions.OpenOrCreate(path, 8192, out bool createdAgain))
        {
            createdAgain.ShouldBeFalse("an existing file is opened, not recreated");
            second.LoadUInt64(0).ShouldBe(99UL, "the existing image is kept");
        }

        Should.Throw<IOException>(() => NvmRegions.OpenOrCreate(path, 4096, out _), "an image of another length is never resized")
            .Message.ShouldContain("8192", customMessage: "the message gives the actual length");
    }

    /// <summary>Allocated size from <c>du -k</c>, or null where du is not available.</summary>
    private static long? AllocatedKibibytes(string path)
    {
        try
        {
            using var du = Process.Start(new ProcessStartInfo("du", ["-k", path]) { RedirectStandardOutput = true });
            if (du is null)
            {
                return null;
            }

            string output = du.StandardOutput.ReadToEnd();
            du.WaitForExit();
            return du.ExitCode == 0 && long.TryParse(output.Split('\t')[0], out long kib) ? kib : null;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null;
        }
    }
}

/// <summary>Tests that change process environment variables run alone, never beside another test.</summary>
[CollectionDefinition(nameof(EnvironmentCollection), DisableParallelization = true)]
public sealed class EnvironmentCollection
{
}

[Collection(nameof(EnvironmentCollection))]
public sealed class MappedFileNvmEnvironmentTests : IDisposable
{
    private readonly TempDirectory _directory = new();
    private readonly string? _saved = Environment.GetEnvironmentVariable(MappedFileNvm.BackendEnvironmentVariable);

    public void Dispose()
    {
        Environment.SetEnvironmentVariable(MappedFileNvm.BackendEnvironmentVariable, _saved);
        _directory.Dispose();
    }

    [Fact]
    public void TheEnvironmentVariableForcesTheMsyncFallbackAndItStillPersists()
    {
        Environment.SetEnvironmentVariable(MappedFileNvm.BackendEnvironmentVariable, "msync");
        string path = _directory.File("env.nvm");
        using (var region = MappedFileNvm.Create(path, 8192))
        {
            region.Backend.ShouldBe(MappedFileNvm.MsyncBackend, "RALLOCATOR_NVM_BACKEND=msync forces the fallback");
            region.FallbackReason.ShouldNotBeNull("a forced fallback says why");
            region.StoreUInt64(4096, 12345);
            region.Persist(4096, 8);
        }

        Environment.SetEnvironmentVariable(MappedFileNvm.BackendEnvironmentVariable, null);
        using var reopened = MappedFileNvm.Open(path);
        reopened.LoadUInt64(4096).ShouldBe(12345UL, "a store persisted by the fallback is in the file");
        if (NvmRegions.IsLibpmemAvailable)
        {
            reopened.Backend.ShouldBe(MappedFileNvm.LibpmemBackend, "without the variable libpmem is used again");
        }
    }

    [Fact]
    public void AnUnknownBackendNameIsRejectedWithTheAllowedNames()
    {
        Environment.SetEnvironmentVariable(MappedFileNvm.BackendEnvironmentVariable, "dax-magic");
        var e = Should.Throw<InvalidOperationException>(
            () => MappedFileNvm.Create(_directory.File("never.nvm"), 4096),
            "a misspelt backend must not silently fall back");
        e.Message.ShouldContain("msync", customMessage: "the message lists the allowed names");
    }
}
