namespace Sharptun.Protocol.Tests;

public sealed class LossySimulationTests
{
    /// <summary>
    /// Ten virtual minutes of traffic both ways over a link that drops datagrams at random: sessions must come up,
    /// rekey past RekeyAfterTime, and keep delivering. Seeded, so a failure replays.
    /// </summary>
    [Theory]
    [InlineData(1, 0.1)]
    [InlineData(2, 0.3)]
    [InlineData(3, 0.5)]
    public void Traffic_OverLossyLink_KeepsFlowingAcrossRekeys(int seed, double lossRate)
    {
        var pair = new TestPair(seed) { LossRate = lossRate, LossRandom = new Random(seed * 1000) };
        var step = TimeSpan.FromMilliseconds(50);
        var end = pair.Now + TimeSpan.FromMinutes(10);
        var lastMinute = end - TimeSpan.FromMinutes(1);
        int sentLastMinuteA = 0, sentLastMinuteB = 0, deliveredBeforeA = 0, deliveredBeforeB = 0;
        var tick = 0;
        while (pair.Now < end)
        {
            pair.Clock.Now += step;
            if (pair.Now >= lastMinute && sentLastMinuteA == 0 && sentLastMinuteB == 0)
            {
                deliveredBeforeA = pair.A.Delivered.Count;
                deliveredBeforeB = pair.B.Delivered.Count;
            }

            if (++tick % 10 == 0)
            {
                // Every 500 ms each side sends one packet (staged packets are just dropped here).
                var a = pair.SendData(pair.A, 40);
                var b = pair.SendData(pair.B, 40);
                if (pair.Now >= lastMinute)
                {
                    sentLastMinuteA++;
                    sentLastMinuteB++;
                }

                Assert.True(a.Action is ProtocolAction.WriteToNetwork || a.Error == ProtocolError.NoSession, $"seed {seed}: {a}");
                Assert.True(b.Action is ProtocolAction.WriteToNetwork || b.Error == ProtocolError.NoSession, $"seed {seed}: {b}");
            }

            pair.RunTimers(pair.A);
            pair.RunTimers(pair.B);
            pair.Pump();
        }

        var handshakes = pair.A.Sent.Count(d => TestPair.TypeOf(d) == MessageType.HandshakeInitiation)
            + pair.B.Sent.Count(d => TestPair.TypeOf(d) == MessageType.HandshakeInitiation);
        var receivedByB = pair.B.Delivered.Count - deliveredBeforeB;
        var receivedByA = pair.A.Delivered.Count - deliveredBeforeA;
        var expected = (1 - lossRate) * 0.5; // at least half of what survives the link
        Assert.True(handshakes >= 5, $"seed {seed}: only {handshakes} initiations in 10 minutes");
        Assert.True(receivedByB >= sentLastMinuteA * expected, $"seed {seed}: B got {receivedByB} of {sentLastMinuteA} in the last minute");
        Assert.True(receivedByA >= sentLastMinuteB * expected, $"seed {seed}: A got {receivedByA} of {sentLastMinuteB} in the last minute");
        Assert.DoesNotContain(pair.A.Results.Concat(pair.B.Results), r => r.Error is ProtocolError.LowOrderPoint or ProtocolError.InvalidMac1 or ProtocolError.BufferTooSmall);
    }
}
