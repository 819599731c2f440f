using System.IO.Compression;
using System.Runtime.CompilerServices;
using System.Xml.Linq;

namespace Sharptun.Interop.Tests;

/// <summary>
/// Issue 9 item 7: <c>dotnet pack</c> of the library (src/Sharptun, package id Sharptun) gives a package with the
/// assembly, its XML docs and the README, whose dependencies (the other src/ libraries) pack the same way; and the
/// sample samples/FetchThroughTunnel builds against those packages instead of the project. Runs <c>dotnet</c> on the
/// Release build already made (<c>--no-build</c> for pack), so it lives with the interop tests that run under CI.
/// </summary>
public sealed class PackageInteropTests
{
    private static readonly string[] Libraries =
        ["Sharptun", "Sharptun.Crypto", "Sharptun.Protocol", "Sharptun.Transport", "Sharptun.Device", "Sharptun.NetStack"];

    /// <summary>Third-party packages the libraries may depend on (logging abstractions; libsodium for X25519).</summary>
    private static readonly HashSet<string> ExternalDependencies = ["Microsoft.Extensions.Logging.Abstractions", "libsodium"];

    [InteropFact("dotnet")]
    public void DotnetPack_SharptunPackage_HasDllXmlDocsReadme_AndTheSampleBuildsAgainstIt()
    {
        var root = RepositoryRoot();
        using var lab = new NetnsLab();
        var feed = Path.Combine(lab.TempDirectory, "feed");
        foreach (var library in Libraries)
        {
            var pack = lab.Exec(null, TimeSpan.FromMinutes(3), "dotnet", "pack", Path.Combine(root, "src", library, library + ".csproj"),
                "-c", "Release", "--no-build", "-o", feed, "-p:Version=0.1.0-test");
            Assert.True(pack.Success, pack.ToString());
        }

        using (var package = ZipFile.OpenRead(Path.Combine(feed, "Sharptun.0.1.0-test.nupkg")))
        {
            var names = package.Entries.Select(e => e.FullName).ToHashSet();
            Assert.Contains("lib/net10.0/Sharptun.Tunnel.dll", names);
            Assert.Contains("lib/net10.0/Sharptun.Tunnel.xml", names);
            Assert.Contains("README.md", names);
            using var readme = new StreamReader(package.GetEntry("README.md")!.Open());
            Assert.Contains("WireGuardTunnel", readme.ReadToEnd(), StringComparison.Ordinal);
            using var nuspecStream = package.GetEntry("Sharptun.nuspec")!.Open();
            var nuspec = XDocument.Load(nuspecStream);
            var ns = nuspec.Root!.Name.Namespace;
            var metadata = nuspec.Root.Element(ns + "metadata")!;
            Assert.Equal("README.md", metadata.Element(ns + "readme")?.Value);
            Assert.False(string.IsNullOrWhiteSpace(metadata.Element(ns + "description")?.Value));

            // Every dependency is one of the libraries packed beside it, with its own dll and docs, or one of the few
            // third-party packages the libraries are allowed to use.
            var dependencies = metadata.Descendants(ns + "dependency").Select(d => d.Attribute("id")!.Value).Distinct().ToList();
            Assert.NotEmpty(dependencies);
            foreach (var id in dependencies.Where(d => !ExternalDependencies.Contains(d)))
            {
                Assert.Contains(id, Libraries);
                using var dependency = ZipFile.OpenRead(Path.Combine(feed, $"{id}.0.1.0-test.nupkg"));
                var entries = dependency.Entries.Select(e => e.FullName).ToHashSet();
                Assert.Contains($"lib/net10.0/{id}.dll", entries);
                Assert.Contains($"lib/net10.0/{id}.xml", entries);
            }
        }

        // The sample against the packages (its own package cache and build folder, so nothing stale is reused). The
        // other packages it needs (the trimming analyzers' ILLink.Tasks) come from the machine's package cache, which
        // the solution's restore filled, so this needs no network.
        var cache = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } configured
            ? configured
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        var build = lab.Exec(null, TimeSpan.FromMinutes(5), "env",
            "NUGET_PACKAGES=" + Path.Combine(lab.TempDirectory, "packages"),
            "SHARPTUN_ARTIFACTS=" + Path.Combine(lab.TempDirectory, "artifacts"),
            "DOTNET_CLI_TELEMETRY_OPTOUT=1", "DOTNET_NOLOGO=1",
            "dotnet", "build", Path.Combine(root, "samples", "FetchThroughTunnel", "FetchThroughTunnel.csproj"), "-c", "Release",
            "-p:SharptunPackageVersion=0.1.0-test", "--source", feed, "--source", cache);
        Assert.True(build.Success, build.ToString());
        var output = Path.Combine(lab.TempDirectory, "artifacts", "bin", "FetchThroughTunnel", "release");
        Assert.True(File.Exists(Path.Combine(output, "FetchThroughTunnel.dll")), build.ToString());
        Assert.True(File.Exists(Path.Combine(output, "Sharptun.Tunnel.dll")), build.ToString());
        var usage = lab.Exec(null, TimeSpan.FromMinutes(1), "dotnet", Path.Combine(output, "FetchThroughTunnel.dll"));
        Assert.Equal(2, usage.ExitCode);
        Assert.Contains("usage: FetchThroughTunnel CONFIG-FILE URL", usage.Stderr, StringComparison.Ordinal);
    }

    private static string RepositoryRoot([CallerFilePath] string sourceFile = "")
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
