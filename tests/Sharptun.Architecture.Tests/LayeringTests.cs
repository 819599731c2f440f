using System.Reflection;
using System.Xml.Linq;

namespace Sharptun.Architecture.Tests;

/// <summary>
/// Dependencies point down only (docs/architecture.md, "Layers"). Checked twice: on the compiled assemblies'
/// references and on the project files, so a reference that is declared but not yet used is caught too.
/// </summary>
public sealed class LayeringTests
{
    // Every Sharptun assembly and the Sharptun assemblies it may reference.
    public static TheoryData<string, string[]> Allowed => new()
    {
        { "Sharptun.Crypto", [] },
        { "Sharptun.Protocol", ["Sharptun.Crypto"] },
        { "Sharptun.Transport", [] },
        { "Sharptun.Device", ["Sharptun.Crypto", "Sharptun.Protocol", "Sharptun.Transport"] },
        { "Sharptun.NetStack", ["Sharptun.Transport"] },
        { "Sharptun", ["Sharptun.Crypto", "Sharptun.Protocol", "Sharptun.Transport", "Sharptun.Device", "Sharptun.NetStack"] },
        { "Sharptun.Hosting", ["Sharptun.Transport", "Sharptun.NetStack", "Sharptun"] },
        { "Sharptun.Proxy", ["Sharptun.Transport", "Sharptun.NetStack", "Sharptun", "Sharptun.Hosting"] },
        { "Sharptun.Gateway", ["Sharptun.Transport", "Sharptun.Device", "Sharptun.NetStack", "Sharptun", "Sharptun.Hosting"] },
    };

    // src/Sharptun (the facade, package Sharptun) builds Sharptun.Tunnel.dll: the CLI's assembly is "sharptun", and
    // assembly names compare case-insensitively.
    private static string AssemblyOf(string project) => project == "Sharptun" ? "Sharptun.Tunnel" : project;

    [Theory]
    [MemberData(nameof(Allowed))]
    public void CompiledAssembly_ReferencesOnlyLowerLayers(string assemblyName, string[] allowed)
    {
        var assembly = Assembly.Load(AssemblyOf(assemblyName));
        var sharptunReferences = assembly.GetReferencedAssemblies()
            .Select(a => a.Name == "Sharptun.Tunnel" ? "Sharptun" : a.Name!)
            .Where(n => n.StartsWith("Sharptun", StringComparison.Ordinal) || n == "sharptun")
            .ToArray();

        Assert.All(sharptunReferences, r => Assert.Contains(r, allowed));
    }

    [Theory]
    [MemberData(nameof(Allowed))]
    public void ProjectFile_ReferencesOnlyLowerLayers(string assemblyName, string[] allowed)
    {
        var project = Path.Combine(FindRepositoryRoot(), "src", assemblyName, assemblyName + ".csproj");
        var references = XDocument.Load(project).Descendants("ProjectReference")
            .Select(e => Path.GetFileNameWithoutExtension(e.Attribute("Include")!.Value))
            .ToArray();

        Assert.All(references, r => Assert.Contains(r, allowed));
    }

    [Fact]
    public void EveryLibrary_IsAotCompatibleAndWarningFree()
    {
        var props = XDocument.Load(Path.Combine(FindRepositoryRoot(), "Directory.Build.props")).ToString();

        Assert.Contains("<IsAotCompatible>true</IsAotCompatible>", props, StringComparison.Ordinal);
        Assert.Contains("<TreatWarningsAsErrors>true</TreatWarningsAsErrors>", props, StringComparison.Ordinal);
    }

    [Fact]
    public void Protocol_HasNoClockThreadOrSocketCalls()
    {
        // The core is sans-I/O (DESIGN.md): time comes in as a parameter, never from the clock.
        var directory = Path.Combine(FindRepositoryRoot(), "src", "Sharptun.Protocol");
        string[] forbidden = ["DateTime.Now", "DateTime.UtcNow", "Stopwatch", "Environment.TickCount", "new Thread", "Task.Run", "Task.Delay", "System.Net.Sockets", "Thread.Sleep"];

        foreach (var file in Directory.EnumerateFiles(directory, "*.cs", SearchOption.AllDirectories))
        {
            // SystemWallClock.cs holds the default IWallClock (TAI64N needs wall time); callers and tests inject their own.
            if (file.Contains("/obj/", StringComparison.Ordinal) || Path.GetFileName(file) == "SystemWallClock.cs")
            {
                continue;
            }

            var text = File.ReadAllText(file);
            foreach (var word in forbidden)
            {
                Assert.False(text.Contains(word, StringComparison.Ordinal), $"{Path.GetFileName(file)} uses {word}");
            }
        }
    }

    // The build output may live outside the repository (SHARPTUN_ARTIFACTS), so start from this source file.
    internal static string FindRepositoryRoot([System.Runtime.CompilerServices.CallerFilePath] string sourceFile = "")
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
