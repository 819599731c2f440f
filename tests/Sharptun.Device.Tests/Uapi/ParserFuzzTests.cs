using System.Text;
using Sharptun.Device.Config;
using Sharptun.Device.Tests.Config;
using Sharptun.Device.Uapi;

namespace Sharptun.Device.Tests.Uapi;

/// <summary>Seeded mutation fuzzing of the text parsers: never throw, and whatever they accept prints and re-parses equal.</summary>
public sealed class ParserFuzzTests
{
    private static string Mutate(Random rng, string text)
    {
        var sb = new StringBuilder(text);
        var edits = rng.Next(1, 6);
        const string alphabet = "=#[]/:.,%\n\r\t 0123456789abcdefABCDEF+-xX\0é";
        for (var i = 0; i < edits && sb.Length > 0; i++)
        {
            var at = rng.Next(sb.Length);
            switch (rng.Next(4))
            {
                case 0:
                    sb.Remove(at, 1);
                    break;
                case 1:
                    sb.Insert(at, alphabet[rng.Next(alphabet.Length)]);
                    break;
                case 2:
                    sb[at] = alphabet[rng.Next(alphabet.Length)];
                    break;
                default:
                    var len = Math.Min(rng.Next(1, 20), sb.Length - at);
                    sb.Insert(rng.Next(sb.Length), sb.ToString(at, len));
                    break;
            }
        }

        return sb.ToString();
    }

    [Theory]
    [InlineData(101)]
    [InlineData(102)]
    public void WgConfigParser_MutatedInput_NeverThrowsAndAcceptedInputRoundTrips(int seed)
    {
        var rng = new Random(seed);
        for (var i = 0; i < 2000; i++)
        {
            var text = Mutate(rng, WgConfigPrinter.PrintQuick(WgConfigRoundTripTests.RandomConfig(rng, quick: true)));
            if (WgConfigParser.TryParse(text, "fuzz.conf", out var config, out var errors))
            {
                Assert.Empty(errors);
                var again = WgConfigPrinter.PrintQuick(config!);
                Assert.True(WgConfigParser.TryParse(again, "fuzz.conf", out var reparsed, out _), $"seed {seed} #{i}: reprint rejected\n{again}");
                Assert.True(config == reparsed, $"seed {seed} #{i}: reprint changed the config\n{text}");
            }
            else
            {
                Assert.Null(config);
                Assert.NotEmpty(errors);
                Assert.All(errors, e => Assert.InRange(e.Line, 1, text.Split('\n').Length));
            }
        }
    }

    [Theory]
    [InlineData(201)]
    [InlineData(202)]
    public void UapiParser_MutatedSetRequest_NeverThrowsAndAcceptedInputRoundTrips(int seed)
    {
        var rng = new Random(seed);
        for (var i = 0; i < 2000; i++)
        {
            var config = WgConfigRoundTripTests.RandomConfig(rng, quick: false);
            var ok = UapiConfigConverter.TryToChangeSet(config, e => new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, e.Port), true, out var changes, out _);
            Assert.True(ok);
            var text = Mutate(rng, UapiFormatter.FormatSet(changes!));
            if (UapiParser.TryParseSet(text, out var parsed, out var error))
            {
                Assert.Null(error);
                Assert.True(UapiParser.TryParseSet(UapiFormatter.FormatSet(parsed!), out var reparsed, out _), $"seed {seed} #{i}");
                Assert.True(parsed == reparsed, $"seed {seed} #{i}: reprint changed the change set\n{text}");
            }
            else
            {
                Assert.Null(parsed);
                Assert.True(error!.Errno is UapiErrno.Invalid or UapiErrno.Protocol, $"seed {seed} #{i}: errno {error.Errno}");
            }

            // Get replies too: never throw.
            UapiParser.TryParseGet(text, out _, out _);
        }
    }
}
