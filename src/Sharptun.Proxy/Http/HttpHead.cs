using System.Globalization;
using System.Text;

namespace Sharptun.Proxy.Http;

/// <summary>
/// A parsed HTTP/1.x message head (RFC 9112 §2.1): the three parts of the start line and the field lines in order.
/// Text is decoded as Latin-1 so that obs-text bytes in field values go back out unchanged.
/// </summary>
/// <remarks>
/// <code>
/// request-line = method SP request-target SP HTTP-version          (RFC 9112 §3)
/// status-line  = HTTP-version SP status-code SP [ reason-phrase ]   (RFC 9112 §4)
/// field-line   = field-name ":" OWS field-value OWS                 (RFC 9112 §5)
/// </code>
/// </remarks>
internal sealed class HttpHead
{
    private HttpHead(string first, string second, string third, int minorVersion, List<KeyValuePair<string, string>> fields)
    {
        First = first;
        Second = second;
        Third = third;
        MinorVersion = minorVersion;
        Fields = fields;
    }

    /// <summary>The method of a request; the HTTP-version of a response.</summary>
    public string First { get; }

    /// <summary>The request-target of a request; the status code of a response.</summary>
    public string Second { get; }

    /// <summary>The HTTP-version of a request; the reason phrase of a response (may be empty).</summary>
    public string Third { get; }

    /// <summary>The minor HTTP version (0 or 1); the major version is always 1.</summary>
    public int MinorVersion { get; }

    /// <summary>The field lines in order, names as received, values without surrounding whitespace.</summary>
    public List<KeyValuePair<string, string>> Fields { get; }

    /// <summary>Parses a request head; on failure <paramref name="error"/> says what is wrong (for the 400 body).</summary>
    public static HttpHead? TryParseRequest(ReadOnlySpan<byte> head, out string? error, out bool badVersion)
    {
        badVersion = false;
        var lineEnd = LineEnd(head, out var next);
        var line = head[..lineEnd];

        // RFC 9112 §3: method SP request-target SP HTTP-version, single spaces, no other whitespace.
        var sp1 = line.IndexOf((byte)' ');
        var sp2 = sp1 < 0 ? -1 : line[(sp1 + 1)..].IndexOf((byte)' ');
        if (sp1 <= 0 || sp2 <= 0)
        {
            error = "the request line is not 'method SP request-target SP HTTP-version'";
            return null;
        }

        sp2 += sp1 + 1;
        var method = line[..sp1];
        var target = line[(sp1 + 1)..sp2];
        var version = line[(sp2 + 1)..];
        if (!IsToken(method))
        {
            error = "the method is not a token";
            return null;
        }

        if (target.IndexOfAnyInRange((byte)0, (byte)' ') >= 0 || target.IndexOf((byte)0x7F) >= 0)
        {
            error = "the request-target contains whitespace or control characters";
            return null;
        }

        if (!TryParseVersion(version, out var minor))
        {
            badVersion = version.StartsWith("HTTP/"u8);
            error = badVersion ? "only HTTP/1.0 and HTTP/1.1 are supported" : "the request line does not end in an HTTP version";
            return null;
        }

        var fields = new List<KeyValuePair<string, string>>();
        if (!TryParseFields(head[next..], fields, out error))
        {
            return null;
        }

        return new HttpHead(Encoding.Latin1.GetString(method), Encoding.Latin1.GetString(target), Encoding.Latin1.GetString(version), minor, fields);
    }

    /// <summary>Parses a response head; on failure <paramref name="error"/> says what is wrong.</summary>
    public static HttpHead? TryParseResponse(ReadOnlySpan<byte> head, out string? error)
    {
        var lineEnd = LineEnd(head, out var next);
        var line = head[..lineEnd];

        // RFC 9112 §4: HTTP-version SP 3DIGIT SP [ reason-phrase ]; some servers omit the SP before an empty reason.
        if (line.Length < 12 || !TryParseVersion(line[..8], out var minor) || line[8] != (byte)' '
            || !char.IsAsciiDigit((char)line[9]) || !char.IsAsciiDigit((char)line[10]) || !char.IsAsciiDigit((char)line[11])
            || (line.Length > 12 && line[12] != (byte)' '))
        {
            error = "the origin's status line is malformed";
            return null;
        }

        var fields = new List<KeyValuePair<string, string>>();
        if (!TryParseFields(head[next..], fields, out error))
        {
            error = "the origin's response head is malformed: " + error;
            return null;
        }

        var reason = line.Length > 13 ? Encoding.Latin1.GetString(line[13..]) : string.Empty;
        return new HttpHead(Encoding.Latin1.GetString(line[..8]), Encoding.Latin1.GetString(line[9..12]), reason, minor, fields);
    }

    /// <summary>The status code of a response head.</summary>
    public int StatusCode => int.Parse(Second, NumberStyles.None, CultureInfo.InvariantCulture);

    /// <summary>Whether a field named <paramref name="name"/> is present.</summary>
    public bool Has(string name)
    {
        foreach (var field in Fields)
        {
            if (string.Equals(field.Key, name, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Whether a comma-separated list field (every line of it) contains <paramref name="token"/>, case-insensitively.</summary>
    public bool HasToken(string name, string token)
    {
        foreach (var field in Fields)
        {
            if (string.Equals(field.Key, name, StringComparison.OrdinalIgnoreCase))
            {
                foreach (var range in field.Value.AsSpan().Split(','))
                {
                    if (field.Value.AsSpan()[range].Trim(" \t").Equals(token, StringComparison.OrdinalIgnoreCase))
                    {
                        return true;
                    }
                }
            }
        }

        return false;
    }

    /// <summary>
    /// How the message body is delimited (RFC 9112 §6.3), from Transfer-Encoding and Content-Length; null with an
    /// <paramref name="error"/> when the framing is invalid or ambiguous (a request smuggling risk), which a server
    /// must answer with 400 and close. For a <paramref name="response"/>, a transfer coding other than chunked means
    /// the body runs until the connection closes, and Transfer-Encoding overrides Content-Length (§6.3 (3)).
    /// </summary>
    public BodyFraming? TryGetFraming(bool response, out long contentLength, out string? error)
    {
        contentLength = -1;
        error = null;
        string? transferEncoding = null;
        foreach (var field in Fields)
        {
            if (string.Equals(field.Key, "Transfer-Encoding", StringComparison.OrdinalIgnoreCase))
            {
                transferEncoding = transferEncoding is null ? field.Value : transferEncoding + "," + field.Value;
            }
            else if (string.Equals(field.Key, "Content-Length", StringComparison.OrdinalIgnoreCase))
            {
                // RFC 9110 §8.6: a list of identical values may be taken as one; anything else is an error.
                foreach (var range in field.Value.AsSpan().Split(','))
                {
                    var item = field.Value.AsSpan()[range].Trim(" \t");
                    if (item.Length == 0 || item.Length > 18 || !long.TryParse(item, NumberStyles.None, CultureInfo.InvariantCulture, out var value))
                    {
                        error = $"Content-Length '{field.Value}' is not a non-negative decimal number";
                        return null;
                    }

                    if (contentLength >= 0 && contentLength != value)
                    {
                        error = "Content-Length appears with different values";
                        return null;
                    }

                    contentLength = value;
                }
            }
        }

        if (transferEncoding is not null)
        {
            // RFC 9112 §6.1: a sender MUST NOT send Content-Length with Transfer-Encoding; §6.3 lets a server reject it.
            if (contentLength >= 0 && !response)
            {
                error = "both Transfer-Encoding and Content-Length are present";
                return null;
            }

            // RFC 9112 §6.3 (4): chunked must be the final coding of a request; this proxy relays only chunked itself.
            if (!transferEncoding.AsSpan().Trim(" \t,").Equals("chunked", StringComparison.OrdinalIgnoreCase))
            {
                if (response)
                {
                    contentLength = -1;
                    return BodyFraming.UntilClose;
                }

                error = $"Transfer-Encoding '{transferEncoding}' is not supported (only chunked)";
                return null;
            }

            contentLength = -1;
            return BodyFraming.Chunked;
        }

        if (response && contentLength < 0)
        {
            return BodyFraming.UntilClose;
        }

        return contentLength > 0 ? BodyFraming.ContentLength : BodyFraming.None;
    }

    private static bool TryParseFields(ReadOnlySpan<byte> lines, List<KeyValuePair<string, string>> fields, out string? error)
    {
        while (!lines.IsEmpty)
        {
            var end = LineEnd(lines, out var next);
            var line = lines[..end];
            lines = lines[next..];

            // RFC 9112 §5.2: obs-fold is deprecated; a server may reject it with 400.
            if (line.Length > 0 && (line[0] == (byte)' ' || line[0] == (byte)'\t'))
            {
                error = "a field line starts with whitespace (obsolete line folding)";
                return false;
            }

            var colon = line.IndexOf((byte)':');
            if (colon < 0)
            {
                error = "a field line has no colon";
                return false;
            }

            // RFC 9112 §5.1: no whitespace between the field name and the colon; a server MUST reject that with 400.
            var name = line[..colon];
            if (!IsToken(name))
            {
                error = "a field name is empty or not a token";
                return false;
            }

            var value = line[(colon + 1)..].Trim(" \t"u8);
            foreach (var b in value)
            {
                // RFC 9110 §5.5: field values are VCHAR, obs-text, SP and HTAB; CR, LF and NUL are never allowed.
                if ((b < 0x20 && b != (byte)'\t') || b == 0x7F)
                {
                    error = "a field value contains a control character";
                    return false;
                }
            }

            fields.Add(new(Encoding.Latin1.GetString(name), Encoding.Latin1.GetString(value)));
        }

        error = null;
        return true;
    }

    private static int LineEnd(ReadOnlySpan<byte> data, out int next)
    {
        var newline = data.IndexOf((byte)'\n');
        if (newline < 0)
        {
            next = data.Length;
            return data.Length;
        }

        next = newline + 1;
        return newline > 0 && data[newline - 1] == (byte)'\r' ? newline - 1 : newline;
    }

    private static bool TryParseVersion(ReadOnlySpan<byte> version, out int minor)
    {
        minor = 0;
        if (version.Length != 8 || !version.StartsWith("HTTP/1."u8) || (version[7] != (byte)'0' && version[7] != (byte)'1'))
        {
            return false;
        }

        minor = version[7] - '0';
        return true;
    }

    // RFC 9110 §5.6.2: token = 1*tchar.
    private static bool IsToken(ReadOnlySpan<byte> text)
    {
        if (text.IsEmpty)
        {
            return false;
        }

        foreach (var b in text)
        {
            if (!(char.IsAsciiLetterOrDigit((char)b) || "!#$%&'*+-.^_`|~"u8.Contains(b)))
            {
                return false;
            }
        }

        return true;
    }
}

/// <summary>How a message body is delimited (RFC 9112 §6.3).</summary>
internal enum BodyFraming
{
    /// <summary>No body.</summary>
    None,

    /// <summary>Exactly Content-Length bytes.</summary>
    ContentLength,

    /// <summary>The chunked transfer coding (RFC 9112 §7.1).</summary>
    Chunked,

    /// <summary>Until the connection closes (a response without length, RFC 9112 §6.3 (8)).</summary>
    UntilClose,
}
