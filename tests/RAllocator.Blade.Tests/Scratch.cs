using FsCheck;
using FsCheck.Fluent;
namespace RAllocator.Blade.Tests;
public class Scratch
{
    [Fact]
    public void Explore()
    {
        foreach (var t in typeof(Config).Assembly.GetTypes().Where(t => t.Name is "Replay" or "Config"))
        {
            foreach (var m in t.GetMembers()) Console.WriteLine($"{t.Name}: {m}");
        }
        var prop = Prop.ForAll(Arb.From(Gen.Choose(0, 100)), x => { (x < 50).ShouldBeTrue($"x={x} must be small"); });
        try { Check.One(Config.QuickThrowOnFailure.WithMaxTest(100), prop); }
        catch (Exception e) { Console.WriteLine("TYPE " + e.GetType() + "\nMSG<<" + e.Message + ">>"); }
    }
}
