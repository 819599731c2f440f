using System.Text.RegularExpressions;

namespace Sharptun.Architecture.Tests;

/// <summary>
/// A newcomer finds a type by its name alone (issue 8): every source file under src/ declares the namespace of its
/// folder (the project name, then the folders below it: <c>src/Sharptun.Device/Pipeline/X.cs</c> declares
/// <c>Sharptun.Device.Pipeline</c>), is named after the main type it declares (<c>Type.cs</c>, or <c>Type.Part.cs</c>
/// for a part of a partial type), and no type is named like the last segment of its namespace (which forces
/// <c>using X = ...</c> aliases on every caller). Checked on the source text: one file-scoped namespace per file, the
/// types declared at its top level.
/// </summary>
public sealed partial class SourceLayoutTests
{
    public static TheoryData<string> SourceFiles => new(EnumerateSourceFiles().Select(f => Path.GetRelativePath(SourceRoot, f)));

    [Theory]
    [MemberData(nameof(SourceFiles))]
    public void Namespace_EqualsProjectAndFolder(string file)
    {
        var expected = ExpectedNamespace(file);
        var declared = NamespaceRegex().Matches(StripComments(File.ReadAllText(Path.Combine(SourceRoot, file))))
            .Select(m => m.Groups[1].Value)
            .ToArray();

        Assert.True(declared.Length == 1 && declared[0] == expected, $"{file}: declares namespace {string.Join(", ", declared)}; expected one file-scoped namespace {expected}");
    }

    [Theory]
    [MemberData(nameof(SourceFiles))]
    public void FileName_EqualsItsMainType(string file)
    {
        var types = TopLevelTypes(file);
        var name = Path.GetFileName(file);
        var typeName = name[..name.IndexOf('.', StringComparison.Ordinal)];

        // Type.cs, or Type.Part.cs for one part of a partial type; the main type may follow small helper types
        // it owns (an enum of its reasons, say), so any top-level type of the file may give the name.
        Assert.True(types.Contains(typeName), $"{file}: named {typeName}, declares {string.Join(", ", types)}");
    }

    [Theory]
    [MemberData(nameof(SourceFiles))]
    public void NoType_IsNamedLikeItsNamespace(string file)
    {
        var lastSegment = ExpectedNamespace(file).Split('.')[^1];
        var types = TopLevelTypes(file);

        Assert.False(types.Contains(lastSegment), $"{file}: type {lastSegment} is named like its namespace {ExpectedNamespace(file)}");
    }

    private static string SourceRoot { get; } = Path.Combine(FindRepositoryRoot(), "src");

    private static IEnumerable<string> EnumerateSourceFiles() =>
        Directory.EnumerateFiles(SourceRoot, "*.cs", SearchOption.AllDirectories)
            .Where(f =>
            {
                var parts = Path.GetRelativePath(SourceRoot, f).Split(Path.DirectorySeparatorChar);
                return !parts.Contains("obj") && !parts.Contains("bin");
            })
            .Order(StringComparer.Ordinal);

    /// <summary>The project folder (its name is the project's and its root namespace), then each folder below it.</summary>
    private static string ExpectedNamespace(string file)
    {
        var directories = Path.GetDirectoryName(file)!.Split(Path.DirectorySeparatorChar);
        return string.Join('.', directories);
    }

    private static HashSet<string> TopLevelTypes(string file)
    {
        var text = StripComments(File.ReadAllText(Path.Combine(SourceRoot, file)));
        return [.. TopLevelTypeRegex().Matches(text).Select(m => m.Groups[1].Value)];
    }

    /// <summary>Removes comments and string literals, so a word in them is not taken for a declaration.</summary>
    private static string StripComments(string text) => CommentOrStringRegex().Replace(text, m => m.Value.StartsWith("//", StringComparison.Ordinal) ? "" : " ");

    // File-scoped namespaces only: top-level types start at column 0.
    [GeneratedRegex(@"^namespace\s+([\w.]+)\s*;", RegexOptions.Multiline)]
    private static partial Regex NamespaceRegex();

    [GeneratedRegex(@"^(?:(?:public|internal|file|static|sealed|abstract|readonly|ref|partial|unsafe|record)\s+)*(?:class|struct|interface|enum|record|delegate\s+[\w<>\[\]?,. ]+?)\s+(\w+)", RegexOptions.Multiline)]
    private static partial Regex TopLevelTypeRegex();

    [GeneratedRegex(@"//[^\n]*|/\*.*?\*/|@""(?:[^""]|"""")*""|""""""[\s\S]*?""""""|""(?:\\.|[^""\\\n])*""", RegexOptions.Singleline)]
    private static partial Regex CommentOrStringRegex();

    // The build output may live outside the repository (SHARPTUN_ARTIFACTS), so start from this source file.
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
}
