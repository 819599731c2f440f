using Microsoft.Win32.SafeHandles;

namespace Sharptun.Testing.Memory;

/// <summary>
/// Reads the process's own memory figures from procfs without allocating per sample (one reused byte buffer,
/// ASCII parsing): <c>Private_Dirty</c> from <c>/proc/self/smaps_rollup</c> (the Linux figure closest to iOS's
/// phys_footprint, DESIGN.md "Memory"), <c>VmRSS</c>/<c>VmHWM</c>/<c>Threads</c> from <c>/proc/self/status</c>.
/// All sizes in KiB, as the kernel reports them. Not thread-safe (one sampler thread owns an instance).
/// </summary>
internal sealed class ProcMemory
{
    private readonly byte[] _buffer = new byte[8192];

    /// <summary>One reading of the process's memory, in KiB.</summary>
    internal readonly record struct Reading(long PrivateDirtyKb, long RssKb, long HwmKb, long Threads);

    public Reading Read()
    {
        var rollup = ReadFile("/proc/self/smaps_rollup");
        var privateDirty = Field(_buffer.AsSpan(0, rollup), "Private_Dirty:"u8);
        var status = ReadFile("/proc/self/status");
        var s = _buffer.AsSpan(0, status);
        return new Reading(privateDirty, Field(s, "VmRSS:"u8), Field(s, "VmHWM:"u8), Field(s, "Threads:"u8));
    }

    private int ReadFile(string path)
    {
        using SafeFileHandle handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read);
        int total = 0;
        while (total < _buffer.Length)
        {
            int n = RandomAccess.Read(handle, _buffer.AsSpan(total), total);
            if (n <= 0)
            {
                break;
            }

            total += n;
        }

        return total;
    }

    /// <summary>The first number after <paramref name="name"/> at the start of a line, or -1 when absent.</summary>
    private static long Field(ReadOnlySpan<byte> text, ReadOnlySpan<byte> name)
    {
        int at = 0;
        while (at < text.Length)
        {
            var line = text[at..];
            int eol = line.IndexOf((byte)'\n');
            if (eol >= 0)
            {
                line = line[..eol];
            }

            if (line.StartsWith(name))
            {
                long value = 0;
                foreach (var b in line[name.Length..])
                {
                    if (b is >= (byte)'0' and <= (byte)'9')
                    {
                        value = (value * 10) + (b - '0');
                    }
                    else if (value > 0)
                    {
                        break;
                    }
                }

                return value;
            }

            if (eol < 0)
            {
                break;
            }

            at += eol + 1;
        }

        return -1;
    }
}
