using Sharptun.Fuzz;

namespace Sharptun.Fuzz.Tests;

/// <summary>
/// Replays fuzz/corpus through the fuzz targets in every test run: the seeds afl++ starts from and every input that
/// once crashed a target (kept there after the fix). The targets are the code afl++ runs (scripts/fuzz.sh), not a copy.
/// </summary>
public sealed class CorpusReplayTests
{
    public static TheoryData<string, string> CorpusFiles()
    {
        var data = new TheoryData<string, string>();
        foreach (var dir in Directory.GetDirectories(CorpusRoot).Order(StringComparer.Ordinal))
        {
            foreach (var file in Directory.GetFiles(dir).Order(StringComparer.Ordinal))
            {
                data.Add(Path.GetFileName(dir), Path.GetFileName(file));
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(CorpusFiles))]
    public void CorpusInput_RunsThroughItsTarget_WithoutAnException(string target, string file)
    {
        Assert.True(FuzzTargets.All.TryGetValue(target, out var run), $"fuzz/corpus/{target} names no target");
        var input = File.ReadAllBytes(Path.Combine(CorpusRoot, target, file));
        _ = run(input); // an exception fails the test with the target's stack trace
    }

    [Fact]
    public void EveryTarget_HasACorpus_AndAcceptsPartOfIt()
    {
        // A target that rejects all of its corpus would stop at the first check and fuzz nothing behind it.
        foreach (var (name, run) in FuzzTargets.All)
        {
            var dir = Path.Combine(CorpusRoot, name);
            Assert.True(Directory.Exists(dir), $"no fuzz/corpus/{name}");
            var accepted = Directory.GetFiles(dir).Count(f => run(File.ReadAllBytes(f)));
            Assert.True(accepted > 0, $"{name} accepts none of fuzz/corpus/{name}");
        }
    }

    [Fact]
    public void EveryTarget_RejectsGarbage()
    {
        // The other half of "accepted" meaning something: bytes no parser should take.
        var garbage = Enumerable.Repeat((byte)0xFF, 200).ToArray();
        foreach (var (name, run) in FuzzTargets.All)
        {
            Assert.False(run(garbage), $"{name} accepted 200 bytes of 0xFF");
        }
    }

    [Fact]
    public void SeedGenerator_MakesInputsTheTargetsAccept()
    {
        // `Sharptun.Fuzz seeds DIR` wrote fuzz/corpus; when the formats change it must still make valid inputs.
        var seeds = SeedCorpus.All().ToList();
        Assert.Equal(FuzzTargets.All.Keys.Order(StringComparer.Ordinal), seeds.Select(s => s.Target).Distinct().Order(StringComparer.Ordinal));
        foreach (var group in seeds.GroupBy(s => s.Target))
        {
            var run = FuzzTargets.All[group.Key];
            var accepted = group.Where(s => run(s.Bytes)).Select(s => s.Name).ToList();
            Assert.True(accepted.Count > 0, $"the generator's {group.Key} seeds are all rejected");
            if (group.Key != "wire")
            {
                // every seed but the wire target's replies (a response or cookie for a handshake the responder never
                // started, a transport packet for no session) is a valid input
                Assert.Equal(group.Select(s => s.Name), accepted);
            }
        }
    }

    [Fact]
    public void RandomInputs_NeverThrow()
    {
        // A seeded smoke test of the same targets for machines without afl++; afl++ itself runs in scripts/fuzz.sh.
        var rng = new Random(20261207);
        foreach (var (name, run) in FuzzTargets.All)
        {
            var seeds = Directory.GetFiles(Path.Combine(CorpusRoot, name)).Select(File.ReadAllBytes).ToArray();
            for (var i = 0; i < 300; i++)
            {
                var input = (byte[])seeds[rng.Next(seeds.Length)].Clone();
                var flips = rng.Next(1, 8);
                for (var f = 0; f < flips && input.Length > 0; f++)
                {
                    input[rng.Next(input.Length)] = (byte)rng.Next(256);
                }

                if (rng.Next(4) == 0)
                {
                    input = input[..rng.Next(input.Length + 1)];
                }

                try
                {
                    _ = run(input);
                }
                catch (Exception e)
                {
                    Assert.Fail($"{name} threw on {Convert.ToHexString(input)}: {e}");
                }
            }
        }
    }

    private static string CorpusRoot { get; } = Path.Combine(Repository.Root, "fuzz", "corpus");
}
