using System.Diagnostics.Tracing;

namespace Sharptun.Testing.Memory;

/// <summary>
/// Diagnostics (SHARPTUN_ALLOC_TICKS=1): counts the runtime's GCAllocationTick events (one per ~100 KB allocated) by
/// type name, to show which types the steady state allocates. Perturbs the measurement, so off by default.
/// </summary>
internal sealed class AllocationTicks : EventListener
{
    private readonly Dictionary<string, long> _bytes = [];

    protected override void OnEventSourceCreated(EventSource source)
    {
        if (source.Name == "Microsoft-Windows-DotNETRuntime")
        {
            EnableEvents(source, EventLevel.Verbose, (EventKeywords)0x1); // GC keyword
        }
    }

    protected override void OnEventWritten(EventWrittenEventArgs e)
    {
        if (e.EventName is null || !e.EventName.StartsWith("GCAllocationTick", StringComparison.Ordinal) || e.Payload is null)
        {
            return;
        }

        int i = e.PayloadNames!.IndexOf("TypeName");
        int a = e.PayloadNames.IndexOf("AllocationAmount64");
        string type = i >= 0 ? e.Payload[i]?.ToString() ?? "?" : "?";
        long amount = a >= 0 ? Convert.ToInt64(e.Payload[a], System.Globalization.CultureInfo.InvariantCulture) : 0;
        lock (_bytes)
        {
            _bytes[type] = _bytes.GetValueOrDefault(type) + amount;
        }
    }

    public void Print()
    {
        lock (_bytes)
        {
            foreach (var (type, bytes) in _bytes.OrderByDescending(kv => kv.Value).Take(15))
            {
                Console.WriteLine($"  alloc ~{bytes / 1024,8} KiB  {type}");
            }
        }
    }
}
