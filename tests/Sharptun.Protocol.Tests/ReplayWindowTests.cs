namespace Sharptun.Protocol.Tests;

public sealed class ReplayWindowTests
{
    /// <summary>The obvious model: a set of seen counters and the highest one.</summary>
    private sealed class NaiveWindow
    {
        private readonly HashSet<ulong> _seen = [];
        private ulong _max;
        private bool _any;

        public bool TryAccept(ulong counter, ulong limit)
        {
            if (counter >= limit || _seen.Contains(counter) || (_any && counter < _max && _max - counter > (ulong)ReplayWindow.WindowSize))
            {
                return false;
            }

            _seen.Add(counter);
            if (!_any || counter > _max)
            {
                _max = counter;
                _any = true;
            }

            return true;
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    public void TryAccept_RandomSequence_MatchesNaiveModel(int seed)
    {
        var random = new Random(seed);
        var window = new ReplayWindow();
        var model = new NaiveWindow();
        ulong head = 0;
        const ulong limit = ulong.MaxValue - 8192;
        for (var i = 0; i < 50_000; i++)
        {
            ulong counter;
            switch (random.Next(10))
            {
                case 0: // jump forward, sometimes past the whole ring
                    head += (ulong)random.Next(1, 40_000);
                    counter = head;
                    break;
                case 1: // far behind
                    counter = head > 20_000 ? head - (ulong)random.Next(16_000, 20_000) : 0;
                    break;
                case 2: // exactly around the window edge
                    counter = head >= (ulong)ReplayWindow.WindowSize + 2 ? head - (ulong)ReplayWindow.WindowSize - 1 + (ulong)random.Next(3) : head;
                    break;
                default: // near the head, in order or slightly reordered/duplicated
                    head += (ulong)random.Next(0, 3);
                    counter = head - Math.Min(head, (ulong)random.Next(0, 300));
                    break;
            }

            var expected = model.TryAccept(counter, limit);
            var actual = window.TryAccept(counter, limit);
            Assert.True(expected == actual, $"seed {seed}, step {i}, counter {counter}, head {head}: model {expected}, window {actual}");
        }
    }

    [Fact]
    public void TryAccept_NearRejectAfterMessages_MatchesModel()
    {
        var window = new ReplayWindow();
        var model = new NaiveWindow();
        const ulong limit = ProtocolConstants.RejectAfterMessages;
        foreach (var c in new[] { limit - 10, limit - 1, limit, limit + 5, ulong.MaxValue, limit - 1, limit - 9000, limit - 2 })
        {
            Assert.Equal(model.TryAccept(c, limit), window.TryAccept(c, limit));
        }
    }

    [Fact]
    public void TryAccept_Duplicate_Rejected()
    {
        var window = new ReplayWindow();
        Assert.True(window.TryAccept(0));
        Assert.False(window.TryAccept(0));
        Assert.True(window.TryAccept(5));
        Assert.True(window.TryAccept(3));
        Assert.False(window.TryAccept(3));
    }

    [Fact]
    public void WindowSize_IsAtLeast8192()
    {
        Assert.True(ReplayWindow.WindowSize >= 8192);
    }
}
