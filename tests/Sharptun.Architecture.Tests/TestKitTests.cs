using System.Reflection;
using System.Xml.Linq;
using Sharptun.Testing;

namespace Sharptun.Architecture.Tests;

/// <summary>
/// Test code is shared through the test kit only: tests/Sharptun.Testing (packet builders, in-memory networks, fault
/// injection, workloads) and tests/Sharptun.TestDaemon (the daemon with test-only controls) are the test-support
/// projects; no test, benchmark or fuzzing project references another test or benchmark project, and the shipped
/// libraries neither reference the test kit nor carry its types. The fuzzing harness (fuzz/Sharptun.Fuzz) is code under
/// test for tests/Sharptun.Fuzz.Tests, which replays fuzz/corpus through it, as the samples are for theirs.
/// </summary>
public sealed class TestKitTests
{
    private static readonly string[] TestSupportProjects = ["Sharptun.Testing", "Sharptun.TestDaemon"];

    private static readonly string[] SourceAssemblies =
        ["Sharptun.Crypto", "Sharptun.Protocol", "Sharptun.Transport", "Sharptun.Device", "Sharptun.NetStack", "Sharptun.Tunnel", "Sharptun.Hosting", "Sharptun.Proxy", "Sharptun.Gateway", "sharptun"];

    /// <summary>Every project file under tests/, bench/ and fuzz/, as (folder, project name).</summary>
    public static TheoryData<string, string> TestAndBenchProjects()
    {
        var data = new TheoryData<string, string>();
        foreach (var folder in new[] { "tests", "bench", "fuzz" })
        {
            foreach (var project in Directory.EnumerateFiles(Path.Combine(LayeringTests.FindRepositoryRoot(), folder), "*.csproj", SearchOption.AllDirectories))
            {
                data.Add(folder, Path.GetFileNameWithoutExtension(project));
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(TestAndBenchProjects))]
    public void TestOrBenchProject_ReferencesNoOtherTestOrBenchProject(string folder, string project)
    {
        var root = LayeringTests.FindRepositoryRoot();
        var file = Path.Combine(root, folder, project, project + ".csproj");
        foreach (var include in XDocument.Load(file).Descendants("ProjectReference").Select(e => e.Attribute("Include")!.Value))
        {
            var target = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(file)!, include.Replace('\\', '/')));
            var relative = Path.GetRelativePath(root, target).Replace('\\', '/');
            var name = Path.GetFileNameWithoutExtension(target);
            var allowed = relative.StartsWith("src/", StringComparison.Ordinal)
                || relative.StartsWith("samples/", StringComparison.Ordinal)
                || (relative.StartsWith("fuzz/", StringComparison.Ordinal) && project == "Sharptun.Fuzz.Tests")
                || (relative.StartsWith("tests/", StringComparison.Ordinal) && TestSupportProjects.Contains(name));
            Assert.True(allowed, $"{folder}/{project} references {relative}: share test code through tests/Sharptun.Testing instead");
        }
    }

    [Fact]
    public void TestSupportProjects_AreNotTestProjects()
    {
        // scripts/test.sh runs every tests/**/*.Tests.csproj; Directory.Build.props makes only those test projects.
        foreach (var name in TestSupportProjects)
        {
            Assert.False(name.EndsWith(".Tests", StringComparison.Ordinal), name);
            Assert.True(File.Exists(Path.Combine(LayeringTests.FindRepositoryRoot(), "tests", name, name + ".csproj")), name);
        }

        Assert.DoesNotContain(
            typeof(PacketBuilder).Assembly.GetReferencedAssemblies(),
            a => a.Name!.StartsWith("xunit", StringComparison.OrdinalIgnoreCase) || a.Name!.StartsWith("Microsoft.TestPlatform", StringComparison.Ordinal));
    }

    [Fact]
    public void SourceProjects_DoNotReferenceTheTestKit()
    {
        var src = Path.Combine(LayeringTests.FindRepositoryRoot(), "src");
        foreach (var project in Directory.EnumerateFiles(src, "*.csproj", SearchOption.AllDirectories))
        {
            var references = XDocument.Load(project).Descendants("ProjectReference")
                .Select(e => Path.GetFileNameWithoutExtension(e.Attribute("Include")!.Value));
            Assert.DoesNotContain(references, r => TestSupportProjects.Contains(r));
        }

        foreach (var name in SourceAssemblies)
        {
            Assert.DoesNotContain(Assembly.Load(name).GetReferencedAssemblies(), a => TestSupportProjects.Contains(a.Name) || a.Name == "sharptun-testdaemon");
        }
    }

    [Fact]
    public void SourceAssemblies_DoNotContainTheTestKitsTypes()
    {
        // FaultInjectingPacketDevice, InMemoryNetwork and the rest moved out of src/ (issue 8): none may come back.
        var testKitTypes = typeof(PacketBuilder).Assembly.GetTypes()
            .Where(t => t.IsPublic)
            .Select(t => t.Name)
            .ToHashSet();
        Assert.Contains(nameof(FaultInjectingPacketDevice), testKitTypes);
        Assert.Contains(nameof(InMemoryNetwork), testKitTypes);

        foreach (var name in SourceAssemblies)
        {
            var shipped = Assembly.Load(name).GetTypes().Where(t => testKitTypes.Contains(t.Name)).Select(t => t.FullName);
            Assert.Empty(shipped);
        }
    }
}
