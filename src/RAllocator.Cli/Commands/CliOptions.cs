using System.CommandLine;
using System.CommandLine.Parsing;

namespace RAllocator.Cli.Commands;

/// <summary>Options and arguments shared by several commands, with validation that names the option.</summary>
internal static class CliOptions
{
    /// <summary>A byte-size option (<see cref="ByteSize"/> syntax); required when <paramref name="defaultValue"/> is null.</summary>
    public static Option<ulong> Size(string name, string description, ulong? defaultValue = null)
    {
        var option = new Option<ulong>(name)
        {
            Description = $"{description} Units: K/KiB, M/MiB, G/GiB, T/TiB (powers of 1024), KB/MB/GB/TB (powers of 1000).",
            HelpName = "SIZE",
            Required = defaultValue is null,
            CustomParser = result => ParseSize(result, name, defaultValue ?? 0),
        };
        if (defaultValue is { } value)
        {
            option.DefaultValueFactory = _ => value;
        }

        return option;
    }

    /// <summary>
    /// <c>--blade HOST:PORT</c>, repeatable: every value must parse as a <see cref="RAllocator.Hosting.BladeEndpoint"/>
    /// (the error names the option and the value); with <paramref name="rejectDuplicates"/>, a blade named twice is an error too.
    /// </summary>
    public static Option<string[]> Blades(string description, bool required = false, bool rejectDuplicates = false)
    {
        var option = new Option<string[]>("--blade")
        {
            Description = description,
            HelpName = "HOST:PORT",
            Required = required,
            AllowMultipleArgumentsPerToken = false,
        };
        option.Validators.Add(result =>
        {
            var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            foreach (var token in result.Tokens)
            {
                try
                {
                    if (!seen.Add(RAllocator.Hosting.BladeEndpoint.Parse(token.Value).ToString()) && rejectDuplicates)
                    {
                        result.AddError($"--blade {token.Value} is named twice: every blade appears once.");
                    }
                }
                catch (FormatException ex)
                {
                    result.AddError($"--blade {ex.Message}");
                }
            }
        });
        return option;
    }

    /// <summary>The path of a blade image file, a required argument.</summary>
    public static Argument<string> ImagePath(string description) => new("PATH")
    {
        Description = description,
        HelpName = "PATH",
    };

    /// <summary>Adds a validator that the option's value is within [<paramref name="min"/>, <paramref name="max"/>].</summary>
    public static Option<T> InRange<T>(this Option<T> option, T min, T max, string? why = null)
        where T : struct, IComparable<T>
    {
        option.Validators.Add(result =>
        {
            if (result.Tokens.Count == 0)
            {
                return;
            }

            T value;
            try
            {
                value = result.GetValueOrDefault<T>();
            }
            catch (InvalidOperationException)
            {
                // Not a number: the parser already reported "Cannot parse argument ... for option ...".
                return;
            }

            if (value.CompareTo(min) < 0 || value.CompareTo(max) > 0)
            {
                result.AddError($"{option.Name} {result.Tokens[0].Value} is out of range: it must be between {min} and {max}{(why is null ? "" : $" ({why})")}.");
            }
        });
        return option;
    }

    /// <summary>Restricts a text option to <paramref name="values"/>, with an error that names the option.</summary>
    public static Option<string> OneOf(this Option<string> option, params string[] values)
    {
        option.Validators.Add(result =>
        {
            string value = result.Tokens.Count == 0 ? string.Empty : result.Tokens[0].Value;
            if (result.Tokens.Count > 0 && !values.Contains(value))
            {
                result.AddError($"{option.Name} '{value}' is not one of: {string.Join(", ", values)}.");
            }
        });
        return option;
    }

    /// <summary>Adds a check of a size option's value; skipped when the text is not a size (the parser reported that).</summary>
    public static Option<ulong> CheckSize(this Option<ulong> option, Func<ulong, string, string?> check)
    {
        option.Validators.Add(result =>
        {
            if (result.Tokens.Count == 0 || !ByteSize.TryParse(result.Tokens[0].Value, out ulong value, out _))
            {
                return;
            }

            if (check(value, result.Tokens[0].Value) is { } error)
            {
                result.AddError(error);
            }
        });
        return option;
    }

    private static ulong ParseSize(ArgumentResult result, string name, ulong defaultValue)
    {
        if (result.Tokens.Count == 0)
        {
            return defaultValue;
        }

        string token = result.Tokens[0].Value;
        if (ByteSize.TryParse(token, out ulong bytes, out string? error))
        {
            return bytes;
        }

        result.AddError($"{name}: {error}; expected {ByteSize.Forms}.");
        return 0;
    }
}
