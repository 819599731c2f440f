using System.Globalization;
using System.Text;

namespace Sharptun.Hosting.Metrics;

/// <summary>The Prometheus metric types (text exposition format 0.0.4, <c># TYPE</c> lines).</summary>
public enum MetricType
{
    /// <summary>A value that only goes up (names end in <c>_total</c> by convention).</summary>
    Counter,

    /// <summary>A value that goes up and down.</summary>
    Gauge,
}

/// <summary>
/// Writes metrics in Prometheus' text exposition format 0.0.4: for each family one <c># HELP</c> and one
/// <c># TYPE</c> line, then its samples (<c>name{label="value"} 42</c>). Names and label names are checked
/// (<c>[a-zA-Z_:][a-zA-Z0-9_:]*</c>, labels without ':'); label values and help text are escaped (backslash, double
/// quote, newline). A family name may appear once per scrape. Not thread-safe: one writer per scrape.
/// </summary>
public sealed class MetricsWriter
{
    private readonly StringBuilder _text;
    private readonly HashSet<string> _families;
    private string? _family;

    internal MetricsWriter(StringBuilder text, HashSet<string> families)
    {
        _text = text;
        _families = families;
    }

    /// <summary>
    /// The text one source writes on its own (what it adds to a scrape): for testing an <see cref="IMetricsSource"/>.
    /// </summary>
    /// <exception cref="ArgumentException">The source writes an invalid name.</exception>
    /// <exception cref="InvalidOperationException">The source repeats a family or writes a sample before a family.</exception>
    public static string Render(IMetricsSource source)
    {
        ArgumentNullException.ThrowIfNull(source);
        var text = new StringBuilder();
        source.WriteMetrics(new MetricsWriter(text, new HashSet<string>(StringComparer.Ordinal)));
        return text.ToString();
    }

    /// <summary>Starts a metric family: its <c># HELP</c> and <c># TYPE</c> lines. Samples that follow belong to it.</summary>
    /// <exception cref="ArgumentException">The name is not a valid metric name.</exception>
    /// <exception cref="InvalidOperationException">The family was already written in this scrape.</exception>
    public void BeginFamily(string name, MetricType type, string help)
    {
        ArgumentNullException.ThrowIfNull(help);
        if (!IsValidName(name, allowColon: true))
        {
            throw new ArgumentException($"'{name}' is not a valid Prometheus metric name.", nameof(name));
        }

        if (!_families.Add(name))
        {
            throw new InvalidOperationException($"The metric family '{name}' was already written in this scrape.");
        }

        _family = name;
        _text.Append("# HELP ").Append(name).Append(' ');
        AppendEscaped(help, escapeQuote: false);
        _text.Append('\n').Append("# TYPE ").Append(name).Append(' ')
            .Append(type == MetricType.Counter ? "counter" : "gauge").Append('\n');
    }

    /// <summary>A sample without labels of the current family.</summary>
    public void Sample(double value) => Sample(value, []);

    /// <summary>A sample with one label of the current family.</summary>
    public void Sample(double value, string labelName, string labelValue) =>
        Sample(value, [new KeyValuePair<string, string>(labelName, labelValue)]);

    /// <summary>A sample with labels of the current family.</summary>
    /// <exception cref="InvalidOperationException">No family was begun.</exception>
    /// <exception cref="ArgumentException">A label name is invalid or repeated.</exception>
    public void Sample(double value, params ReadOnlySpan<KeyValuePair<string, string>> labels)
    {
        var family = _family ?? throw new InvalidOperationException("Call BeginFamily before writing samples.");
        var start = _text.Length;
        _text.Append(family);
        if (labels.Length > 0)
        {
            _text.Append('{');
            for (var i = 0; i < labels.Length; i++)
            {
                var (name, labelValue) = labels[i];
                if (!IsValidName(name, allowColon: false) || name.StartsWith("__", StringComparison.Ordinal))
                {
                    _text.Length = start;
                    throw new ArgumentException($"'{name}' is not a valid Prometheus label name.", nameof(labels));
                }

                for (var j = 0; j < i; j++)
                {
                    if (labels[j].Key == name)
                    {
                        _text.Length = start;
                        throw new ArgumentException($"The label '{name}' is repeated.", nameof(labels));
                    }
                }

                _text.Append(i == 0 ? "" : ",").Append(name).Append("=\"");
                AppendEscaped(labelValue ?? string.Empty, escapeQuote: true);
                _text.Append('"');
            }

            _text.Append('}');
        }

        _text.Append(' ').Append(FormatValue(value)).Append('\n');
    }

    /// <summary>Prometheus' value syntax: Go's float formatting, with <c>NaN</c>, <c>+Inf</c>, <c>-Inf</c>.</summary>
    internal static string FormatValue(double value) =>
        double.IsNaN(value) ? "NaN"
        : double.IsPositiveInfinity(value) ? "+Inf"
        : double.IsNegativeInfinity(value) ? "-Inf"
        : value.ToString("R", CultureInfo.InvariantCulture);

    internal static bool IsValidName(string? name, bool allowColon)
    {
        if (string.IsNullOrEmpty(name))
        {
            return false;
        }

        for (var i = 0; i < name.Length; i++)
        {
            var c = name[i];
            var ok = char.IsAsciiLetter(c) || c == '_' || (allowColon && c == ':') || (i > 0 && char.IsAsciiDigit(c));
            if (!ok)
            {
                return false;
            }
        }

        return true;
    }

    private void AppendEscaped(string text, bool escapeQuote)
    {
        foreach (var c in text)
        {
            switch (c)
            {
                case '\\':
                    _text.Append(@"\\");
                    break;
                case '\n':
                    _text.Append(@"\n");
                    break;
                case '"' when escapeQuote:
                    _text.Append("\\\"");
                    break;
                default:
                    _text.Append(c);
                    break;
            }
        }
    }
}

/// <summary>
/// Adds metrics to a scrape of <see cref="MetricsServer"/>'s <c>/metrics</c>: the proxy its open connections and
/// counters by front-end, the gateway its per-peer flow counters. Called on a thread-pool thread once per scrape,
/// possibly concurrently with other scrapes: read counters (Interlocked/volatile), do not block.
/// </summary>
public interface IMetricsSource
{
    /// <summary>Writes this source's metric families (names unique across all sources; prefix them, e.g. <c>sharptun_proxy_</c>).</summary>
    void WriteMetrics(MetricsWriter writer);
}

/// <summary>An <see cref="IMetricsSource"/> from a callback.</summary>
/// <param name="write">Writes the families.</param>
public sealed class DelegateMetricsSource(Action<MetricsWriter> write) : IMetricsSource
{
    private readonly Action<MetricsWriter> _write = write ?? throw new ArgumentNullException(nameof(write));

    /// <inheritdoc/>
    public void WriteMetrics(MetricsWriter writer) => _write(writer);
}
