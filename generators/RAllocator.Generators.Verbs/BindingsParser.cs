using System.Globalization;
using System.Text.RegularExpressions;

namespace RAllocator.Generators.Verbs;

/// <summary>
/// Parses a .bindings file (grammar in README.md) into a laid-out <see cref="BindingsModel"/>. Offsets and sizes are
/// computed here from the x86-64 System V rules (each member at the next multiple of its alignment; a struct's size
/// rounded up to its largest alignment; a union's members all at 0): nobody writes an offset by hand, and the C probe
/// emitted from the same model checks every one of them against the installed headers.
/// </summary>
internal sealed class BindingsParser
{
    private static readonly Regex s_directive = new(@"^(library|header|namespace|class)\s+(\S+)$", RegexOptions.CultureInvariant);
    private static readonly Regex s_enumHeader = new(@"^enum\s+(\w+)(?:\s*:\s*(\w+))?(\s+flags)?$", RegexOptions.CultureInvariant);
    private static readonly Regex s_aggregateHeader = new(@"^(struct|union)(?:\s+(\w+))?$", RegexOptions.CultureInvariant);
    private static readonly Regex s_opaque = new(@"^opaque\s+(\w+)\s+size\s+(\S+)\s+align\s+(\S+)$", RegexOptions.CultureInvariant);
    private static readonly Regex s_incomplete = new(@"^incomplete\s+(\w+)$", RegexOptions.CultureInvariant);
    private static readonly Regex s_function = new(@"^(function|inline)\s+(\w+)\s*\((.*)\)\s*->\s*(.+?)(?:\s*=\s*(\S+))?$", RegexOptions.CultureInvariant);
    private static readonly Regex s_enumMember = new(@"^(\w+)(?:\s*=\s*(.+))?$", RegexOptions.CultureInvariant);
    private static readonly Regex s_field = new(@"^(.+?)(?:\[([^\]]*)\])?\s+(\w+)$", RegexOptions.CultureInvariant);
    private static readonly Regex s_identifier = new(@"^[A-Za-z_][A-Za-z0-9_]*$", RegexOptions.CultureInvariant);

    private static readonly Dictionary<string, Primitive> s_primitives = new(StringComparer.Ordinal)
    {
        ["void"] = new("void", 0),
        ["i8"] = new("sbyte", 1),
        ["u8"] = new("byte", 1),
        ["char"] = new("byte", 1),
        ["i16"] = new("short", 2),
        ["u16"] = new("ushort", 2),
        ["be16"] = new("ushort", 2),
        ["i32"] = new("int", 4),
        ["u32"] = new("uint", 4),
        ["be32"] = new("uint", 4),
        ["i64"] = new("long", 8),
        ["u64"] = new("ulong", 8),
        ["be64"] = new("ulong", 8),
        ["size_t"] = new("nuint", 8),
    };

    private static readonly Dictionary<string, (string CSharp, int Size, long Min, ulong Max)> s_enumUnderlying = new(StringComparer.Ordinal)
    {
        ["i32"] = ("int", 4, int.MinValue, int.MaxValue),
        ["u32"] = ("uint", 4, 0, uint.MaxValue),
        ["i64"] = ("long", 8, long.MinValue, long.MaxValue),
    };

    private readonly string _path;
    private readonly string _text;
    private readonly List<DiagnosticInfo> _diagnostics = [];
    private readonly Dictionary<string, string> _directives = new(StringComparer.Ordinal);
    private readonly List<EnumDecl> _enums = [];
    private readonly List<AggregateDecl> _aggregates = [];
    private readonly List<OpaqueDecl> _opaques = [];
    private readonly List<FunctionDecl> _functions = [];
    private readonly Dictionary<string, object> _types = new(StringComparer.Ordinal);

    // Layout results, by C# type name (top-level and nested member types).
    private readonly Dictionary<string, LaidOut> _laidOut = new(StringComparer.Ordinal);
    private readonly HashSet<string> _layingOut = new(StringComparer.Ordinal);
    private readonly List<AggregateModel> _emitted = [];

    private BindingsParser(string path, string text)
    {
        _path = path;
        _text = text;
    }

    public static ParseResult Parse(BindingsText file, CancellationToken cancellationToken)
    {
        var parser = new BindingsParser(file.Path, file.Text);
        var model = parser.Run(cancellationToken);
        var diagnostics = parser._diagnostics.ToEquatableArray();
        return new ParseResult(diagnostics.Count == 0 ? model : null, diagnostics);
    }

    private BindingsModel? Run(CancellationToken cancellationToken)
    {
        ReadLines(cancellationToken);
        foreach (var directive in new[] { "namespace", "class", "library", "header" })
        {
            if (!_directives.ContainsKey(directive))
            {
                Report(DiagnosticDescriptors.MissingDirective, new LocationInfo(_path, 0, 0, 0, 0, 0), directive);
            }
        }

        var enums = _enums.Select(BuildEnum).Where(e => e is not null).Select(e => e!).ToList();
        foreach (var aggregate in _aggregates)
        {
            LayOut(aggregate, aggregate.Name, aggregate.Location);
        }

        var opaques = _opaques.Select(o => new AggregateModel(o.Name, o.Name, o.Size, o.Align, o.Size == 0, EquatableArray<FieldModel>.Empty)).ToList();
        var functions = _functions.Where(f => !f.IsInline).Select(BuildFunction).Where(f => f is not null).Select(f => f!).ToList();
        var inlines = _functions.Where(f => f.IsInline).Select(BuildInline).Where(f => f is not null).Select(f => f!).ToList();
        var entries = BuildLayoutEntries();
        if (_diagnostics.Count > 0)
        {
            return null;
        }

        return new BindingsModel(
            System.IO.Path.GetFileName(_path),
            _directives["namespace"],
            _directives["class"],
            _directives["library"],
            _directives["header"],
            enums.ToEquatableArray(),
            opaques.Concat(_emitted).ToEquatableArray(),
            functions.ToEquatableArray(),
            inlines.ToEquatableArray(),
            entries.ToEquatableArray());
    }

    // ---------------------------------------------------------------- reading

    private void ReadLines(CancellationToken cancellationToken)
    {
        var open = new Stack<object>();
        int lineStart = 0;
        int lineNumber = 0;
        while (lineStart <= _text.Length)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int lineEnd = _text.IndexOf('\n', lineStart);
            if (lineEnd < 0)
            {
                lineEnd = _text.Length;
            }

            string raw = _text.Substring(lineStart, lineEnd - lineStart).TrimEnd('\r');
            int hash = raw.IndexOf('#');
            string content = (hash >= 0 ? raw.Substring(0, hash) : raw).TrimEnd();
            string line = content.TrimStart();
            if (line.Length > 0)
            {
                int column = content.Length - line.Length;
                var location = new LocationInfo(_path, lineStart + column, line.Length, lineNumber, column, column + line.Length);
                ReadLine(line, location, open);
            }

            lineStart = lineEnd + 1;
            lineNumber++;
        }

        foreach (var block in open)
        {
            var (kind, name, location) = block switch
            {
                EnumDecl e => ("enum", e.Name, e.Location),
                AggregateDecl a => (a.IsUnion ? "union" : "struct", a.Name, a.Location),
                _ => ("block", "", null as LocationInfo),
            };
            Report(DiagnosticDescriptors.UnbalancedBlock, location, $"{kind} '{name}' is not closed with 'end'");
        }
    }

    private void ReadLine(string line, LocationInfo location, Stack<object> open)
    {
        if (line == "end")
        {
            if (open.Count == 0)
            {
                Report(DiagnosticDescriptors.UnbalancedBlock, location, "'end' closes no enum, struct or union");
                return;
            }

            open.Pop();
            return;
        }

        if (open.Count > 0 && open.Peek() is EnumDecl enumDecl)
        {
            var member = s_enumMember.Match(line);
            if (!member.Success)
            {
                Report(DiagnosticDescriptors.SyntaxError, location, $"'{line}' is not an enum member (NAME or NAME = value)");
                return;
            }

            enumDecl.Members.Add(new EnumMemberDecl(member.Groups[1].Value, member.Groups[2].Success ? member.Groups[2].Value.Trim() : null, location));
            return;
        }

        if (open.Count > 0 && open.Peek() is AggregateDecl parent)
        {
            var nested = s_aggregateHeader.Match(line);
            if (nested.Success)
            {
                var inner = new AggregateDecl(nested.Groups[1].Value == "union", nested.Groups[2].Success ? nested.Groups[2].Value : "", location);
                parent.Fields.Add(new FieldDecl(null, null, inner.Name, inner, location, line));
                open.Push(inner);
                return;
            }

            var field = s_field.Match(line);
            if (!field.Success)
            {
                Report(DiagnosticDescriptors.SyntaxError, location, $"'{line}' is not a field (type name, type[N] name, or a nested struct/union)");
                return;
            }

            var type = ParseType(field.Groups[1].Value.Trim(), location);
            if (type is not null)
            {
                parent.Fields.Add(new FieldDecl(type, field.Groups[2].Success ? field.Groups[2].Value.Trim() : null, field.Groups[3].Value, null, location, line));
            }

            return;
        }

        Match match;
        if ((match = s_directive.Match(line)).Success)
        {
            if (_directives.ContainsKey(match.Groups[1].Value))
            {
                Report(DiagnosticDescriptors.DuplicateName, location, "Directive", match.Groups[1].Value);
            }

            _directives[match.Groups[1].Value] = match.Groups[2].Value;
        }
        else if ((match = s_enumHeader.Match(line)).Success)
        {
            var decl = new EnumDecl(match.Groups[1].Value, match.Groups[2].Success ? match.Groups[2].Value : "i32", match.Groups[3].Success, location);
            if (DeclareType(decl.Name, decl, location))
            {
                _enums.Add(decl);
            }

            open.Push(decl);
        }
        else if ((match = s_aggregateHeader.Match(line)).Success)
        {
            var decl = new AggregateDecl(match.Groups[1].Value == "union", match.Groups[2].Value, location);
            if (decl.Name.Length == 0)
            {
                Report(DiagnosticDescriptors.SyntaxError, location, $"a top-level {match.Groups[1].Value} needs a name");
            }
            else if (DeclareType(decl.Name, decl, location))
            {
                _aggregates.Add(decl);
            }

            open.Push(decl);
        }
        else if ((match = s_opaque.Match(line)).Success)
        {
            int? size = ParseLength(match.Groups[2].Value, location);
            int? align = ParseLength(match.Groups[3].Value, location);
            if (size is not null && align is not null)
            {
                var decl = new OpaqueDecl(match.Groups[1].Value, size.Value, align.Value);
                if (DeclareType(decl.Name, decl, location))
                {
                    _opaques.Add(decl);
                }
            }
        }
        else if ((match = s_incomplete.Match(line)).Success)
        {
            var decl = new OpaqueDecl(match.Groups[1].Value, 0, 1);
            if (DeclareType(decl.Name, decl, location))
            {
                _opaques.Add(decl);
            }
        }
        else if ((match = s_function.Match(line)).Success)
        {
            bool isInline = match.Groups[1].Value == "inline";
            if (isInline != match.Groups[5].Success)
            {
                Report(DiagnosticDescriptors.SyntaxError, location, isInline
                    ? $"inline '{match.Groups[2].Value}' needs '= parameter->field.field' naming the function pointer it calls"
                    : $"function '{match.Groups[2].Value}' is exported and takes no '= path'; use 'inline' for header inline functions");
                return;
            }

            var returnType = ParseType(match.Groups[4].Value.Trim(), location);
            var parameters = new List<(TypeExpr Type, string Name)>();
            foreach (string parameterText in SplitTopLevel(match.Groups[3].Value))
            {
                var parameter = s_field.Match(parameterText.Trim());
                var parameterType = parameter.Success && !parameter.Groups[2].Success ? ParseType(parameter.Groups[1].Value.Trim(), location) : null;
                if (!parameter.Success || parameter.Groups[2].Success)
                {
                    Report(DiagnosticDescriptors.SyntaxError, location, $"parameter '{parameterText.Trim()}' is not 'type name'");
                }

                if (parameterType is null)
                {
                    return;
                }

                parameters.Add((parameterType, parameter.Groups[3].Value));
            }

            if (returnType is null)
            {
                return;
            }

            if (_functions.Any(f => f.Name == match.Groups[2].Value))
            {
                Report(DiagnosticDescriptors.DuplicateName, location, "Function", match.Groups[2].Value);
                return;
            }

            _functions.Add(new FunctionDecl(match.Groups[2].Value, returnType, parameters, isInline ? match.Groups[5].Value : null, location, line));
        }
        else
        {
            Report(DiagnosticDescriptors.SyntaxError, location,
                $"'{line}' is not one of: library, header, namespace, class, enum, struct, union, opaque, incomplete, function, inline, end");
        }
    }

    private bool DeclareType(string name, object declaration, LocationInfo location)
    {
        if (_types.ContainsKey(name) || s_primitives.ContainsKey(name))
        {
            Report(DiagnosticDescriptors.DuplicateName, location, "Type", name);
            return false;
        }

        _types[name] = declaration;
        return true;
    }

    private static IEnumerable<string> SplitTopLevel(string text)
    {
        if (text.Trim().Length == 0)
        {
            yield break;
        }

        int depth = 0;
        int start = 0;
        for (int i = 0; i < text.Length; i++)
        {
            switch (text[i])
            {
                case '<' or '(':
                    depth++;
                    break;
                case '>' or ')':
                    depth--;
                    break;
                case ',' when depth == 0:
                    yield return text.Substring(start, i - start);
                    start = i + 1;
                    break;
            }
        }

        yield return text.Substring(start);
    }

    // ---------------------------------------------------------------- types

    private TypeExpr? ParseType(string text, LocationInfo location)
    {
        int index = 0;
        var type = ParseTypeAt(text, ref index);
        SkipSpaces(text, ref index);
        if (type is null || index != text.Length)
        {
            Report(DiagnosticDescriptors.SyntaxError, location, $"'{text}' is not a type (u8..u64, i8..i64, be16..be64, char, size_t, void, ptr, ptr<T>, fn, fn<R(A, B)>, or a declared name)");
            return null;
        }

        return type;
    }

    private static TypeExpr? ParseTypeAt(string text, ref int index)
    {
        SkipSpaces(text, ref index);
        int start = index;
        while (index < text.Length && (char.IsLetterOrDigit(text[index]) || text[index] == '_'))
        {
            index++;
        }

        string name = text.Substring(start, index - start);
        if (name.Length == 0)
        {
            return null;
        }

        SkipSpaces(text, ref index);
        bool generic = index < text.Length && text[index] == '<';
        if (name == "ptr")
        {
            if (!generic)
            {
                return TypeExpr.Pointer(TypeExpr.Named("void"));
            }

            index++;
            var inner = ParseTypeAt(text, ref index);
            return inner is not null && Expect(text, ref index, '>') ? TypeExpr.Pointer(inner) : null;
        }

        if (name == "fn")
        {
            if (!generic)
            {
                return TypeExpr.Function(null, []);
            }

            index++;
            var returnType = ParseTypeAt(text, ref index);
            if (returnType is null || !Expect(text, ref index, '('))
            {
                return null;
            }

            var arguments = new List<TypeExpr>();
            SkipSpaces(text, ref index);
            if (index < text.Length && text[index] == ')')
            {
                index++;
            }
            else
            {
                while (true)
                {
                    var argument = ParseTypeAt(text, ref index);
                    if (argument is null)
                    {
                        return null;
                    }

                    arguments.Add(argument);
                    SkipSpaces(text, ref index);
                    if (index < text.Length && text[index] == ',')
                    {
                        index++;
                        continue;
                    }

                    if (!Expect(text, ref index, ')'))
                    {
                        return null;
                    }

                    break;
                }
            }

            return Expect(text, ref index, '>') ? TypeExpr.Function(returnType, arguments) : null;
        }

        return generic ? null : TypeExpr.Named(name);
    }

    private static bool Expect(string text, ref int index, char expected)
    {
        SkipSpaces(text, ref index);
        if (index < text.Length && text[index] == expected)
        {
            index++;
            return true;
        }

        return false;
    }

    private static void SkipSpaces(string text, ref int index)
    {
        while (index < text.Length && text[index] == ' ')
        {
            index++;
        }
    }

    /// <summary>The C# spelling of a type, or null (reported) when a name is unknown.</summary>
    private string? CSharpType(TypeExpr type, LocationInfo location)
    {
        switch (type.Kind)
        {
            case TypeKind.Pointer:
                string? inner = CSharpType(type.Inner!, location);
                return inner is null ? null : inner + "*";
            case TypeKind.Function:
                if (type.Inner is null)
                {
                    return "void*";
                }

                var parts = new List<string>();
                foreach (var argument in type.Arguments.Append(type.Inner))
                {
                    string? part = CSharpType(argument, location);
                    if (part is null)
                    {
                        return null;
                    }

                    parts.Add(part);
                }

                return $"delegate* unmanaged<{string.Join(", ", parts)}>";
            default:
                if (s_primitives.TryGetValue(type.Name, out var primitive))
                {
                    return primitive.CSharp;
                }

                if (_types.ContainsKey(type.Name))
                {
                    return type.Name;
                }

                Report(DiagnosticDescriptors.UnknownType, location, type.Name, "; declare it (struct, union, enum, opaque or incomplete) or use a built-in type");
                return null;
        }
    }

    /// <summary>Size and alignment of a type used by value; null (reported) when it has none.</summary>
    private (int Size, int Align)? ByValue(TypeExpr type, string user, LocationInfo location)
    {
        if (type.Kind is TypeKind.Pointer or TypeKind.Function)
        {
            return CSharpType(type, location) is null ? null : (8, 8);
        }

        if (s_primitives.TryGetValue(type.Name, out var primitive))
        {
            if (primitive.Size == 0)
            {
                Report(DiagnosticDescriptors.InvalidByValue, location, user, "uses void by value; only ptr<void> is allowed");
                return null;
            }

            return (primitive.Size, primitive.Size);
        }

        if (!_types.TryGetValue(type.Name, out var declaration))
        {
            Report(DiagnosticDescriptors.UnknownType, location, type.Name, "");
            return null;
        }

        switch (declaration)
        {
            case EnumDecl enumDecl:
                return s_enumUnderlying.TryGetValue(enumDecl.Underlying, out var underlying) ? (underlying.Size, underlying.Size) : null;
            case OpaqueDecl { Size: 0 } opaque:
                Report(DiagnosticDescriptors.InvalidByValue, location, user, $"holds incomplete type '{opaque.Name}' by value; declare it 'opaque {opaque.Name} size N align A' or use ptr<{opaque.Name}>");
                return null;
            case OpaqueDecl opaque:
                return (opaque.Size, opaque.Align);
            default:
                var aggregate = (AggregateDecl)declaration;
                var laid = LayOut(aggregate, aggregate.Name, location);
                return laid is null ? null : (laid.Size, laid.Align);
        }
    }

    // ---------------------------------------------------------------- layout

    private LaidOut? LayOut(AggregateDecl aggregate, string csharpName, LocationInfo? usedAt) =>
        LayOut(aggregate, csharpName, usedAt, scope: csharpName, cName: $"{(aggregate.IsUnion ? "union" : "struct")} {aggregate.Name}", emit: true);

    /// <param name="scope">Prefix of the C# names of named nested member types (an anonymous aggregate shares its owner's).</param>
    /// <param name="cName">The C type, or "" for a nested member type (checked through its owner).</param>
    /// <param name="emit">False for anonymous aggregates, whose members the owner hoists.</param>
    private LaidOut? LayOut(AggregateDecl aggregate, string csharpName, LocationInfo? usedAt, string scope, string cName, bool emit)
    {
        if (_laidOut.TryGetValue(csharpName, out var done))
        {
            return done;
        }

        if (!_layingOut.Add(csharpName))
        {
            Report(DiagnosticDescriptors.InvalidByValue, usedAt ?? aggregate.Location, csharpName, "contains itself by value; use ptr<" + csharpName + ">");
            return null;
        }

        var fields = new List<FieldModel>();
        var fieldTypes = new Dictionary<string, TypeExpr>(StringComparer.Ordinal);
        int offset = 0;
        int size = 0;
        int align = 1;
        bool failed = false;
        foreach (var field in aggregate.Fields)
        {
            int fieldSize;
            int fieldAlign;
            var placed = new List<(FieldModel Field, TypeExpr Type)>();
            if (field.Nested is not null)
            {
                // An unnamed nested struct/union is C11 anonymous: its members belong to this type. A named one gets
                // its own C# type, named after its path so that it cannot clash with a declared type.
                bool anonymous = field.Nested.Name.Length == 0;
                string nestedName = anonymous
                    ? csharpName + "#anonymous@" + field.Location.Start.ToString(CultureInfo.InvariantCulture)
                    : scope + "_" + field.Nested.Name;
                var nestedLaid = LayOut(field.Nested, nestedName, field.Location, anonymous ? scope : nestedName, "", emit: !anonymous);
                if (nestedLaid is null)
                {
                    failed = true;
                    continue;
                }

                (fieldSize, fieldAlign) = (nestedLaid.Size, nestedLaid.Align);
                if (anonymous)
                {
                    foreach (var hoisted in nestedLaid.Fields)
                    {
                        placed.Add((hoisted, nestedLaid.FieldTypes[hoisted.Name]));
                    }
                }
                else
                {
                    placed.Add((new FieldModel(field.Nested.Name, nestedName, 0, nestedLaid.Size, 0, field.Text), TypeExpr.Named(nestedName)));
                }
            }
            else
            {
                string? csharp = CSharpType(field.Type!, field.Location);
                var value = csharp is null ? null : ByValue(field.Type!, $"{csharpName}.{field.Name}", field.Location);
                if (value is null || csharp is null)
                {
                    failed = true;
                    continue;
                }

                int length = 0;
                if (field.ArrayLength is not null)
                {
                    int? parsed = ParseLength(field.ArrayLength, field.Location);
                    if (parsed is null)
                    {
                        failed = true;
                        continue;
                    }

                    if (field.Type!.Kind != TypeKind.Named || !s_primitives.ContainsKey(field.Type.Name))
                    {
                        Report(DiagnosticDescriptors.InvalidByValue, field.Location, $"{csharpName}.{field.Name}", "is an array of a non-primitive type; only arrays of u8..u64, i8..i64 and char become fixed buffers");
                        failed = true;
                        continue;
                    }

                    length = parsed.Value;
                }

                fieldSize = value.Value.Size * Math.Max(length, 1);
                fieldAlign = value.Value.Align;
                placed.Add((new FieldModel(field.Name, csharp, 0, fieldSize, length, field.Text), field.Type!));
            }

            int at = aggregate.IsUnion ? 0 : AlignUp(offset, fieldAlign);
            foreach (var (model, type) in placed)
            {
                if (fieldTypes.ContainsKey(model.Name))
                {
                    Report(DiagnosticDescriptors.DuplicateName, field.Location, $"Field of {csharpName}", model.Name);
                    failed = true;
                    continue;
                }

                fields.Add(model with { Offset = at + model.Offset });
                fieldTypes[model.Name] = type;
            }

            offset = at + fieldSize;
            size = Math.Max(size, offset);
            align = Math.Max(align, fieldAlign);
        }

        _layingOut.Remove(csharpName);
        if (failed)
        {
            return null;
        }

        var result = new LaidOut(AlignUp(size, align), align, fields, fieldTypes, cName);
        _laidOut[csharpName] = result;
        if (emit)
        {
            _emitted.Add(new AggregateModel(csharpName, cName.Length > 0 ? cName : csharpName, result.Size, result.Align, false, fields.ToEquatableArray()));
        }

        return result;
    }

    private static int AlignUp(int value, int align) => (value + align - 1) / align * align;

    // ---------------------------------------------------------------- enums, functions, layout entries

    private EnumModel? BuildEnum(EnumDecl decl)
    {
        if (!s_enumUnderlying.TryGetValue(decl.Underlying, out var underlying))
        {
            Report(DiagnosticDescriptors.InvalidNumber, decl.Location, $"enum '{decl.Name}' has underlying type '{decl.Underlying}'; use i32 (C's int, the default), u32 or i64");
            return null;
        }

        var members = new List<EnumMemberModel>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        long next = 0;
        bool failed = false;
        foreach (var member in decl.Members)
        {
            long value = next;
            if (member.ValueText is not null)
            {
                long? parsed = EvaluateInteger(member.ValueText);
                if (parsed is null)
                {
                    Report(DiagnosticDescriptors.InvalidNumber, member.Location, $"enum member '{member.Name}' = '{member.ValueText}' is not an integer, hex integer or 'a << b'");
                    failed = true;
                    continue;
                }

                value = parsed.Value;
            }

            if (value < underlying.Min || (value > 0 && (ulong)value > underlying.Max))
            {
                Report(DiagnosticDescriptors.InvalidNumber, member.Location, $"enum member '{member.Name}' = {value} does not fit '{decl.Underlying}'");
                failed = true;
                continue;
            }

            if (!seen.Add(member.Name) || _types.ContainsKey(member.Name))
            {
                Report(DiagnosticDescriptors.DuplicateName, member.Location, "Enum member", member.Name);
                failed = true;
                continue;
            }

            members.Add(new EnumMemberModel(member.Name, value));
            next = value + 1;
        }

        return failed ? null : new EnumModel(decl.Name, underlying.CSharp, underlying.Size, decl.Flags, members.ToEquatableArray());
    }

    private FunctionModel? BuildFunction(FunctionDecl decl)
    {
        var signature = Signature(decl);
        return signature is null ? null : new FunctionModel(decl.Name, signature.Value.Return, signature.Value.Parameters.ToEquatableArray(), decl.Text);
    }

    private (string Return, List<ParameterModel> Parameters)? Signature(FunctionDecl decl)
    {
        string? returnType = CSharpType(decl.Return, decl.Location);
        var parameters = new List<ParameterModel>();
        foreach (var (type, name) in decl.Parameters)
        {
            string? csharp = CSharpType(type, decl.Location);
            if (csharp is null)
            {
                return null;
            }

            if (type.Kind == TypeKind.Named)
            {
                ByValue(type, $"{decl.Name}({name})", decl.Location);
            }

            parameters.Add(new ParameterModel(name, csharp));
        }

        return returnType is null ? null : (returnType, parameters);
    }

    private InlineModel? BuildInline(FunctionDecl decl)
    {
        var signature = Signature(decl);
        if (signature is null)
        {
            return null;
        }

        // path := parameter (('->' | '.') field)+
        var segments = Regex.Split(decl.InlinePath!, @"(->|\.)");
        var parameter = decl.Parameters.FirstOrDefault(p => p.Name == segments[0]);
        if (parameter.Type is null || segments.Length < 3)
        {
            Report(DiagnosticDescriptors.InvalidInline, decl.Location, decl.Name, $"path '{decl.InlinePath}' must start with a parameter and name at least one field");
            return null;
        }

        var current = parameter.Type;
        var target = new System.Text.StringBuilder(Identifiers.Escape(segments[0]));
        for (int i = 1; i + 1 < segments.Length; i += 2)
        {
            bool throughPointer = segments[i] == "->";
            string fieldName = segments[i + 1];
            var holder = throughPointer ? (current.Kind == TypeKind.Pointer ? current.Inner : null) : (current.Kind == TypeKind.Named ? current : null);
            if (holder is null || holder.Kind != TypeKind.Named || !_laidOut.TryGetValue(holder.Name, out var laid))
            {
                Report(DiagnosticDescriptors.InvalidInline, decl.Location, decl.Name,
                    $"'{segments[i]}{fieldName}' needs {(throughPointer ? "a pointer to a struct" : "a struct by value")} on its left, not '{current}'");
                return null;
            }

            if (!laid.FieldTypes.TryGetValue(fieldName, out var fieldType))
            {
                Report(DiagnosticDescriptors.InvalidInline, decl.Location, decl.Name, $"'{holder.Name}' has no field '{fieldName}'");
                return null;
            }

            target.Append(segments[i]).Append(Identifiers.Escape(fieldName));
            current = fieldType;
        }

        string expected = $"delegate* unmanaged<{string.Join(", ", signature.Value.Parameters.Select(p => p.CSharpType).Append(signature.Value.Return))}>";
        string? actual = current.Kind == TypeKind.Function ? CSharpType(current, decl.Location) : null;
        if (actual != expected)
        {
            Report(DiagnosticDescriptors.InvalidInline, decl.Location, decl.Name,
                $"'{decl.InlinePath}' is '{actual ?? current.ToString()}', but the inline's signature needs '{expected}'");
            return null;
        }

        return new InlineModel(decl.Name, signature.Value.Return, signature.Value.Parameters.ToEquatableArray(), target.ToString(), decl.InlinePath!);
    }

    private List<LayoutEntry> BuildLayoutEntries()
    {
        var entries = new List<LayoutEntry>();
        foreach (var opaque in _opaques.Where(o => o.Size > 0))
        {
            entries.Add(new LayoutEntry(opaque.Name, opaque.Name, opaque.Name, "", "", 0));
        }

        foreach (var aggregate in _aggregates)
        {
            if (!_laidOut.TryGetValue(aggregate.Name, out var laid))
            {
                continue;
            }

            entries.Add(new LayoutEntry(aggregate.Name, aggregate.Name, laid.CName, "", "", 0));
            AddMembers(entries, aggregate.Name, laid.CName, laid, "");
        }

        return entries;
    }

    private void AddMembers(List<LayoutEntry> entries, string top, string topC, LaidOut laid, string prefix)
    {
        foreach (var field in laid.Fields)
        {
            string path = prefix + field.Name;
            entries.Add(new LayoutEntry($"{top}.{path}", top, topC, path, field.CSharpType, field.ArrayLength));

            // Members of nested member types are checked through their owner; declared types are checked on their own.
            if (_laidOut.TryGetValue(field.CSharpType, out var nested) && nested.CName.Length == 0)
            {
                AddMembers(entries, top, topC, nested, path + ".");
            }
        }
    }

    private int? ParseLength(string text, LocationInfo location)
    {
        long? value = EvaluateInteger(text);
        if (value is null or <= 0 or > 1 << 20)
        {
            Report(DiagnosticDescriptors.InvalidNumber, location, $"'{text}' is not a positive integer size (at most 1 MiB)");
            return null;
        }

        return (int)value.Value;
    }

    private static long? EvaluateInteger(string text)
    {
        text = text.Trim();
        int shift = text.IndexOf("<<", StringComparison.Ordinal);
        if (shift >= 0)
        {
            long? left = EvaluateInteger(text.Substring(0, shift));
            long? right = EvaluateInteger(text.Substring(shift + 2));
            return left is null || right is null or < 0 or > 62 ? null : left.Value << (int)right.Value;
        }

        if (text.StartsWith("(", StringComparison.Ordinal) && text.EndsWith(")", StringComparison.Ordinal))
        {
            return EvaluateInteger(text.Substring(1, text.Length - 2));
        }

        bool negative = text.StartsWith("-", StringComparison.Ordinal);
        string digits = negative ? text.Substring(1).Trim() : text;
        bool parsed = digits.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            ? long.TryParse(digits.Substring(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out long value)
            : long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out value);
        return parsed ? (negative ? -value : value) : null;
    }

    private void Report(Microsoft.CodeAnalysis.DiagnosticDescriptor descriptor, LocationInfo? location, params string[] arguments) =>
        _diagnostics.Add(DiagnosticInfo.Create(descriptor, location, arguments));

    // ---------------------------------------------------------------- parse tree (local to one parse)

    private sealed record Primitive(string CSharp, int Size);

    private enum TypeKind
    {
        Named,
        Pointer,
        Function,
    }

    private sealed class TypeExpr
    {
        private TypeExpr(TypeKind kind, string name, TypeExpr? inner, List<TypeExpr> arguments)
        {
            Kind = kind;
            Name = name;
            Inner = inner;
            Arguments = arguments;
        }

        public TypeKind Kind { get; }

        public string Name { get; }

        /// <summary>Pointee, or a function pointer's return type (null for an untyped fn).</summary>
        public TypeExpr? Inner { get; }

        public List<TypeExpr> Arguments { get; }

        public static TypeExpr Named(string name) => new(TypeKind.Named, name, null, []);

        public static TypeExpr Pointer(TypeExpr inner) => new(TypeKind.Pointer, "ptr", inner, []);

        public static TypeExpr Function(TypeExpr? returnType, List<TypeExpr> arguments) => new(TypeKind.Function, "fn", returnType, arguments);

        public override string ToString() => Kind switch
        {
            TypeKind.Pointer => $"ptr<{Inner}>",
            TypeKind.Function => Inner is null ? "fn" : $"fn<{Inner}({string.Join(", ", Arguments)})>",
            _ => Name,
        };
    }

    private sealed record EnumMemberDecl(string Name, string? ValueText, LocationInfo Location);

    private sealed class EnumDecl(string name, string underlying, bool flags, LocationInfo location)
    {
        public string Name { get; } = name;

        public string Underlying { get; } = underlying;

        public bool Flags { get; } = flags;

        public LocationInfo Location { get; } = location;

        public List<EnumMemberDecl> Members { get; } = [];
    }

    private sealed class AggregateDecl(bool isUnion, string name, LocationInfo location)
    {
        public bool IsUnion { get; } = isUnion;

        public string Name { get; } = name;

        public LocationInfo Location { get; } = location;

        public List<FieldDecl> Fields { get; } = [];
    }

    private sealed record FieldDecl(TypeExpr? Type, string? ArrayLength, string Name, AggregateDecl? Nested, LocationInfo Location, string Text);

    private sealed record OpaqueDecl(string Name, int Size, int Align);

    private sealed record FunctionDecl(string Name, TypeExpr Return, List<(TypeExpr Type, string Name)> Parameters, string? InlinePath, LocationInfo Location, string Text)
    {
        public bool IsInline => InlinePath is not null;
    }

    private sealed record LaidOut(int Size, int Align, List<FieldModel> Fields, Dictionary<string, TypeExpr> FieldTypes, string CName);
}
