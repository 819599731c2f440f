using System.Text;
using System.Text.RegularExpressions;

namespace Sharptun.Architecture.Tests;

/// <summary>
/// The constant-time crypto sources branch only on public values. A conditional expression (<c>c ? a : b</c>), an
/// <c>if</c>/<c>while</c>/<c>switch</c>, or a short-circuit <c>&amp;&amp;</c>/<c>||</c> compiles to IL branches that the
/// tier-0 JIT (and sometimes tier 1) keeps as jumps, so each one may test only identifiers known to hold public data
/// in that file: lengths, offsets, counters, flags, constants and CPU-feature checks. Anything else (a limb, a key or
/// state word, a carry) is a secret-dependent branch and fails the test. Carries are computed as in
/// <c>Poly1305.Carry</c>: a bool-valued comparison (IL <c>clt.un</c>, SETcc) bit-cast to 0/1.
/// </summary>
public sealed partial class ConstantTimeSourceTests
{
    /// <summary>Per file: the identifiers that hold only public values there (a dotted name counts as a whole).</summary>
    private static readonly Dictionary<string, string[]> PublicIdentifiers = new()
    {
        // X25519's field arithmetic is libsodium's (Sodium.cs); what stays here (the all-zero check of
        // TrySharedSecret, copying and wiping the result) must not branch on the secret either.
        ["X25519.cs"] = [],
        ["Poly1305.cs"] = ["_buffered", "full", "rest", "hibit", "_scalarOnly"],
        ["Poly1305.Avx2.cs"] = ["pairs", "offset"],
        ["ChaCha20.cs"] = ["requested", "BestPath", "Supported", "path", "offset"],
        ["ChaCha20.Simd.cs"] = ["n", "length", "offset"],
        ["ChaChaPolyCore.cs"] = ["headData", "ok", "ChaCha20.Supported", "path", "ChaCha20Path.Vector512"],
    };

    // Properties that are public whatever they are read from: span lengths and CPU / JIT feature flags.
    private static readonly Regex PublicMember = PublicMemberRegex();

    private static readonly HashSet<string> Keywords =
    [
        "if", "while", "switch", "for", "do", "return", "new", "throw", "var", "else",
        "true", "false", "null", "is", "not", "and", "or", "sizeof", "default",
        "byte", "sbyte", "short", "ushort", "int", "uint", "long", "ulong", "nint", "nuint", "bool", "char",
    ];

    public static TheoryData<string> Files => new(PublicIdentifiers.Keys);

    [Theory]
    [MemberData(nameof(Files))]
    public void ConstantTimeSource_BranchesOnlyOnPublicValues(string file)
    {
        string directory = Path.Combine(FindRepositoryRoot(), "src", "Sharptun.Crypto");

        // constants of the whole assembly are public (a partial class declares them in a sibling file)
        var constants = Directory.GetFiles(directory, "*.cs")
            .SelectMany(f => ConstRegex().Matches(StripCommentsAndLiterals(File.ReadAllText(f))).Select(m => m.Groups[1].Value));
        var violations = FindSecretBranches(File.ReadAllText(Path.Combine(directory, file)), PublicIdentifiers[file].Concat(constants));
        Assert.True(violations.Count == 0, $"{file}: branch or conditional on a non-public value:\n  " + string.Join("\n  ", violations));
    }

    [Fact]
    public void EveryConstantTimeSource_IsScanned()
    {
        // X25519, Poly1305* and ChaCha20* hold the field / block arithmetic; a new file of theirs must be listed above.
        var files = Directory.GetFiles(Path.Combine(FindRepositoryRoot(), "src", "Sharptun.Crypto"), "*.cs")
            .Select(Path.GetFileName)
            .Where(f => f!.StartsWith("X25519", StringComparison.Ordinal) || f.StartsWith("Poly1305", StringComparison.Ordinal)
                || f.StartsWith("ChaCha20", StringComparison.Ordinal));
        Assert.All(files, f => Assert.Contains(f!, PublicIdentifiers.Keys));
    }

    [Theory]
    [InlineData("hi += Hi(a, b) + (lo < l ? 1UL : 0UL);")]
    [InlineData("h1 += l1 < c ? 1UL : 0UL;")]
    [InlineData("ulong m = (x >> 63) != 0 ? ulong.MaxValue : 0;")]
    [InlineData("return a.L0 == b.L0 ? 1 : 0;")]
    [InlineData("if (a.L0 >= Mask51)\n{\n    a.L0 -= Mask51;\n}")]
    [InlineData("while (t0 > p0)\n{\n    t0 -= p0;\n}")]
    [InlineData("bool eq = (x ^ y) == 0 && (z ^ w) == 0;")]
    [InlineData("int k = swap switch { 0 => 1, _ => 2 };")]
    [InlineData("switch (kt)\n{\n    case 1: break;\n}")]
    [InlineData("if (Avx2.IsSupported && h2 > 4)\n{\n}")]
    public void Scanner_SecretBranch_Flagged(string snippet)
    {
        Assert.NotEmpty(FindSecretBranches(snippet, ["offset"]));
    }

    [Theory]
    [InlineData("return Unsafe.BitCast<bool, byte>(sum < x);")]
    [InlineData("h1 += CarryOut(l1, c); // carry: c ? 1 : 0 in a comment is not code")]
    [InlineData("if (Bmi2.X64.IsSupported)\n{\n    return Bmi2.X64.MultiplyNoFlags(a, b);\n}")]
    [InlineData("if (span.Length != KeySize)\n{\n    throw new ArgumentException($\"Must be {KeySize} bytes? yes : no\", name);\n}")]
    [InlineData("for (int t = 254; t >= 0; t--)\n{\n    swap ^= kt;\n}")]
    [InlineData("while (offset < input.Length && TRot.UseAvx512)\n{\n}")]
    [InlineData("Cache cache = t_cache ??= new Cache(); Cache? c = null; c?.Dispose(); var v = arr?[0];")]
    [InlineData("uint isZero = (acc - 1) >> 31;\nreturn isZero == 0;")]
    public void Scanner_PublicOrBranchFreeCode_NotFlagged(string snippet)
    {
        Assert.Empty(FindSecretBranches("private const int KeySize = 32;\n" + snippet, ["offset"]));
    }

    /// <summary>Every branch condition in <paramref name="source"/> that reads a non-public identifier, as "line N: text".</summary>
    private static List<string> FindSecretBranches(string source, IEnumerable<string> publicIdentifiers)
    {
        string code = StripCommentsAndLiterals(source);
        var allowed = new HashSet<string>(publicIdentifiers, StringComparer.Ordinal);
        foreach (Match m in ConstRegex().Matches(code))
        {
            allowed.Add(m.Groups[1].Value); // constants are public
        }

        var conditions = new List<(int At, string Text)>();
        foreach (Match m in StatementRegex().Matches(code))
        {
            int open = m.Index + m.Length - 1;
            int close = MatchingParen(code, open);
            conditions.Add((m.Index, code[(open + 1)..close]));
        }

        for (int i = 0; i < code.Length; i++)
        {
            bool conditional = code[i] == '?' && i > 0 && char.IsWhiteSpace(code[i - 1]) && i + 1 < code.Length && char.IsWhiteSpace(code[i + 1]);
            bool switchExpression = IsWordAt(code, i, "switch") && NextNonSpace(code, i + 6) == '{';
            if (conditional || switchExpression)
            {
                conditions.Add((i, code[ExpressionStart(code, i)..i]));
            }

            if ((code[i] == '&' && At(code, i + 1) == '&') || (code[i] == '|' && At(code, i + 1) == '|'))
            {
                conditions.Add((i, code[StatementStart(code, i)..StatementEnd(code, i)]));
                i++;
            }
        }

        var violations = new List<string>();
        foreach (var (at, text) in conditions)
        {
            string stripped = PublicMember.Replace(text, " ");
            var secret = IdentifierRegex().Matches(stripped)
                .Select(m => m.Value)
                .Where(id => !Keywords.Contains(id) && !allowed.Contains(id))
                .ToArray();
            if (secret.Length > 0)
            {
                int line = 1 + code.AsSpan(0, at).Count('\n');
                violations.Add($"line {line}: ({string.Join(", ", secret)}) in `{Regex.Replace(text.Trim(), @"\s+", " ")}`");
            }
        }

        return violations.Distinct().ToList();
    }

    /// <summary>Blanks comments, string and char literals (keeping newlines, so line numbers stay right).</summary>
    private static string StripCommentsAndLiterals(string s)
    {
        var sb = new StringBuilder(s.Length);
        int i = 0;
        while (i < s.Length)
        {
            char ch = s[i];
            int end;
            if (ch == '/' && At(s, i + 1) == '/')
            {
                end = s.IndexOf('\n', i);
                end = end < 0 ? s.Length : end;
            }
            else if (ch == '/' && At(s, i + 1) == '*')
            {
                end = s.IndexOf("*/", i + 2, StringComparison.Ordinal);
                end = end < 0 ? s.Length : end + 2;
            }
            else if (ch == '"' || ch == '\'')
            {
                bool verbatim = i > 0 && (s[i - 1] == '@' || (s[i - 1] == '$' && i > 1 && s[i - 2] == '@'));
                end = i + 1;
                while (end < s.Length && s[end] != ch)
                {
                    end += !verbatim && s[end] == '\\' ? 2 : 1;
                }

                end = Math.Min(end + 1, s.Length);
            }
            else
            {
                sb.Append(ch);
                i++;
                continue;
            }

            for (int k = i; k < end; k++)
            {
                sb.Append(s[k] == '\n' ? '\n' : ' ');
            }

            i = end;
        }

        return sb.ToString();
    }

    private static char At(string s, int i) => i < s.Length ? s[i] : '\0';

    private static bool IsWordAt(string s, int i, string word) =>
        string.CompareOrdinal(s, i, word, 0, word.Length) == 0
        && (i == 0 || !IsIdentifierChar(s[i - 1]))
        && !IsIdentifierChar(At(s, i + word.Length));

    private static bool IsIdentifierChar(char c) => char.IsLetterOrDigit(c) || c == '_';

    private static char NextNonSpace(string s, int i)
    {
        while (i < s.Length && char.IsWhiteSpace(s[i]))
        {
            i++;
        }

        return At(s, i);
    }

    private static int MatchingParen(string s, int open)
    {
        int depth = 0;
        for (int i = open; i < s.Length; i++)
        {
            depth += s[i] == '(' ? 1 : s[i] == ')' ? -1 : 0;
            if (depth == 0)
            {
                return i;
            }
        }

        return s.Length;
    }

    /// <summary>Start of the operand left of a <c>?</c> or <c>switch</c> at <paramref name="i"/>: back to an assignment, '(' , ',', ';', brace or return.</summary>
    private static int ExpressionStart(string s, int i)
    {
        int depth = 0;
        for (int k = i - 1; k >= 0; k--)
        {
            char c = s[k];
            if (c is ')' or ']')
            {
                depth++;
            }
            else if (c is '(' or '[')
            {
                if (depth-- == 0)
                {
                    return k + 1;
                }
            }
            else if (depth == 0)
            {
                bool assignment = c == '=' && At(s, k + 1) != '=' && (k == 0 || s[k - 1] is not ('=' or '!' or '<' or '>'));
                if (assignment || c is ',' or ';' or '{' or '}' or ':' || IsWordAt(s, k, "return"))
                {
                    return k + (IsWordAt(s, k, "return") ? 6 : 1);
                }
            }
        }

        return 0;
    }

    private static int StatementStart(string s, int i)
    {
        int k = s.LastIndexOfAny([';', '{', '}'], i);
        return k + 1;
    }

    private static int StatementEnd(string s, int i)
    {
        int k = s.IndexOfAny([';', '{', '}'], i);
        return k < 0 ? s.Length : k;
    }

    private static string FindRepositoryRoot([System.Runtime.CompilerServices.CallerFilePath] string sourceFile = "")
    {
        for (var dir = new DirectoryInfo(Path.GetDirectoryName(sourceFile)!); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Sharptun.slnx")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("repository root (Sharptun.slnx) not found above " + sourceFile);
    }

    [GeneratedRegex(@"[A-Za-z_][\w.]*\.(?:Length|IsEmpty|IsSupported|IsHardwareAccelerated|IsLittleEndian|UseAvx512)\b")]
    private static partial Regex PublicMemberRegex();

    [GeneratedRegex(@"\b(?:if|while|switch)\s*\(")]
    private static partial Regex StatementRegex();

    [GeneratedRegex(@"(?<![\w.])[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")]
    private static partial Regex IdentifierRegex();

    [GeneratedRegex(@"\bconst\s+\w+\s+(\w+)")]
    private static partial Regex ConstRegex();
}
