using Sharptun.Transport;

namespace Sharptun.Device.Tests.Pipeline;

/// <summary>Wraps a packet device: a set fault is thrown by the next Read / Write (once), else calls pass through.</summary>
internal sealed class FaultyPacketDevice(IPacketDevice inner) : IPacketDevice
{
    private Exception? _readFault;
    private Exception? _writeFault;

    public string Name => inner.Name;

    public int Mtu => inner.Mtu;

    public int BatchSize => inner.BatchSize;

    /// <summary>Thrown by the next Read (the pending one is not interrupted).</summary>
    public Exception? ReadFault
    {
        set => Volatile.Write(ref _readFault, value);
    }

    /// <summary>True until the set <see cref="WriteFault"/> was thrown.</summary>
    public bool WriteFaultPending => Volatile.Read(ref _writeFault) is not null;

    /// <summary>Thrown by the next Write.</summary>
    public Exception? WriteFault
    {
        set => Volatile.Write(ref _writeFault, value);
    }

    public int Read(byte[][] buffers, Span<int> sizes, int offset)
    {
        if (Interlocked.Exchange(ref _readFault, null) is { } fault)
        {
            throw fault;
        }

        return inner.Read(buffers, sizes, offset);
    }

    public int Write(byte[][] buffers, ReadOnlySpan<int> sizes, int offset, int count)
    {
        if (Interlocked.Exchange(ref _writeFault, null) is { } fault)
        {
            throw fault;
        }

        return inner.Write(buffers, sizes, offset, count);
    }

    public void Dispose() => inner.Dispose();
}

/// <summary>
/// Opens <see cref="FaultyBind"/>s over another factory; its knobs apply to every bind it opened (and opens later).
/// </summary>
internal sealed class FaultyBindFactory(IDatagramBindFactory inner) : IDatagramBindFactory
{
    private Exception? _sendFault;
    private Exception? _receiveFault;
    private int _dropTypes;

    /// <summary>Thrown by the next Send of any bind (once).</summary>
    public Exception? SendFault
    {
        set => Volatile.Write(ref _sendFault, value);
    }

    /// <summary>True until the set <see cref="SendFault"/> was thrown.</summary>
    public bool SendFaultPending => Volatile.Read(ref _sendFault) is not null;

    /// <summary>Thrown by the next Receive of any bind (once; a Receive already waiting is not interrupted).</summary>
    public Exception? ReceiveFault
    {
        set => Volatile.Write(ref _receiveFault, value);
    }

    /// <summary>Bit (1 &lt;&lt; type) set = sent datagrams of that WireGuard message type vanish (1 initiation ... 4 transport).</summary>
    public int DropTypes
    {
        get => Volatile.Read(ref _dropTypes);
        set => Volatile.Write(ref _dropTypes, value);
    }

    public IDatagramBind Open(ushort port) => new FaultyBind(this, inner.Open(port));

    internal Exception? TakeSendFault() => Interlocked.Exchange(ref _sendFault, null);

    internal Exception? TakeReceiveFault() => Interlocked.Exchange(ref _receiveFault, null);
}

internal sealed class FaultyBind(FaultyBindFactory owner, IDatagramBind inner) : IDatagramBind
{
    public ushort LocalPort => inner.LocalPort;

    public int BatchSize => inner.BatchSize;

    public int Receive(byte[][] buffers, Span<int> sizes, Span<UdpEndpoint> endpoints)
    {
        if (owner.TakeReceiveFault() is { } fault)
        {
            throw fault;
        }

        return inner.Receive(buffers, sizes, endpoints);
    }

    public int Send(byte[][] buffers, ReadOnlySpan<int> sizes, int offset, int count, in UdpEndpoint destination)
    {
        if (owner.TakeSendFault() is { } fault)
        {
            throw fault;
        }

        var drop = owner.DropTypes;
        if (drop == 0)
        {
            return inner.Send(buffers, sizes, offset, count, destination);
        }

        for (var i = 0; i < count; i++)
        {
            var type = sizes[i] > 0 ? buffers[i][offset] : 0;
            if (type < 32 && (drop & (1 << type)) != 0)
            {
                continue; // lost on the way
            }

            inner.Send([buffers[i]], sizes.Slice(i, 1), offset, 1, destination);
        }

        return count;
    }

    public void SetMark(uint fwmark) => inner.SetMark(fwmark);

    public void Dispose() => inner.Dispose();
}
