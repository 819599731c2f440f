namespace Sharptun.Proxy.Config;

/// <summary>A config file is wrong; the message names the file and line (<c>proxy.conf:12: ...</c>).</summary>
public sealed class ProxyConfigException : FormatException
{
    /// <summary>A config error at <paramref name="file"/>:<paramref name="line"/> (line 0: the file as a whole).</summary>
    public ProxyConfigException(string file, int line, string message)
        : base(line > 0 ? $"{file}:{line}: {message}" : $"{file}: {message}")
    {
        File = file;
        Line = line;
    }

    /// <summary>The config file's path as given.</summary>
    public string File { get; }

    /// <summary>The 1-based line, or 0 when the error is about the file as a whole.</summary>
    public int Line { get; }
}
