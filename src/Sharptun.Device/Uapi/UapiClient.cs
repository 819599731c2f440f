using System.Net.Sockets;
using System.Text;

namespace Sharptun.Device.Uapi;

/// <summary>
/// A minimal client for a UAPI unix socket (ours or wireguard-go's): what <c>wg</c> does, for <c>sharptun show</c>
/// and tests. One request per call, on a fresh connection.
/// </summary>
public static class UapiClient
{
    /// <summary>Largest reply accepted (a get of a very large device is a few MB).</summary>
    public const int MaxReplyBytes = 64 << 20;

    /// <summary>
    /// Sends <c>get=1</c> and returns the whole reply text, ending in <c>errno=N\n\n</c> (parse it with
    /// <see cref="UapiParser.TryParseGet"/>).
    /// </summary>
    /// <exception cref="IOException">Cannot connect, or the server closed the connection before a complete reply.</exception>
    public static Task<string> GetAsync(string socketPath, CancellationToken cancel = default) =>
        ExchangeAsync(socketPath, "get=1\n\n", cancel);

    /// <summary>Sends <c>set=1</c> with <paramref name="body"/> (key=value lines) and returns the errno of the reply.</summary>
    /// <exception cref="IOException">Cannot connect, or no complete reply.</exception>
    public static async Task<int> SetAsync(string socketPath, string body, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(body);
        var request = new StringBuilder("set=1\n").Append(body);
        if (body.Length > 0 && !body.EndsWith('\n'))
        {
            request.Append('\n');
        }

        var reply = await ExchangeAsync(socketPath, request.Append('\n').ToString(), cancel).ConfigureAwait(false);
        return TryParseErrno(reply, out var errno) ? errno : throw new IOException($"malformed UAPI reply: {reply}");
    }

    /// <summary>Reads the errno of a reply (its last <c>errno=N</c> line).</summary>
    public static bool TryParseErrno(string reply, out int errno)
    {
        errno = 0;
        var trimmed = reply.AsSpan().TrimEnd('\n');
        var start = trimmed.LastIndexOf('\n') + 1;
        var line = trimmed[start..];
        return line.StartsWith("errno=") && int.TryParse(line["errno=".Length..], System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out errno);
    }

    /// <summary>
    /// The interface names with a socket in <paramref name="directory"/> (what <c>wg show interfaces</c> lists for
    /// userspace implementations), sorted.
    /// </summary>
    public static IReadOnlyList<string> ListInterfaces(string? directory = null)
    {
        directory ??= UapiServer.DefaultSocketDirectory;
        var names = new List<string>();
        if (!Directory.Exists(directory))
        {
            return names;
        }

        foreach (var path in Directory.EnumerateFiles(directory, "*.sock"))
        {
            names.Add(Path.GetFileNameWithoutExtension(path));
        }

        names.Sort(StringComparer.Ordinal);
        return names;
    }

    private static async Task<string> ExchangeAsync(string socketPath, string request, CancellationToken cancel)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancel).ConfigureAwait(false);
            await socket.SendAsync(Encoding.UTF8.GetBytes(request), SocketFlags.None, cancel).ConfigureAwait(false);
            var reply = new MemoryStream();
            var buffer = new byte[8192];
            while (true)
            {
                var read = await socket.ReceiveAsync(buffer, SocketFlags.None, cancel).ConfigureAwait(false);
                if (read == 0)
                {
                    throw new IOException($"{socketPath}: connection closed before a complete UAPI reply");
                }

                reply.Write(buffer, 0, read);
                if (reply.Length > MaxReplyBytes)
                {
                    throw new IOException($"{socketPath}: UAPI reply larger than {MaxReplyBytes} bytes");
                }

                // Every reply ends with "errno=N\n\n"; no other line of a reply is empty.
                if (EndsWithBlankLine(reply))
                {
                    return Encoding.UTF8.GetString(reply.GetBuffer(), 0, (int)reply.Length);
                }
            }
        }
        catch (SocketException e)
        {
            throw new IOException($"{socketPath}: {e.Message}", e);
        }
    }

    private static bool EndsWithBlankLine(MemoryStream reply)
    {
        var bytes = reply.GetBuffer();
        var n = (int)reply.Length;
        return n >= 2 && bytes[n - 1] == '\n' && bytes[n - 2] == '\n';
    }
}
