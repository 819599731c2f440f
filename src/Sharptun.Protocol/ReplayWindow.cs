namespace Sharptun.Protocol;

/// <summary>
/// Sliding-window replay filter for transport counters (whitepaper §5.4.6; RFC 6479 ring-of-blocks bitmap).
/// Accepts each counter at most once, and only counters no more than <see cref="WindowSize"/> behind the highest
/// accepted one. Not thread-safe: <see cref="Keypair.TryAcceptCounter"/> serializes access.
/// </summary>
/// <remarks>
/// The bitmap is a ring of 64-bit blocks. Moving the window forward clears whole blocks, so the window really
/// spans (BlockCount − 1) × 64 counters behind the newest block — RFC 6479 §2.
/// </remarks>
internal sealed class ReplayWindow
{
    private const int BlockBitLog = 6;
    private const int BlockBits = 1 << BlockBitLog;
    private const int BlockCount = 256; // power of two: ring index is a mask
    private const int BlockMask = BlockCount - 1;

    /// <summary>How far behind the highest accepted counter a counter may be and still be accepted.</summary>
    public const int WindowSize = (BlockCount - 1) * BlockBits;

    private readonly ulong[] _blocks = new ulong[BlockCount];
    private ulong _last;
    private bool _any;

    /// <summary>Highest counter accepted so far (0 when none).</summary>
    public ulong Last => _last;

    /// <summary>Forgets all counters.</summary>
    public void Reset()
    {
        Array.Clear(_blocks);
        _last = 0;
        _any = false;
    }

    /// <summary>
    /// Checks <paramref name="counter"/> and, if it is new, inside the window and below <paramref name="limit"/>, records
    /// it and returns true. Call only after the packet authenticated, so forged counters cannot move the window.
    /// </summary>
    public bool TryAccept(ulong counter, ulong limit = ProtocolConstants.RejectAfterMessages)
    {
        if (counter >= limit)
        {
            return false;
        }

        var blockIndex = counter >> BlockBitLog;
        if (!_any || counter > _last)
        {
            var lastBlock = _any ? _last >> BlockBitLog : ulong.MaxValue;
            var diff = _any ? blockIndex - lastBlock : (ulong)BlockCount;
            if (diff > BlockCount)
            {
                diff = BlockCount;
            }

            // Clear the blocks the window moves over (RFC 6479 §2: clear bits of the new block range).
            for (ulong i = 1; i <= diff; i++)
            {
                _blocks[(int)((lastBlock + i) & BlockMask)] = 0;
            }

            _last = counter;
            _any = true;
        }
        else if (_last - counter > WindowSize)
        {
            return false;
        }

        ref var block = ref _blocks[(int)(blockIndex & BlockMask)];
        var bit = 1UL << (int)(counter & (BlockBits - 1));
        if ((block & bit) != 0)
        {
            return false;
        }

        block |= bit;
        return true;
    }
}
