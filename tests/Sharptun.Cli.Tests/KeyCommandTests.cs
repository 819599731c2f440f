using Sharptun.Protocol;
using static Sharptun.Cli.Tests.CliTestHelper;

namespace Sharptun.Cli.Tests;

public sealed class KeyCommandTests
{
    // RFC 7748 §6.1: Alice's private key and public key.
    private static readonly string AlicePrivate = Convert.ToBase64String(Convert.FromHexString("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"));
    private static readonly string AlicePublic = Convert.ToBase64String(Convert.FromHexString("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"));

    [Fact]
    public void GenKey_WritesClampedBase64KeyAndNewline()
    {
        var (code, output, err) = Run(string.Empty, "genkey");
        Assert.Equal(0, code);
        Assert.Equal(string.Empty, err);
        Assert.Equal(45, output.Length);
        Assert.EndsWith("=\n", output);
        var bytes = Convert.FromBase64String(output.TrimEnd('\n'));
        Assert.Equal(0, bytes[0] & 7);
        Assert.Equal(0x40, bytes[31] & 0xC0);
    }

    [Fact]
    public void GenKey_TwoRuns_Differ() => Assert.NotEqual(Run(string.Empty, "genkey").Out, Run(string.Empty, "genkey").Out);

    [Theory]
    [InlineData("genkey")]
    [InlineData("genpsk")]
    [InlineData("pubkey")]
    public void KeyCommand_ExtraArgument_PrintsUsageAndFails(string command)
    {
        var (code, output, err) = Run(AlicePrivate, command, "extra");
        Assert.Equal(1, code);
        Assert.Equal(string.Empty, output);
        Assert.Equal($"Usage: sharptun {command}\n", err);
    }

    [Fact]
    public void GenPsk_WritesRandom32ByteBase64()
    {
        var (code, output, _) = Run(string.Empty, "genpsk");
        Assert.Equal(0, code);
        Assert.Equal(32, Convert.FromBase64String(output.TrimEnd('\n')).Length);
        Assert.NotEqual(output, Run(string.Empty, "genpsk").Out);
    }

    [Theory]
    [InlineData("")]
    [InlineData("\n")]
    [InlineData(" \t\r\n\n")]
    [InlineData("\0\n")]
    public void PubKey_Rfc7748Vector_WithTrailingWhitespace(string trailer)
    {
        var (code, output, err) = Run(AlicePrivate + trailer, "pubkey");
        Assert.Equal(string.Empty, err);
        Assert.Equal(0, code);
        Assert.Equal(AlicePublic + "\n", output);
    }

    [Fact]
    public void PubKey_OfGenKey_MatchesDeviceKey()
    {
        var priv = Run(string.Empty, "genkey").Out;
        Assert.True(Sharptun.Protocol.Key.TryParse(priv.TrimEnd('\n'), out var key));
        Assert.Equal(key.DerivePublicKey() + "\n", Run(priv, "pubkey").Out);
    }

    [Theory]
    [InlineData("")]
    [InlineData("short")]
    [InlineData("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=")] // non-canonical last character
    [InlineData("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA-")]
    public void PubKey_BadKey_WgMessageAndExit1(string stdin)
    {
        var (code, output, err) = Run(stdin, "pubkey");
        Assert.Equal(1, code);
        Assert.Equal(string.Empty, output);
        Assert.Equal("sharptun: Key is not the correct length or format\n", err);
    }

    [Theory]
    [InlineData("x")]
    [InlineData("\nx")]
    public void PubKey_TrailingCharacters_WgMessageAndExit1(string trailer)
    {
        var (code, output, err) = Run(AlicePrivate + trailer, "pubkey");
        Assert.Equal(1, code);
        Assert.Equal(string.Empty, output);
        Assert.Equal("sharptun: Trailing characters found after key\n", err);
    }

    [Fact]
    public void PubKey_LeadingWhitespace_IsRejectedLikeWg()
    {
        // wg reads exactly 44 bytes first, so a leading space shifts the key and leaves a trailing '='.
        var (code, _, err) = Run(" " + AlicePrivate, "pubkey");
        Assert.Equal(1, code);
        Assert.Equal("sharptun: Trailing characters found after key\n", err);
    }
}
