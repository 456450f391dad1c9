using System.Text;

namespace RAllocator.KeyValue.Tests;

/// <summary>
/// Crash consistency on an in-process blade over <see cref="SimulatedNvm"/>: blade power failures losing every,
/// none or a random subset of the unpersisted stores, node restarts, and power failures at every persist point of an
/// operation. After recovery every acknowledged put is present with its exact value, deleted keys are absent, an
/// interrupted operation is all or nothing, and the heap holds nothing else.
/// </summary>
public sealed class KvCrashTests(ITestOutputHelper output)
{
    private static readonly KvStoreOptions s_options = new() { MaxKeyBytes = 64, MaxValueBytes = 1024, MaxHeight = 6, Seed = 3 };

    [Theory]
    [InlineData(LostStores.All)]
    [InlineData(LostStores.None)]
    [InlineData(LostStores.RandomSubset)]
    public async Task EveryAcknowledgedPutSurvivesBladeCrashesAndNodeRestarts(LostStores lost)
    {
        var h = await KvHarness.StartAsync(s_options);
        var model = new Dictionary<string, byte[]>();
        var rng = new Random(2024);
        for (int round = 0; round < 4; round++)
        {
            for (int i = 0; i < 250; i++)
            {
                string key = $"user{rng.Next(600):D5}";
                if (rng.Next(6) == 0)
                {
                    await h.Store.DeleteAsync(Encoding.UTF8.GetBytes(key));
                    model.Remove(key);
                }
                else
                {
                    var value = KvHarness.Value(key, (round * 1000) + i, rng.Next(0, 700));
                    await h.Store.PutAsync(Encoding.UTF8.GetBytes(key), value);
                    model[key] = value;
                }
            }

            if (round % 2 == 0)
            {
                await h.CrashBladeAsync(lost, seed: round);
                output.WriteLine($"blade crash {round} ({lost}): {h.Store.Recovery}");
            }
            else
            {
                await h.DropNodeAsync();
                output.WriteLine($"node restart {round}: {h.Store.Recovery}");
            }

            h.Store.Recovery.Entries.ShouldBe(model.Count);
            h.Store.Recovery.CompletedHeapRecovery.ShouldBeTrue();
            await h.ShouldMatchAsync(model, $"round {round}");
        }
    }

    [Fact]
    public async Task PowerFailureAtEveryPersistPointOfPutsAndDeletesIsAllOrNothing()
    {
        // One store state, then each operation kind interrupted at each of its persist points, three ways.
        var kinds = new (string Name, Func<PersistentKvStore, Task> Run, byte[]? After)[]
        {
            ("insert", s => s.PutAsync("k-new"u8.ToArray(), KvHarness.Value("k-new", 1, 300)).AsTask(), KvHarness.Value("k-new", 1, 300)),
            ("update", s => s.PutAsync("k-05"u8.ToArray(), KvHarness.Value("k-05", 2, 500)).AsTask(), KvHarness.Value("k-05", 2, 500)),
            ("delete", s => s.DeleteAsync("k-07"u8.ToArray()).AsTask(), null),
        };
        int checkedPoints = 0;
        foreach (var (name, run, after) in kinds)
        {
            string key = name switch { "insert" => "k-new", "update" => "k-05", _ => "k-07" };
            for (int k = 0; ; k++)
            {
                bool interrupted = false;
                foreach (var lost in new[] { LostStores.All, LostStores.None, LostStores.RandomSubset })
                {
                    var (h, model) = await PopulatedAsync();
                    h.ArmPowerFailure(k);
                    try
                    {
                        await run(h.Store);
                    }
                    catch (SimulatedPowerFailure)
                    {
                        interrupted = true;
                    }

                    await h.CrashBladeAsync(lost, seed: k);
                    var got = await h.Store.GetAsync(Encoding.UTF8.GetBytes(key));
                    model.TryGetValue(key, out var before);
                    bool isBefore = before is null ? got is null : got is not null && got.AsSpan().SequenceEqual(before);
                    bool isAfter = after is null ? got is null : got is not null && got.AsSpan().SequenceEqual(after);
                    (isBefore || isAfter).ShouldBeTrue($"{name} interrupted at persist {k} ({lost}): {key} is neither its old nor its new value");
                    if (!interrupted)
                    {
                        isAfter.ShouldBeTrue($"{name} completed before persist {k}: it was acknowledged, so it must survive");
                    }

                    if (isAfter)
                    {
                        if (after is null)
                        {
                            model.Remove(key);
                        }
                        else
                        {
                            model[key] = after;
                        }
                    }

                    await h.ShouldMatchAsync(model, $"{name} interrupted at persist {k} ({lost})");
                    checkedPoints++;
                }

                if (!interrupted)
                {
                    break;
                }
            }
        }

        output.WriteLine($"{checkedPoints} crash points checked");
        checkedPoints.ShouldBeGreaterThan(9);
    }

    private static async Task<(KvHarness, Dictionary<string, byte[]>)> PopulatedAsync()
    {
        var h = await KvHarness.StartAsync(s_options);
        var model = new Dictionary<string, byte[]>();
        for (int i = 0; i < 12; i++)
        {
            string key = $"k-{i:D2}";
            var value = KvHarness.Value(key, i, 40 + (i * 30));
            await h.Store.PutAsync(Encoding.UTF8.GetBytes(key), value);
            model[key] = value;
        }

        return (h, model);
    }
}
