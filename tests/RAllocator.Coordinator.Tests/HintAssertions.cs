namespace RAllocator.Coordinator.Tests;

internal static class HintAssertions
{
    /// <summary>Same hints field by field (records compare their blade lists by reference, and a decoded list is a new one).</summary>
    public static void ShouldMatch(this PlacementHints? actual, PlacementHints expected)
    {
        actual.ShouldNotBeNull();
        actual.Version.ShouldBe(expected.Version);
        actual.HighWaterMark.ShouldBe(expected.HighWaterMark);
        actual.Blades.ShouldBe(expected.Blades);
    }
}
