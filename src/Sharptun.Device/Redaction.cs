namespace Sharptun.Device;

/// <summary>
/// What of a request line or config line may appear in an error message or the log. Keys must never be logged
/// (issue 7 item 11), and a malformed line can hold one anywhere: a private key pasted into the wrong field, a bare
/// base64 key (whose trailing '=' makes it look like <c>KEY=</c>), a hex key without its <c>private_key=</c>.
/// </summary>
internal static class Redaction
{
    /// <summary>
    /// A run of this many base64/hex characters may be (part of) a key and is never shown: a 32-byte key is 64 hex or
    /// 44 base64 characters, so even half a key is caught.
    /// </summary>
    public const int KeyLikeRun = 24;

    /// <summary>A shorter run (from this length) is hidden too when it holds a digit, '+' or '/' (so words such as <c>PersistentKeepalive</c> stay).</summary>
    public const int ShortKeyLikeRun = 12;

    /// <summary>
    /// <paramref name="text"/> itself when it cannot hold a key, else a placeholder that gives only its length. Field
    /// names, numbers, ports, addresses, host names and prefixes (broken up by ':', '.', '-', '[', ...) stay readable.
    /// For values of key fields (<c>private_key</c>, <c>preshared_key</c>, ...) use <see cref="Hidden"/> instead.
    /// </summary>
    public static string Text(string? text)
    {
        if (text is null)
        {
            return "";
        }

        var run = 0;
        var runHasNonLetter = false;
        foreach (var c in text)
        {
            if (char.IsAsciiLetterOrDigit(c) || c is '+' or '/' or '=')
            {
                run++;
                runHasNonLetter |= !char.IsAsciiLetter(c);
                if (run >= KeyLikeRun || (run >= ShortKeyLikeRun && runHasNonLetter))
                {
                    return Hidden(text);
                }
            }
            else
            {
                run = 0;
                runHasNonLetter = false;
            }
        }

        return text;
    }

    /// <summary>A placeholder for a value that is never shown (a key field's value, a line that failed to parse).</summary>
    public static string Hidden(string? text) => $"<{text?.Length ?? 0} characters hidden>";
}
