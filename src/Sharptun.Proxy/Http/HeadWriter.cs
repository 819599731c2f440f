using System.Buffers;
using System.Text;

namespace Sharptun.Proxy.Http;

/// <summary>
/// Builds one message head in a pooled buffer (Latin-1, so field values received as obs-text go out byte for byte)
/// to be written with a single write.
/// </summary>
internal sealed class HeadWriter : IDisposable
{
    private byte[] _buffer = ArrayPool<byte>.Shared.Rent(1024);
    private int _length;

    public ReadOnlyMemory<byte> Written => _buffer.AsMemory(0, _length);

    public HeadWriter Append(string text)
    {
        Ensure(text.Length);
        _length += Encoding.Latin1.GetBytes(text, _buffer.AsSpan(_length));
        return this;
    }

    public HeadWriter Append(int value)
    {
        Ensure(11);
        value.TryFormat(_buffer.AsSpan(_length), out var n, default, System.Globalization.CultureInfo.InvariantCulture);
        _length += n;
        return this;
    }

    public HeadWriter Field(string name, string value) => Append(name).Append(": ").Append(value).Append("\r\n");

    public void Dispose()
    {
        var buffer = Interlocked.Exchange(ref _buffer, []);
        if (buffer.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private void Ensure(int more)
    {
        if (_length + more > _buffer.Length)
        {
            var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(_buffer.Length * 2, _length + more));
            _buffer.AsSpan(0, _length).CopyTo(bigger);
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = bigger;
        }
    }
}
