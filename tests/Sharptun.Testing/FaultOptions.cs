namespace Sharptun.Testing;

/// <summary>Seeded fault model of a <see cref="FaultInjectingPacketDevice"/>, applied independently to each direction.</summary>
public sealed class FaultOptions
{
    /// <summary>Probability a packet is dropped (0..1).</summary>
    public double LossRate { get; set; }

    /// <summary>Probability a packet is delivered twice.</summary>
    public double DuplicateRate { get; set; }

    /// <summary>Probability a packet is held back by <see cref="ReorderHold"/>, so packets sent meanwhile overtake it.</summary>
    public double ReorderRate { get; set; }

    /// <summary>How long a reordered packet is held back. Default 2 ms.</summary>
    public TimeSpan ReorderHold { get; set; } = TimeSpan.FromMilliseconds(2);

    /// <summary>Fixed one-way delay added to every packet.</summary>
    public TimeSpan Delay { get; set; }

    /// <summary>Extra uniformly random delay in [0, Jitter) (may itself reorder packets).</summary>
    public TimeSpan Jitter { get; set; }

    /// <summary>Seed of the pseudo-random decisions (each direction derives its own stream), so a failing run replays.</summary>
    public int Seed { get; set; } = 1;
}
