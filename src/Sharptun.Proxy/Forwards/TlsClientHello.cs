using System.Buffers.Binary;
using System.Net;
using System.Text;

namespace Sharptun.Proxy.Forwards;

/// <summary>What <see cref="TlsClientHello.TryReadServerName"/> found.</summary>
internal enum ClientHelloStatus
{
    /// <summary>The bytes so far are a valid prefix; read more.</summary>
    Incomplete,

    /// <summary>A ClientHello with a server_name host name.</summary>
    Found,

    /// <summary>Not a TLS ClientHello, or one that breaks its own length rules.</summary>
    Malformed,

    /// <summary>A well-formed ClientHello without a usable host_name (no extension, an IP literal, an invalid name).</summary>
    NoServerName,
}

/// <summary>
/// Finds the server name in the first bytes a TLS client sends, without a TLS stack and without trusting a single
/// length: every length is checked against the bytes that enclose it before it is used.
/// </summary>
/// <remarks>
/// <code>
/// TLSPlaintext (RFC 8446 §5.1), repeated while the handshake message spans records:
///   +------+---------+---------+------------------------+
///   | 0x16 | 0x03 xx | length  | fragment (≤ 2^14)      |
///   +------+---------+---------+------------------------+
/// Handshake (§4): msg_type = client_hello (1) | uint24 length | ClientHello
/// ClientHello (§4.1.2): legacy_version(2) random(32) legacy_session_id&lt;0..32&gt;
///   cipher_suites&lt;2..2^16-2&gt; legacy_compression_methods&lt;1..2^8-1&gt; extensions&lt;8..2^16-1&gt;
/// Extension (§4.2): extension_type(2) extension_data&lt;0..2^16-1&gt;
/// server_name (RFC 6066 §3, type 0): ServerNameList&lt;1..2^16-1&gt; of { name_type(1) = host_name (0), HostName&lt;1..2^16-1&gt; }
/// </code>
/// </remarks>
internal static class TlsClientHello
{
    /// <summary>The largest ClientHello accepted (its handshake body); real ones are well under 4 KiB, post-quantum key shares included.</summary>
    public const int MaxHandshakeLength = 16 * 1024;

    /// <summary>The most raw bytes to read looking for the ClientHello: the handshake plus a few record headers.</summary>
    public const int MaxRecordBytes = MaxHandshakeLength + 4 + (8 * 5);

    private const byte ContentTypeHandshake = 22;
    private const byte HandshakeTypeClientHello = 1;
    private const ushort ExtensionServerName = 0;
    private const byte NameTypeHostName = 0;
    private const int MaxRecordFragment = 1 << 14;

    /// <summary>Reads the host name from the records in <paramref name="data"/> (the bytes received so far).</summary>
    public static ClientHelloStatus TryReadServerName(ReadOnlySpan<byte> data, out string? serverName)
    {
        serverName = null;

        // Gather the handshake bytes out of consecutive records (RFC 8446 §5.1: a handshake message may be split).
        var handshake = new byte[Math.Min(data.Length, MaxRecordBytes)];
        var handshakeLength = 0;
        var offset = 0;
        int? messageLength = null;
        while (true)
        {
            if (messageLength is { } needed && handshakeLength >= 4 + needed)
            {
                var status = ParseClientHello(handshake.AsSpan(4, needed), out serverName);
                if (status != ClientHelloStatus.Found)
                {
                    serverName = null;
                }

                return status;
            }

            if (data.Length - offset < 5)
            {
                return data.Length - offset > 0 && !ValidRecordHeaderPrefix(data[offset..]) ? ClientHelloStatus.Malformed : ClientHelloStatus.Incomplete;
            }

            var header = data.Slice(offset, 5);
            var fragmentLength = BinaryPrimitives.ReadUInt16BigEndian(header[3..]);
            if (!ValidRecordHeaderPrefix(header) || fragmentLength is 0 or > MaxRecordFragment)
            {
                return ClientHelloStatus.Malformed;
            }

            if (data.Length - offset - 5 < fragmentLength)
            {
                return ClientHelloStatus.Incomplete;
            }

            var fragment = data.Slice(offset + 5, fragmentLength);
            if (handshakeLength + fragment.Length > handshake.Length)
            {
                return ClientHelloStatus.Malformed;
            }

            fragment.CopyTo(handshake.AsSpan(handshakeLength));
            handshakeLength += fragment.Length;
            offset += 5 + fragmentLength;

            if (messageLength is null && handshakeLength >= 4)
            {
                if (handshake[0] != HandshakeTypeClientHello)
                {
                    return ClientHelloStatus.Malformed;
                }

                var length = (handshake[1] << 16) | (handshake[2] << 8) | handshake[3];
                if (length is < 2 + 32 + 1 + 2 + 1 or > MaxHandshakeLength)
                {
                    return ClientHelloStatus.Malformed;
                }

                messageLength = length;
            }
        }
    }

    /// <summary>A record header's bytes so far are a handshake record of TLS 1.x (legacy_record_version 0x03xx).</summary>
    private static bool ValidRecordHeaderPrefix(ReadOnlySpan<byte> header) =>
        header[0] == ContentTypeHandshake && (header.Length < 2 || header[1] == 3);

    private static ClientHelloStatus ParseClientHello(ReadOnlySpan<byte> body, out string? serverName)
    {
        serverName = null;
        var reader = new Reader(body);
        if (!reader.Skip(2 + 32)
            || !reader.TryReadVector8(out var sessionId) || sessionId.Length > 32
            || !reader.TryReadVector16(out var cipherSuites) || cipherSuites.Length < 2 || cipherSuites.Length % 2 != 0
            || !reader.TryReadVector8(out var compression) || compression.Length < 1)
        {
            return ClientHelloStatus.Malformed;
        }

        if (reader.Remaining == 0)
        {
            // TLS 1.2 and earlier may omit extensions altogether (RFC 5246 §7.4.1.2).
            return ClientHelloStatus.NoServerName;
        }

        if (!reader.TryReadVector16(out var extensions) || reader.Remaining != 0)
        {
            return ClientHelloStatus.Malformed;
        }

        var list = new Reader(extensions);
        var found = ClientHelloStatus.NoServerName;
        while (list.Remaining > 0)
        {
            if (!list.TryReadUInt16(out var type) || !list.TryReadVector16(out var extensionData))
            {
                return ClientHelloStatus.Malformed;
            }

            if (type != ExtensionServerName)
            {
                continue;
            }

            if (found != ClientHelloStatus.NoServerName)
            {
                // RFC 8446 §4.2: no more than one extension of each type.
                return ClientHelloStatus.Malformed;
            }

            found = ParseServerNameList(extensionData, out serverName);
            if (found == ClientHelloStatus.Malformed)
            {
                return found;
            }
        }

        return found;
    }

    private static ClientHelloStatus ParseServerNameList(ReadOnlySpan<byte> extensionData, out string? serverName)
    {
        serverName = null;
        var reader = new Reader(extensionData);
        if (!reader.TryReadVector16(out var names) || reader.Remaining != 0 || names.Length == 0)
        {
            return ClientHelloStatus.Malformed;
        }

        var list = new Reader(names);
        while (list.Remaining > 0)
        {
            if (!list.TryReadByte(out var nameType) || !list.TryReadVector16(out var name) || name.Length == 0)
            {
                return ClientHelloStatus.Malformed;
            }

            // RFC 6066 §3: at most one name of each type; host_name is the only type defined.
            if (nameType == NameTypeHostName && serverName is null)
            {
                if (!IsValidHostName(name))
                {
                    return ClientHelloStatus.NoServerName;
                }

                serverName = Encoding.ASCII.GetString(name);
            }
        }

        if (serverName is not null && IPAddress.TryParse(serverName, out _))
        {
            // RFC 6066 §3: "Literal IPv4 and IPv6 addresses are not permitted in HostName."
            serverName = null;
        }

        return serverName is null ? ClientHelloStatus.NoServerName : ClientHelloStatus.Found;
    }

    /// <summary>
    /// An ASCII DNS name without a trailing dot (RFC 6066 §3): labels of 1-63 letters, digits, '-' or '_', at most 253
    /// characters, so nothing odd reaches the resolver or the logs.
    /// </summary>
    private static bool IsValidHostName(ReadOnlySpan<byte> name)
    {
        if (name.Length > 253)
        {
            return false;
        }

        var label = 0;
        foreach (var b in name)
        {
            if (b == '.')
            {
                if (label == 0)
                {
                    return false;
                }

                label = 0;
                continue;
            }

            if (!(char.IsAsciiLetterOrDigit((char)b) || b is (byte)'-' or (byte)'_') || ++label > 63)
            {
                return false;
            }
        }

        return label > 0;
    }

    private ref struct Reader(ReadOnlySpan<byte> data)
    {
        private ReadOnlySpan<byte> _data = data;

        public readonly int Remaining => _data.Length;

        public bool Skip(int count)
        {
            if (_data.Length < count)
            {
                return false;
            }

            _data = _data[count..];
            return true;
        }

        public bool TryReadByte(out byte value)
        {
            value = 0;
            if (_data.Length < 1)
            {
                return false;
            }

            value = _data[0];
            _data = _data[1..];
            return true;
        }

        public bool TryReadUInt16(out ushort value)
        {
            value = 0;
            if (_data.Length < 2)
            {
                return false;
            }

            value = BinaryPrimitives.ReadUInt16BigEndian(_data);
            _data = _data[2..];
            return true;
        }

        public bool TryReadVector8(out ReadOnlySpan<byte> value)
        {
            value = default;
            if (!TryReadByte(out var length) || _data.Length < length)
            {
                return false;
            }

            value = _data[..length];
            _data = _data[length..];
            return true;
        }

        public bool TryReadVector16(out ReadOnlySpan<byte> value)
        {
            value = default;
            if (!TryReadUInt16(out var length) || _data.Length < length)
            {
                return false;
            }

            value = _data[..length];
            _data = _data[length..];
            return true;
        }
    }
}
