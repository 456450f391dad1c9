using System.Runtime.CompilerServices;

// Every import is blittable (pointers and integers only), so no marshalling stub is ever needed: this is the code
// LibraryImport would emit for these signatures. The generator emits DllImport because generated source is not seen by
// the LibraryImport generator (generators do not run on each other's output).
[assembly: DisableRuntimeMarshalling]

namespace RAllocator.Fabric.Verbs.Interop;

/// <summary>
/// Hand-written additions to the generated libibverbs bindings (Interop/ibverbs.bindings): the only other file of
/// this native library's interop class.
/// </summary>
internal static unsafe partial class IbVerbs
{
    /// <summary>The Debian/Ubuntu package that provides <see cref="Library"/>.</summary>
    internal const string RuntimePackage = "libibverbs1 ibverbs-providers";

    /// <summary>The package with the headers the layout probe compiles against.</summary>
    internal const string DevelopmentPackage = "libibverbs-dev";

    /// <summary>A C string returned by libibverbs, or "" for NULL.</summary>
    internal static string Utf8(byte* text) => text is null ? "" : new string((sbyte*)text);
}
