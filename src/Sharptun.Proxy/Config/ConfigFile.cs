namespace Sharptun.Proxy.Config;

/// <summary>
/// The sections of a wireproxy-format file, read the way wireproxy reads them (its config.go over go-ini): <c>#</c>
/// and <c>;</c> start comments, section names and keys are case-insensitive, sections and keys may repeat, and a
/// value <c>$NAME</c> is replaced by the environment variable NAME (<c>$$</c> at the start of a value stands for a
/// literal <c>$</c>). Nothing here knows what a section means; <see cref="ConfigSection"/>'s accessors and the
/// front-ends' own readers validate the values.
/// </summary>
public sealed class ConfigFile
{
    private ConfigFile(string path, ConfigSection root, IReadOnlyList<ConfigSection> sections)
    {
        Path = path;
        Root = root;
        Sections = sections;
    }

    /// <summary>The file's path as given (used in error messages).</summary>
    public string Path { get; }

    /// <summary>The keys before the first section header (wireproxy's <c>WGConfig =</c> lives here).</summary>
    public ConfigSection Root { get; }

    /// <summary>The sections in file order (repeated names stay separate).</summary>
    public IReadOnlyList<ConfigSection> Sections { get; }

    /// <summary>Every section named <paramref name="name"/> (case-insensitive), in file order.</summary>
    public IEnumerable<ConfigSection> Named(string name) =>
        Sections.Where(s => string.Equals(s.Name, name, StringComparison.OrdinalIgnoreCase));

    /// <summary>Parses <paramref name="text"/>.</summary>
    /// <param name="text">The file's contents.</param>
    /// <param name="path">The path to name in errors.</param>
    /// <param name="environment">Looks up environment variables (<see langword="null"/>: the process environment).</param>
    /// <exception cref="ProxyConfigException">A malformed line or an unset <c>$NAME</c>, naming the line.</exception>
    public static ConfigFile Parse(string text, string path, Func<string, string?>? environment = null)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(path);
        environment ??= Environment.GetEnvironmentVariable;
        var sections = new List<ConfigSection>();
        var rootEntries = new List<ConfigEntry>();
        var entries = rootEntries;
        string? name = null;
        var headerLine = 0;
        var lines = text.Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            var lineNumber = i + 1;
            var line = lines[i].Trim().TrimEnd('\r').Trim();
            if (line.Length == 0 || line[0] is '#' or ';')
            {
                continue;
            }

            if (line[0] == '[')
            {
                var close = line.IndexOf(']', StringComparison.Ordinal);
                var rest = close < 0 ? string.Empty : line[(close + 1)..].Trim();
                if (close < 2 || (rest.Length > 0 && rest[0] is not ('#' or ';')))
                {
                    throw new ProxyConfigException(path, lineNumber, $"malformed section header '{line}'");
                }

                if (name is not null)
                {
                    sections.Add(new ConfigSection(name, path, headerLine, entries));
                }

                name = line[1..close].Trim();
                headerLine = lineNumber;
                entries = [];
                continue;
            }

            var equals = line.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0)
            {
                throw new ProxyConfigException(path, lineNumber, $"expected 'Key = Value' or '[Section]', not '{line}'");
            }

            var key = line[..equals].Trim();
            var value = StripComment(line[(equals + 1)..]).Trim();
            entries.Add(new ConfigEntry(key, Expand(value, environment, path, lineNumber), lineNumber));
        }

        if (name is not null)
        {
            sections.Add(new ConfigSection(name, path, headerLine, entries));
        }

        return new ConfigFile(path, new ConfigSection(string.Empty, path, 0, rootEntries), sections);
    }

    // go-ini treats " #" / " ;" after a value as the start of a comment.
    private static string StripComment(string value)
    {
        for (var i = 1; i < value.Length; i++)
        {
            if (value[i] is '#' or ';' && char.IsWhiteSpace(value[i - 1]))
            {
                return value[..i];
            }
        }

        return value;
    }

    private static string Expand(string value, Func<string, string?> environment, string path, int line)
    {
        if (value.Length < 2 || value[0] != '$')
        {
            return value;
        }

        if (value[1] == '$')
        {
            return value[1..];
        }

        var variable = value[1..];
        return environment(variable)
            ?? throw new ProxyConfigException(path, line, $"environment variable '{variable}' (from '${variable}') is not set");
    }
}
