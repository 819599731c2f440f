using Sharptun.Device.Pipeline;
using Sharptun.Transport;
using Admission = Sharptun.Device.Pipeline.WireGuardDevice.Admission;

namespace Sharptun.Device.Tests.Pipeline;

/// <summary>The handshake queue's fair main lane and priority lane, and the rate limiter that only proven sources reach.</summary>
public sealed class HandshakeQueueTests
{
    private static readonly UdpEndpoint Flooder = UdpEndpoint.Parse("203.0.113.9:4000");

    /// <summary>A source whose bucket differs from <paramref name="other"/>'s (buckets are hashed with a per-process seed).</summary>
    private static UdpEndpoint OtherBucketThan(UdpEndpoint other)
    {
        for (var i = 1; ; i++)
        {
            var candidate = UdpEndpoint.Parse($"198.51.100.{i}:51820");
            if (HandshakeQueue.Bucket(candidate) != HandshakeQueue.Bucket(other))
            {
                return candidate;
            }
        }
    }

    [Fact]
    public void MainLane_FullOfOneSourcesFlood_AnotherSourceIsAdmittedAndServedNext()
    {
        var queue = new HandshakeQueue(64);
        var victim = OtherBucketThan(Flooder);
        for (var i = 0; i < 64; i++)
        {
            Assert.True(queue.TryAdd(new byte[1], 1, Flooder, Admission.NoMac2, priority: false, out var evicted));
            Assert.Null(evicted);
        }

        // Full: the flood's own next message is refused (its bucket is the longest) ...
        Assert.False(queue.HasRoomFor(Flooder));
        Assert.False(queue.TryAdd(new byte[1], 1, Flooder, Admission.NoMac2, priority: false, out var none));
        Assert.Null(none);

        // ... while the victim's is admitted, pushing out the flood's oldest message.
        var victimBuffer = new byte[1];
        Assert.True(queue.HasRoomFor(victim));
        Assert.True(queue.TryAdd(victimBuffer, 1, victim, Admission.NoMac2, priority: false, out var pushedOut));
        Assert.NotNull(pushedOut);
        Assert.Equal(64, queue.Count);

        // Round-robin between the buckets: the victim's message is among the next two taken.
        Assert.True(queue.Take(out var first, out _, out var firstSource, out _));
        Assert.True(queue.Take(out var second, out _, out var secondSource, out _));
        Assert.True(ReferenceEquals(first, victimBuffer) || ReferenceEquals(second, victimBuffer), $"served {firstSource} then {secondSource}");
    }

    [Fact]
    public void PriorityLane_ServedFirst_AndNotCountedAsLoad()
    {
        var queue = new HandshakeQueue(16);
        Assert.True(queue.TryAdd(new byte[1], 1, Flooder, Admission.NoMac2, priority: false, out _));
        var proven = new byte[1];
        Assert.True(queue.TryAdd(proven, 1, OtherBucketThan(Flooder), Admission.Proven, priority: true, out _));
        Assert.Equal(1, queue.Count);

        Assert.True(queue.Take(out var buffer, out _, out _, out var admission));
        Assert.Same(proven, buffer);
        Assert.Equal(Admission.Proven, admission);
        Assert.True(queue.Take(out _, out _, out _, out admission));
        Assert.Equal(Admission.NoMac2, admission);
        Assert.Equal(0, queue.Count);
    }

    [Fact]
    public void Close_WakesTakerAndRefusesAdds()
    {
        var queue = new HandshakeQueue(16);
        var taker = Task.Run(() => queue.Take(out _, out _, out _, out _));
        Thread.Sleep(50);
        queue.Close();
        Assert.True(taker.Wait(TimeSpan.FromSeconds(10)));
        Assert.False(taker.Result);
        Assert.False(queue.TryAdd(new byte[1], 1, Flooder, Admission.Unchecked, priority: false, out _));
    }

    /// <summary>
    /// Producers (one flooding source, many spread sources, some proven) race one consumer: every buffer ends exactly
    /// once as taken, pushed out or refused, the main lane never holds more than its capacity, and each source's
    /// messages come out in the order they went in.
    /// </summary>
    [Fact]
    public void Race_ManyProducersOneConsumer_NothingLostOrDuplicatedAndBounded()
    {
        const int capacity = 32;
        const int producers = 4;
        const int perProducer = 50_000;
        var queue = new HandshakeQueue(capacity);
        var outcomes = new int[producers * perProducer]; // 1 taken, 2 evicted, 3 refused
        var buffers = new byte[outcomes.Length][];
        for (var i = 0; i < buffers.Length; i++)
        {
            buffers[i] = BitConverter.GetBytes(i);
        }

        var maxCount = 0;
        var orderViolations = 0;
        var consumer = new Thread(() =>
        {
            var lastBySource = new Dictionary<UdpEndpoint, int>();
            while (queue.Take(out var buffer, out _, out var source, out var admission))
            {
                var id = BitConverter.ToInt32(buffer);
                Interlocked.Add(ref outcomes[id], 1);
                maxCount = Math.Max(maxCount, queue.Count);
                if (admission != Admission.Proven)
                {
                    if (lastBySource.TryGetValue(source, out var last) && last > id)
                    {
                        orderViolations++;
                    }

                    lastBySource[source] = id;
                }
            }
        });
        consumer.Start();
        var threads = Enumerable.Range(0, producers).Select(p => new Thread(() =>
        {
            var random = new Random(p);
            for (var k = 0; k < perProducer; k++)
            {
                var id = p * perProducer + k;

                // Producer 0 floods from one source; the others spread over 256 sources of their own (ids rise per source).
                var source = p == 0 ? Flooder : UdpEndpoint.Parse($"10.{p}.{random.Next(256)}.1:1");
                var proven = random.Next(50) == 0;
                var added = queue.TryAdd(buffers[id], 4, source, proven ? Admission.Proven : Admission.NoMac2, proven, out var evicted);
                if (evicted is not null)
                {
                    Interlocked.Add(ref outcomes[BitConverter.ToInt32(evicted)], 2);
                }

                if (!added)
                {
                    Interlocked.Add(ref outcomes[id], 3);
                }
            }
        })).ToArray();
        foreach (var t in threads)
        {
            t.Start();
        }

        foreach (var t in threads)
        {
            t.Join();
        }

        while (queue.Count > 0)
        {
            Thread.Sleep(1);
        }

        Thread.Sleep(50); // the priority lane drains too (it is served first)
        queue.Close();
        consumer.Join();

        Assert.All(outcomes, o => Assert.InRange(o, 1, 3));
        Assert.True(maxCount <= capacity, $"main lane held {maxCount} > {capacity}");
        Assert.Equal(0, orderViolations);
        Assert.Contains(1, outcomes);
    }

    [Fact]
    public void RateLimiter_FullTable_NewSourceAllowedUntracked_KnownSourcesStillLimited()
    {
        var limiter = new HandshakeRateLimiter();
        var now = TimeSpan.FromSeconds(10);
        for (var i = 0; i < HandshakeRateLimiter.MaxEntries; i++)
        {
            Assert.True(limiter.Allow(UdpEndpoint.Parse($"10.{i >> 16 & 0xFF}.{i >> 8 & 0xFF}.{i & 0xFF}:1"), now, out var tracked));
            Assert.True(tracked);
        }

        Assert.Equal(HandshakeRateLimiter.MaxEntries, limiter.Count);
        Assert.True(limiter.Allow(UdpEndpoint.Parse("192.0.2.7:1"), now, out var newTracked)); // never locked out ...
        Assert.False(newTracked); // ... but not tracked: the caller keeps it out of the priority lane
        Assert.Equal(HandshakeRateLimiter.MaxEntries, limiter.Count);

        // A known source still gets the rest of its burst (one already spent) and is then limited.
        var known = UdpEndpoint.Parse("10.0.0.0:1");
        var allowed = 0;
        for (var i = 0; i < 10; i++)
        {
            allowed += limiter.Allow(known, now, out _) ? 1 : 0;
        }

        Assert.InRange(allowed, 1, HandshakeRateLimiter.PacketsBurstable - 1);

        // Idle entries are forgotten after a second.
        Assert.True(limiter.Allow(known, now + TimeSpan.FromSeconds(3), out _));
        Assert.Equal(1, limiter.Count);
    }
}
