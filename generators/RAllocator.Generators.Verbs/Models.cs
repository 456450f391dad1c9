using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Text;

namespace RAllocator.Generators.Verbs;

// Pipeline data: records of strings and numbers only, so equal files give equal models and the driver caches.

/// <summary>A .bindings file's path and text, read once from the additional files.</summary>
internal sealed record BindingsText(string Path, string Text);

/// <summary>A position in the .bindings file, kept as data and turned into a <see cref="Location"/> on report.</summary>
internal sealed record LocationInfo(string FilePath, int Start, int Length, int Line, int StartColumn, int EndColumn)
{
    public Location ToLocation() => Location.Create(
        FilePath,
        new TextSpan(Start, Length),
        new LinePositionSpan(new LinePosition(Line, StartColumn), new LinePosition(Line, EndColumn)));
}

/// <summary>A diagnostic as data.</summary>
internal sealed record DiagnosticInfo(string Id, LocationInfo? Location, EquatableArray<string> MessageArgs)
{
    public static DiagnosticInfo Create(DiagnosticDescriptor descriptor, LocationInfo? location, params string[] messageArgs) =>
        new(descriptor.Id, location, messageArgs.ToEquatableArray());

    public Diagnostic ToDiagnostic() => Diagnostic.Create(
        DiagnosticDescriptors.ById[Id], Location?.ToLocation(), MessageArgs.Select(a => (object)a).ToArray());
}

/// <summary>One enum member with its value (as C declares it; the probe checks it against the header).</summary>
internal sealed record EnumMemberModel(string Name, long Value);

/// <summary>A C enum bound as a C# enum of the given underlying type.</summary>
internal sealed record EnumModel(string Name, string UnderlyingCSharpType, int SizeBytes, bool Flags, EquatableArray<EnumMemberModel> Members);

/// <summary>One field of an emitted C# struct, at the offset the generator computed from the C ABI rules.</summary>
/// <param name="CSharpType">Field type; for an array, the element type of the fixed buffer.</param>
/// <param name="ArrayLength">Fixed-buffer length, or 0 for a scalar field.</param>
/// <param name="CDeclaration">The C declaration, for the doc comment.</param>
internal sealed record FieldModel(string Name, string CSharpType, int Offset, int SizeBytes, int ArrayLength, string CDeclaration);

/// <summary>An emitted C# struct: a C struct, union, nested anonymous-typed member, opaque or incomplete type.</summary>
/// <param name="CName">"struct ibv_sge", "union ibv_gid", "pthread_mutex_t", or the C path of a nested member type.</param>
/// <param name="Incomplete">True for types only ever used behind pointers (no size is bound).</param>
internal sealed record AggregateModel(string CSharpName, string CName, int SizeBytes, int Alignment, bool Incomplete, EquatableArray<FieldModel> Fields);

/// <summary>A parameter of an import or inline function.</summary>
internal sealed record ParameterModel(string Name, string CSharpType);

/// <summary>An exported function bound with a blittable DllImport.</summary>
internal sealed record FunctionModel(string Name, string ReturnCSharpType, EquatableArray<ParameterModel> Parameters, string Comment);

/// <summary>A header inline function re-implemented as a call through a function pointer reached by <see cref="CallTarget"/>.</summary>
/// <param name="CallTarget">C# expression of the function pointer: "qp->context->ops.post_send".</param>
/// <param name="CPath">The same path as written in the file (for the doc comment).</param>
internal sealed record InlineModel(string Name, string ReturnCSharpType, EquatableArray<ParameterModel> Parameters, string CallTarget, string CPath);

/// <summary>
/// One line of the layout check: the probe prints offsetof/sizeof for it and the C# side measures the same member of
/// the emitted struct. <see cref="MemberPath"/> is empty for the whole type.
/// </summary>
/// <param name="TopCSharpType">The top-level C# struct measured.</param>
/// <param name="TopCType">Its C type ("struct ibv_send_wr").</param>
/// <param name="MemberPath">"wr.rdma.remote_addr", or "" for the type itself.</param>
/// <param name="ElementCSharpType">For fixed buffers the element type, else the field type ("" for the whole type).</param>
internal sealed record LayoutEntry(string Key, string TopCSharpType, string TopCType, string MemberPath, string ElementCSharpType, int ArrayLength);

/// <summary>Everything one .bindings file declares, laid out and ready to emit.</summary>
internal sealed record BindingsModel(
    string SourceFileName,
    string Namespace,
    string ClassName,
    string Library,
    string Header,
    EquatableArray<EnumModel> Enums,
    EquatableArray<AggregateModel> Aggregates,
    EquatableArray<FunctionModel> Functions,
    EquatableArray<InlineModel> Inlines,
    EquatableArray<LayoutEntry> LayoutEntries);

/// <summary>A parse: the model when the file has no errors, and every diagnostic.</summary>
internal sealed record ParseResult(BindingsModel? Model, EquatableArray<DiagnosticInfo> Diagnostics);
