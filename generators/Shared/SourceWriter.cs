using System.Text;

namespace RAllocator.Generators.Shared;

/// <summary>A minimal indented text writer: generated source is built as plain strings, lines end in \n.</summary>
internal sealed class SourceWriter
{
    private readonly StringBuilder _text = new();
    private int _indent;

    public SourceWriter Line(string line = "")
    {
        if (line.Length > 0)
        {
            _text.Append(' ', _indent * 4);
        }

        _text.Append(line).Append('\n');
        return this;
    }

    public SourceWriter Open(string header)
    {
        Line(header);
        Line("{");
        _indent++;
        return this;
    }

    public SourceWriter Close(string suffix = "")
    {
        _indent--;
        Line("}" + suffix);
        return this;
    }

    /// <summary>Writes a one-line XML doc summary.</summary>
    public SourceWriter Summary(string text) => Line($"/// <summary>{text}</summary>");

    public override string ToString() => _text.ToString();
}
