namespace Sharptun.Cli;

/// <summary>
/// What a command may touch: its standard streams and a cancellation token (Ctrl+C / SIGTERM). Tests pass
/// StringReader/StringWriter; <see cref="Program"/> passes the console.
/// </summary>
internal sealed record CliContext(TextReader In, TextWriter Out, TextWriter Error, CancellationToken Cancellation = default)
{
    /// <summary>Program name used in messages, as wg uses PROG_NAME.</summary>
    public const string ProgramName = "sharptun";
}
