using System.Diagnostics;
using RAllocator.Nvm;
namespace RAllocator.Blade.Tests;
public class Scratch
{
    [Fact]
    public void Timing()
    {
        var (nvm0, _) = TestImages.FormatSmall();
        var template = nvm0.DurableImageCopy();
        void Measure(string what, Action a)
        {
            a();
            var cpu = Process.GetCurrentProcess().TotalProcessorTime;
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < 500; i++) a();
            var cpu2 = Process.GetCurrentProcess().TotalProcessorTime;
            TestContext.Current.TestOutputHelper!.WriteLine($"{what}: {sw.Elapsed.TotalMilliseconds / 500:F3} ms wall, {(cpu2 - cpu).TotalMilliseconds / 500:F3} ms cpu; gen2 {GC.CollectionCount(2)}");
        }
        var r = new RestorableNvm(template, 64 * 1024);
        Measure("restore+full", () => { var n = r.Restore(); var im = BladeImage.Open(n); im.MarkRinged(1, 1); n.Crash(3);
            BladeImage.Open(n, BladeOpenMode.ReadOnly).Scan(); BladeImage.Open(n).Scan(); });
        Measure("restore", () => r.Restore());
        var n0 = r.Restore();
        Measure("open", () => BladeImage.Open(n0));
        Measure("openRO", () => BladeImage.Open(n0, BladeOpenMode.ReadOnly));
        var ro = BladeImage.Open(n0, BladeOpenMode.ReadOnly);
        Measure("scan", () => ro.Scan());
        Measure("crash", () => n0.Crash(4));
        Measure("clone", () => SimulatedNvm.FromDurableImage(template));
        Measure("clone+open", () => BladeImage.Open(SimulatedNvm.FromDurableImage(template)));
        Measure("clone+open+op", () => { var n = SimulatedNvm.FromDurableImage(template); var im = BladeImage.Open(n); im.MarkRinged(1, 1); });
        Measure("clone+open+op+crash", () => { var n = SimulatedNvm.FromDurableImage(template); var im = BladeImage.Open(n); im.MarkRinged(1, 1); n.Crash(3); });
        Measure("full", () => { var n = SimulatedNvm.FromDurableImage(template); var im = BladeImage.Open(n); im.MarkRinged(1, 1); n.Crash(3);
            BladeImage.Open(n, BladeOpenMode.ReadOnly).Scan(); BladeImage.Open(n).Scan(); });
        var fmt = new SimulatedNvm(TestImages.SmallRegionBytes);
        Measure("format", () => BladeImage.Format(fmt, TestImages.SmallSlabBytes, TestImages.SmallOptions, 1));
    }
}
