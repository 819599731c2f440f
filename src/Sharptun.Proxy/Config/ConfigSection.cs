using System.Globalization;

namespace Sharptun.Proxy.Config;

/// <summary>
/// One <c>[Name]</c> section of a wireproxy-format config file (or the keys before the first section, whose
/// <see cref="Name"/> is empty). Keys compare case-insensitively; a key may repeat, and the accessors that read one
/// value take the last one (as wireproxy's ini reader does), while <see cref="GetAll"/> returns every occurrence.
/// Every accessor reports a bad value as a <see cref="ProxyConfigException"/> naming the file and line.
/// </summary>
public sealed class ConfigSection
{
    internal ConfigSection(string name, string file, int line, IReadOnlyList<ConfigEntry> entries)
    {
        Name = name;
        File = file;
        Line = line;
        Entries = entries;
    }

    /// <summary>The section name as written, without brackets (empty for the keys before the first section).</summary>
    public string Name { get; }

    /// <summary>The file the section was read from.</summary>
    public string File { get; }

    /// <summary>The 1-based line of the section header (0 for the keys before the first section).</summary>
    public int Line { get; }

    /// <summary>The section's entries in file order.</summary>
    public IReadOnlyList<ConfigEntry> Entries { get; }

    /// <summary>The last entry with <paramref name="key"/>, if any.</summary>
    public ConfigEntry? Find(string key)
    {
        for (var i = Entries.Count - 1; i >= 0; i--)
        {
            if (string.Equals(Entries[i].Key, key, StringComparison.OrdinalIgnoreCase))
            {
                return Entries[i];
            }
        }

        return null;
    }

    /// <summary>The last value of <paramref name="key"/>, or <see langword="null"/>.</summary>
    public string? Get(string key) => Find(key)?.Value;

    /// <summary>Every entry with <paramref name="key"/>, in file order.</summary>
    public IEnumerable<ConfigEntry> GetAll(string key) =>
        Entries.Where(e => string.Equals(e.Key, key, StringComparison.OrdinalIgnoreCase));

    /// <summary>The last non-empty value of <paramref name="key"/>.</summary>
    /// <exception cref="ProxyConfigException">The key is missing or empty.</exception>
    public string Require(string key)
    {
        var entry = Find(key);
        if (entry is null || entry.Value.Value.Length == 0)
        {
            throw Error(entry?.Line ?? Line, $"[{Name}] needs {key} =");
        }

        return entry.Value.Value;
    }

    /// <summary>An integer value in [<paramref name="min"/>, <paramref name="max"/>], or <paramref name="fallback"/> when the key is absent.</summary>
    /// <exception cref="ProxyConfigException">The value is not such an integer.</exception>
    public int GetInt(string key, int fallback, int min, int max)
    {
        var entry = Find(key);
        if (entry is null)
        {
            return fallback;
        }

        if (!int.TryParse(entry.Value.Value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) || value < min || value > max)
        {
            throw Error(entry.Value.Line, $"{key} must be a whole number from {min} to {max}, not '{entry.Value.Value}'");
        }

        return value;
    }

    /// <summary>A duration written in whole seconds (wireproxy's unit), or <paramref name="fallback"/> when the key is absent.</summary>
    /// <exception cref="ProxyConfigException">The value is not a non-negative number of seconds.</exception>
    public TimeSpan GetSeconds(string key, TimeSpan fallback)
    {
        var entry = Find(key);
        if (entry is null)
        {
            return fallback;
        }

        if (!int.TryParse(entry.Value.Value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var seconds) || seconds < 0)
        {
            throw Error(entry.Value.Line, $"{key} must be a whole number of seconds, not '{entry.Value.Value}'");
        }

        return TimeSpan.FromSeconds(seconds);
    }

    /// <summary>Fails on the first key not in <paramref name="known"/> (compared case-insensitively).</summary>
    /// <exception cref="ProxyConfigException">An unknown key, naming its line.</exception>
    public void RejectUnknownKeys(params string[] known)
    {
        foreach (var entry in Entries)
        {
            if (!known.Contains(entry.Key, StringComparer.OrdinalIgnoreCase))
            {
                throw Error(entry.Line, $"unknown key '{entry.Key}' in [{Name}] (known: {string.Join(", ", known)})");
            }
        }
    }

    /// <summary>A config error at <paramref name="line"/> of this section's file.</summary>
    public ProxyConfigException Error(int line, string message) => new(File, line, message);
}
