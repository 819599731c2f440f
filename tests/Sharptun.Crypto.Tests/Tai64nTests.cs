namespace Sharptun.Crypto.Tests;

public sealed class Tai64nTests
{
    [Fact]
    public void Write_UnixEpoch_IsTwoToThe62PlusTen()
    {
        // wireguard-go tai64n.go: base = 0x400000000000000a.
        byte[] label = new byte[Tai64n.Size];
        Tai64n.Write(label, 0, 0);
        Assert.Equal("400000000000000a00000000", Convert.ToHexStringLower(label));
    }

    [Fact]
    public void Write_KnownTime_MatchesHandEncodedLabel()
    {
        // 1700000000 = 0x6553F100 (+10 → ...0A); 123456789 = 0x075BCD15.
        byte[] label = new byte[Tai64n.Size];
        Tai64n.Write(label, 1_700_000_000, 123_456_789);
        Assert.Equal("400000006553f10a075bcd15", Convert.ToHexStringLower(label));
    }

    [Fact]
    public void Write_MatchesDateTimeOffsetArithmetic()
    {
        var time = new DateTimeOffset(2026, 11, 22, 3, 0, 0, TimeSpan.Zero).AddTicks(1234567);
        byte[] label = new byte[Tai64n.Size];
        Tai64n.Write(label, time.ToUnixTimeSeconds(), (int)(time.Ticks % TimeSpan.TicksPerSecond) * 100);
        Assert.Equal((1UL << 62) + 10 + (ulong)time.ToUnixTimeSeconds(), System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(label));
        Assert.Equal(123456700u, System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(label.AsSpan(8)));
    }

    [Theory]
    [InlineData(100, 0, 100, 0, 0)]
    [InlineData(100, 5, 100, 6, -1)]
    [InlineData(101, 0, 100, 999_999_999, 1)]
    [InlineData(100, 255, 100, 256, -1)]
    [InlineData(-1, 0, 0, 0, -1)]
    public void Compare_Labels_OrdersByTime(long s1, int n1, long s2, int n2, int expected)
    {
        byte[] a = new byte[Tai64n.Size];
        byte[] b = new byte[Tai64n.Size];
        Tai64n.Write(a, s1, n1);
        Tai64n.Write(b, s2, n2);
        Assert.Equal(expected, Tai64n.Compare(a, b));
        Assert.Equal(-expected, Tai64n.Compare(b, a));
    }

    [Fact]
    public void Whiten_ClearsLow24Bits()
    {
        Assert.Equal(0x3B000000, Tai64n.Whiten(0x3B9AC9FF));
        Assert.Equal(0, Tai64n.Whiten(0xFFFFFF));
    }

    [Fact]
    public void WriteAndCompare_InvalidArguments_Throw()
    {
        Assert.Throws<ArgumentException>(() => Tai64n.Write(new byte[11], 0, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => Tai64n.Write(new byte[12], 0, 1_000_000_000));
        Assert.Throws<ArgumentOutOfRangeException>(() => Tai64n.Write(new byte[12], 0, -1));
        Assert.Throws<ArgumentException>(() => Tai64n.Compare(new byte[12], new byte[11]));
    }
}
