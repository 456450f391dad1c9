// netstandard2.0 lacks the marker type that init accessors (and so records) compile against; without it,
// every record in this project is CS0518.
namespace System.Runtime.CompilerServices;

internal static class IsExternalInit
{
}
