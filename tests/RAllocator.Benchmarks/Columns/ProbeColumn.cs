using System.Collections.Concurrent;
using System.Globalization;
using System.Reflection;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace RAllocator.Benchmarks.Columns;

/// <summary>
/// A benchmark class that can count, in the host process, what one operation of a benchmark costs besides time:
/// fabric round trips and verbs, blade handler calls, metadata bytes. Counted on the very code path measured,
/// because time is measured in a child process whose counters the host cannot see.
/// </summary>
public interface ICostProbe
{
    /// <summary>
    /// Runs <paramref name="benchmarkMethod"/>'s workload a few times with this instance's [Params] already set
    /// and returns named values per operation (for example "RoundTrips/op").
    /// </summary>
    IReadOnlyDictionary<string, double> Probe(string benchmarkMethod);
}

/// <summary>
/// A summary column filled by <see cref="ICostProbe.Probe"/>: the host creates the benchmark class, sets its
/// parameters from the case, and asks it. Results are cached per case.
/// </summary>
public sealed class ProbeColumn(string columnName, string legend, string format = "0.###") : IColumn
{
    private static readonly ConcurrentDictionary<string, IReadOnlyDictionary<string, double>> s_cache = new();

    public string Id => $"{nameof(ProbeColumn)}.{ColumnName}";

    public string ColumnName { get; } = columnName;

    public bool AlwaysShow => true;

    public ColumnCategory Category => ColumnCategory.Custom;

    public int PriorityInCategory => 0;

    public bool IsNumeric => true;

    public UnitType UnitType => UnitType.Dimensionless;

    public string Legend { get; } = legend;

    public bool IsAvailable(Summary summary) => true;

    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var values = s_cache.GetOrAdd(benchmarkCase.DisplayInfo, _ => ProbeCase(benchmarkCase));
        return values.TryGetValue(ColumnName, out double value) ? value.ToString(format, CultureInfo.InvariantCulture) : "-";
    }

    public override string ToString() => ColumnName;

    private static IReadOnlyDictionary<string, double> ProbeCase(BenchmarkCase benchmarkCase)
    {
        var type = benchmarkCase.Descriptor.Type;
        if (Activator.CreateInstance(type) is not ICostProbe probe)
        {
            return new Dictionary<string, double>();
        }

        foreach (var parameter in benchmarkCase.Parameters.Items)
        {
            var member = type.GetMember(parameter.Name, BindingFlags.Public | BindingFlags.Instance).FirstOrDefault();
            switch (member)
            {
                case PropertyInfo property: property.SetValue(probe, parameter.Value); break;
                case FieldInfo field: field.SetValue(probe, parameter.Value); break;
            }
        }

        try
        {
            return probe.Probe(benchmarkCase.Descriptor.WorkloadMethod.Name);
        }
        catch (Exception ex)
        {
            Console.Error.WriteLine($"// probe of {benchmarkCase.DisplayInfo} failed: {ex.Message}");
            return new Dictionary<string, double>();
        }
    }
}
