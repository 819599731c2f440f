using System.Globalization;
using System.Text.RegularExpressions;

namespace Sharptun.Hosting.Tests;

/// <summary>
/// A strict reader of Prometheus' text format 0.0.4, for checking what the server writes: every family has one HELP
/// and one TYPE line before its samples, families are contiguous and unique, names and label syntax are valid, values
/// parse. Throws <see cref="FormatException"/> naming the line otherwise.
/// </summary>
internal static partial class PrometheusText
{
    [GeneratedRegex(@"^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$")]
    private static partial Regex Help();

    [GeneratedRegex(@"^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$")]
    private static partial Regex Type();

    [GeneratedRegex(@"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{((?:[a-zA-Z_][a-zA-Z0-9_]*=""(?:[^""\\\n]|\\\\|\\""|\\n)*"",?)*)\})? (\S+)$")]
    private static partial Regex Sample();

    [GeneratedRegex(@"([a-zA-Z_][a-zA-Z0-9_]*)=""((?:[^""\\]|\\\\|\\""|\\n)*)""")]
    private static partial Regex Label();

    /// <summary>Samples keyed by <c>name{a="x",b="y"}</c> (labels as written, unescaped values) with their values.</summary>
    public static Dictionary<string, double> Parse(string text)
    {
        Assert.EndsWith("\n", text, StringComparison.Ordinal);
        var samples = new Dictionary<string, double>(StringComparer.Ordinal);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        string? family = null;
        var typed = false;
        var lineNumber = 0;
        foreach (var line in text[..^1].Split('\n'))
        {
            lineNumber++;
            if (Help().Match(line) is { Success: true } h)
            {
                family = h.Groups[1].Value;
                typed = false;
                if (!seen.Add(family))
                {
                    throw new FormatException($"line {lineNumber}: family {family} appears twice");
                }

                continue;
            }

            if (Type().Match(line) is { Success: true } t)
            {
                if (t.Groups[1].Value != family || typed)
                {
                    throw new FormatException($"line {lineNumber}: TYPE not right after its HELP: {line}");
                }

                typed = true;
                continue;
            }

            var m = Sample().Match(line);
            if (!m.Success)
            {
                throw new FormatException($"line {lineNumber}: not a sample: {line}");
            }

            if (m.Groups[1].Value != family || !typed)
            {
                throw new FormatException($"line {lineNumber}: sample outside its family {family}: {line}");
            }

            var value = m.Groups[4].Value switch
            {
                "NaN" => double.NaN,
                "+Inf" => double.PositiveInfinity,
                "-Inf" => double.NegativeInfinity,
                var v => double.Parse(v, NumberStyles.Float, CultureInfo.InvariantCulture),
            };
            var labels = string.Join(",", Label().Matches(m.Groups[3].Value).Select(l =>
                $"{l.Groups[1].Value}=\"{Unescape(l.Groups[2].Value)}\""));
            var key = labels.Length == 0 ? family! : $"{family}{{{labels}}}";
            if (!samples.TryAdd(key, value))
            {
                throw new FormatException($"line {lineNumber}: sample {key} repeated");
            }
        }

        return samples;
    }

    private static string Unescape(string value)
    {
        var text = new System.Text.StringBuilder();
        for (var i = 0; i < value.Length; i++)
        {
            if (value[i] == '\\' && i + 1 < value.Length)
            {
                i++;
                text.Append(value[i] == 'n' ? '\n' : value[i]);
            }
            else
            {
                text.Append(value[i]);
            }
        }

        return text.ToString();
    }
}
