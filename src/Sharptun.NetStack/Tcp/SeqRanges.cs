using Sharptun.NetStack.Wire;

namespace Sharptun.NetStack.Tcp;

/// <summary>
/// A bounded, sorted set of disjoint sequence ranges [Left, Right). Used on the receive side for the
/// out-of-order assembler (RFC 9293 §3.10.7.4, SACK generation per RFC 2018 §4) and on the send side as
/// the SACK scoreboard (RFC 6675 §3). Fixed capacity, no allocation after construction.
/// </summary>
internal sealed class SeqRanges
{
    private readonly SackBlock[] _ranges;
    private int _count;

    public SeqRanges(int capacity) => _ranges = new SackBlock[capacity];

    public int Count => _count;
    public SackBlock this[int i] => _ranges[i];

    /// <summary>Index of the range most recently added or extended (RFC 2018 §4: reported first).</summary>
    public int LastTouched { get; private set; } = -1;

    public void Clear()
    {
        _count = 0;
        LastTouched = -1;
    }

    /// <summary>Adds [left, right), merging with overlapping or adjacent ranges. Returns false (set unchanged) when full.</summary>
    public bool Add(SeqNumber left, SeqNumber right)
    {
        if (right <= left)
        {
            return true;
        }

        int i = 0;
        while (i < _count && _ranges[i].Right < left)
        {
            i++;
        }

        int j = i;
        while (j < _count && _ranges[j].Left <= right)
        {
            left = SeqNumber.Min(left, _ranges[j].Left);
            right = SeqNumber.Max(right, _ranges[j].Right);
            j++;
        }

        int merged = j - i;
        if (merged == 0)
        {
            if (_count == _ranges.Length)
            {
                return false;
            }

            Array.Copy(_ranges, i, _ranges, i + 1, _count - i);
            _count++;
        }
        else if (merged > 1)
        {
            Array.Copy(_ranges, j, _ranges, i + 1, _count - j);
            _count -= merged - 1;
        }

        _ranges[i] = new SackBlock(left, right);
        LastTouched = i;
        return true;
    }

    /// <summary>Drops everything below <paramref name="seq"/> (trimming a range that straddles it).</summary>
    public void RemoveBelow(SeqNumber seq)
    {
        int k = 0;
        while (k < _count && _ranges[k].Right <= seq)
        {
            k++;
        }

        if (k > 0)
        {
            Array.Copy(_ranges, k, _ranges, 0, _count - k);
            _count -= k;
            LastTouched = LastTouched >= k ? LastTouched - k : -1;
        }

        if (_count > 0 && _ranges[0].Left < seq)
        {
            _ranges[0] = new SackBlock(seq, _ranges[0].Right);
        }
    }

    /// <summary>If the first range starts at <paramref name="seq"/>, removes it and returns its right edge.</summary>
    public bool TryTakeContiguous(SeqNumber seq, out SeqNumber right)
    {
        if (_count > 0 && _ranges[0].Left <= seq && _ranges[0].Right > seq)
        {
            right = _ranges[0].Right;
            RemoveBelow(right);
            return true;
        }

        right = seq;
        return false;
    }

    public bool Contains(SeqNumber seq)
    {
        for (int i = 0; i < _count; i++)
        {
            if (_ranges[i].Left <= seq && seq < _ranges[i].Right)
            {
                return true;
            }

            if (_ranges[i].Left > seq)
            {
                break;
            }
        }

        return false;
    }

    /// <summary>Total bytes covered.</summary>
    public long TotalBytes()
    {
        long t = 0;
        for (int i = 0; i < _count; i++)
        {
            t += _ranges[i].Right - _ranges[i].Left;
        }

        return t;
    }

    /// <summary>Bytes covered at or above <paramref name="seq"/>.</summary>
    public long BytesAbove(SeqNumber seq)
    {
        long t = 0;
        for (int i = _count - 1; i >= 0; i--)
        {
            var r = _ranges[i];
            if (r.Right <= seq)
            {
                break;
            }

            t += r.Right - SeqNumber.Max(r.Left, seq);
        }

        return t;
    }

    public SeqNumber HighestRight => _count == 0 ? default : _ranges[_count - 1].Right;
}
