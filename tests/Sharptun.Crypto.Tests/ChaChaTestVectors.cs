using System.Text.Json;
using Sharptun.Crypto;

namespace Sharptun.Crypto.Tests;

/// <summary>One Wycheproof AEAD case (see tests/vectors/README.md).</summary>
internal sealed record ChaChaAeadCase(int TcId, string Result, string Comment, int IvSizeBits, byte[] Key, byte[] Iv, byte[] Aad, byte[] Msg, byte[] Ct, byte[] Tag);

/// <summary>Loads the ChaCha20-Poly1305 vector files copied next to the test assembly as vectors/*.json.</summary>
internal static class ChaChaTestVectors
{
    public static JsonDocument Open(string name)
        => JsonDocument.Parse(File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "vectors", name)));

    public static byte[] Hex(JsonElement e, string property) => Convert.FromHexString(e.GetProperty(property).GetString()!);

    public static List<ChaChaAeadCase> Wycheproof(string name)
    {
        using JsonDocument doc = Open(name);
        var cases = new List<ChaChaAeadCase>();
        foreach (JsonElement group in doc.RootElement.GetProperty("testGroups").EnumerateArray())
        {
            int ivSize = group.GetProperty("ivSize").GetInt32();
            foreach (JsonElement t in group.GetProperty("tests").EnumerateArray())
            {
                cases.Add(new ChaChaAeadCase(
                    t.GetProperty("tcId").GetInt32(), t.GetProperty("result").GetString()!, t.GetProperty("comment").GetString()!, ivSize,
                    Hex(t, "key"), Hex(t, "iv"), Hex(t, "aad"), Hex(t, "msg"), Hex(t, "ct"), Hex(t, "tag")));
            }
        }

        return cases;
    }

    /// <summary>
    /// Every ChaCha20 path this machine can run (wider paths are skipped when the hardware lacks them). On an AVX-512 machine the
    /// AVX2-only rotations and the non-SIMD fallbacks are reached by running this suite again with DOTNET_EnableAVX512=0 and with
    /// DOTNET_EnableHWIntrinsic=0 (both pass).
    /// </summary>
    public static TheoryData<int> Paths()
    {
        var data = new TheoryData<int>();
        for (var p = ChaCha20Path.Scalar; p <= ChaCha20.BestPath; p++)
        {
            data.Add((int)p);
        }

        return data;
    }
}
