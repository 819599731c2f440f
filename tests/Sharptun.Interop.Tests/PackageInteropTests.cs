using System.IO.Compression;
using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Xml.Linq;

namespace Sharptun.Interop.Tests;

/// <summary>
/// Issue 9 item 7, the package users reference: <c>dotnet pack src/Sharptun -c Release</c> gives one self-contained
/// <c>Sharptun</c> package (the five inner projects' assemblies and XML docs inside it, only NuGet packages as
/// dependencies), and a console app outside the repository that references <c>Sharptun</c> by version, with nothing
/// but that package's folder added to the machine's NuGet sources, builds and moves bytes between two in-process
/// tunnels; so does its NativeAOT publish, with no trim or AOT warning. The sample samples/FetchThroughTunnel builds
/// against the package too. The package's buildTransitive targets give the app its memory settings (the gen0 budget in
/// runtimeconfig.json and as ILC's runtime option, TieredPGO off), which the app can override or turn off. The pack
/// runs once per class (<see cref="PackedSharptun"/>) into its own artifacts folder, so it never rewrites the Release
/// build the other tests run from. Runs <c>dotnet</c>, so it lives with the interop tests that run under CI.
/// </summary>
public sealed class PackageInteropTests : IClassFixture<PackedSharptun>
{
    /// <summary>The projects whose assemblies the package carries (project name, assembly name).</summary>
    private static readonly (string Project, string Assembly)[] Libraries =
    [
        ("Sharptun", "Sharptun.Tunnel"), ("Sharptun.Crypto", "Sharptun.Crypto"), ("Sharptun.Protocol", "Sharptun.Protocol"),
        ("Sharptun.Transport", "Sharptun.Transport"), ("Sharptun.Device", "Sharptun.Device"), ("Sharptun.NetStack", "Sharptun.NetStack"),
    ];

    private static readonly TimeSpan BuildTimeout = TimeSpan.FromMinutes(6);

    private readonly PackedSharptun _packed;

    public PackageInteropTests(PackedSharptun packed) => _packed = packed;

    [InteropFact("dotnet")]
    public void DotnetPack_GivesOnePackage_WithAllSixAssemblies_AndOnlyNuGetDependencies()
    {
        var feed = _packed.Feed();
        Assert.Equal([Path.GetFileName(_packed.PackagePath)], Directory.GetFiles(feed, "*.nupkg").Select(Path.GetFileName));

        using var package = ZipFile.OpenRead(_packed.PackagePath);
        var names = package.Entries.Select(e => e.FullName).ToHashSet();
        var libraries = names.Where(n => n.StartsWith("lib/", StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToArray();
        var expected = Libraries.SelectMany(l => new[] { $"lib/net10.0/{l.Assembly}.dll", $"lib/net10.0/{l.Assembly}.xml" })
            .Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(expected, libraries);
        Assert.Contains("README.md", names);
        Assert.Contains("buildTransitive/Sharptun.targets", names);
        using (var readme = new StreamReader(package.GetEntry("README.md")!.Open()))
        {
            Assert.Contains("WireGuardTunnel", readme.ReadToEnd(), StringComparison.Ordinal);
        }

        // Trimming and NativeAOT stay possible: every assembly is built with IsAotCompatible (which marks it trimmable).
        foreach (var (_, assembly) in Libraries)
        {
            Assert.True(IsMarkedTrimmable(package.GetEntry($"lib/net10.0/{assembly}.dll")!), $"{assembly}.dll is not marked IsTrimmable");
        }

        XDocument nuspec;
        using (var stream = package.GetEntry("Sharptun.nuspec")!.Open())
        {
            nuspec = XDocument.Load(stream);
        }

        var ns = nuspec.Root!.Name.Namespace;
        var metadata = nuspec.Root.Element(ns + "metadata")!;
        Assert.Equal("Sharptun", metadata.Element(ns + "id")?.Value);
        Assert.Equal(_packed.Version, metadata.Element(ns + "version")?.Value);
        Assert.Equal("README.md", metadata.Element(ns + "readme")?.Value);
        Assert.False(string.IsNullOrWhiteSpace(metadata.Element(ns + "description")?.Value));

        // The dependencies are exactly the NuGet packages the six projects reference (at their versions): none of the
        // projects themselves, which are not published.
        var dependencies = metadata.Descendants(ns + "dependency")
            .ToDictionary(d => d.Attribute("id")!.Value, d => d.Attribute("version")!.Value, StringComparer.OrdinalIgnoreCase);
        Assert.DoesNotContain(dependencies.Keys, id => id.StartsWith("Sharptun", StringComparison.OrdinalIgnoreCase));
        var referenced = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var (project, _) in Libraries)
        {
            var csproj = XDocument.Load(Path.Combine(PackedSharptun.RepositoryRoot(), "src", project, project + ".csproj"));
            foreach (var reference in csproj.Descendants("PackageReference")
                         .Where(r => !string.Equals((string?)r.Attribute("PrivateAssets"), "all", StringComparison.OrdinalIgnoreCase)))
            {
                var id = reference.Attribute("Include")!.Value;
                var version = reference.Attribute("Version")!.Value;
                Assert.True(!referenced.TryGetValue(id, out var other) || other == version, $"{id}: versions {other} and {version} in src/");
                referenced[id] = version;
            }
        }

        Assert.Contains("libsodium", referenced.Keys);
        Assert.Equal(referenced.OrderBy(p => p.Key, StringComparer.OrdinalIgnoreCase),
            dependencies.OrderBy(p => p.Key, StringComparer.OrdinalIgnoreCase));
    }

    [InteropFact("dotnet")]
    public void ConsoleAppReferencingThePackage_Builds_AndMovesBytesThroughTwoTunnels()
    {
        var app = _packed.CreateConsumerApp("jit");
        var lab = _packed.Lab;

        var build = lab.Exec(null, BuildTimeout, "dotnet", "build", app, "-c", "Release");
        Assert.True(build.Success, build.ToString());
        var output = Path.Combine(app, "bin", "Release", "net10.0");
        foreach (var (_, assembly) in Libraries)
        {
            Assert.True(File.Exists(Path.Combine(output, assembly + ".dll")), $"{assembly}.dll is not in the app's output\n{build}");
        }

        // libsodium's native library came with the package's dependency.
        Assert.True(File.Exists(Path.Combine(output, "runtimes", "linux-x64", "native", "libsodium.so"))
                    || File.Exists(Path.Combine(output, "runtimes", "linux-arm64", "native", "libsodium.so")), build.ToString());

        // The package's buildTransitive targets put its memory settings into the app's runtimeconfig.json.
        var options = RuntimeConfigProperties(Path.Combine(output, "PackConsumer.runtimeconfig.json"));
        Assert.Equal("\"0x200000\"", options.GetValueOrDefault("System.GC.Gen0MaxBudget"));
        Assert.Equal("false", options.GetValueOrDefault("System.Runtime.TieredPGO"));

        var run = lab.Exec(null, TimeSpan.FromMinutes(2), "dotnet", Path.Combine(output, "PackConsumer.dll"));
        Assert.True(run.Success, run.ToString());
        Assert.Contains(PackedSharptun.Marker, run.Stdout, StringComparison.Ordinal);
    }

    [InteropFact("dotnet")]
    public void ConsoleAppReferencingThePackage_OverridesOrTurnsOffItsMemorySettings()
    {
        // The app's own values win: another gen0 budget (with the 0x the runtime's variables also accept), PGO back on.
        var app = _packed.CreateConsumerApp("jit-own-settings", "<SharptunGen0Budget>0x400000</SharptunGen0Budget><TieredPGO>true</TieredPGO>");
        var lab = _packed.Lab;
        var build = lab.Exec(null, BuildTimeout, "dotnet", "build", app, "-c", "Release", "-o", Path.Combine(app, "own"));
        Assert.True(build.Success, build.ToString());
        var own = RuntimeConfigProperties(Path.Combine(app, "own", "PackConsumer.runtimeconfig.json"));
        Assert.Equal("\"0x400000\"", own.GetValueOrDefault("System.GC.Gen0MaxBudget"));
        Assert.Equal("true", own.GetValueOrDefault("System.Runtime.TieredPGO"));

        // SharptunMemoryDefaults=false: none of them, the runtime's defaults.
        var plain = _packed.CreateConsumerApp("jit-runtime-defaults", "<SharptunMemoryDefaults>false</SharptunMemoryDefaults>");
        build = lab.Exec(null, BuildTimeout, "dotnet", "build", plain, "-c", "Release", "-o", Path.Combine(plain, "off"));
        Assert.True(build.Success, build.ToString());
        var off = RuntimeConfigProperties(Path.Combine(plain, "off", "PackConsumer.runtimeconfig.json"));
        Assert.False(off.ContainsKey("System.GC.Gen0MaxBudget"), string.Join(", ", off));
        Assert.False(off.ContainsKey("System.Runtime.TieredPGO"), string.Join(", ", off));
    }

    [InteropFact("dotnet", "clang")]
    public void ConsoleAppReferencingThePackage_PublishesNativeAot_WithoutWarnings_AndRuns()
    {
        var app = _packed.CreateConsumerApp("aot");
        var lab = _packed.Lab;
        var output = Path.Combine(app, "publish");
        var rid = RuntimeInformation.OSArchitecture == Architecture.Arm64 ? "linux-arm64" : "linux-x64";

        var publish = lab.Exec(null, BuildTimeout, "dotnet", "publish", app, "-c", "Release", "-r", rid, "-p:PublishAot=true", "-o", output);

        Assert.True(publish.Success, publish.ToString());
        // The package's gen0 budget went to the native compiler as a runtime option (its response file).
        var ilcArguments = Directory.GetFiles(Path.Combine(app, "obj"), "*.ilc.rsp", SearchOption.AllDirectories);
        Assert.NotEmpty(ilcArguments);
        Assert.Contains("--runtimeopt:GCgen0size=200000", File.ReadAllLines(ilcArguments[0]));
        var warnings = publish.Stdout.Split('\n').Where(l => l.Contains(": warning ", StringComparison.Ordinal)).ToArray();
        Assert.True(warnings.Length == 0, "publish warnings:\n" + string.Join("\n", warnings));
        var executable = Path.Combine(output, "PackConsumer");
        Assert.Equal("\u007fELF"u8.ToArray(), File.ReadAllBytes(executable)[..4]);
        Assert.False(File.Exists(Path.Combine(output, "PackConsumer.dll")), "a JIT build was published");

        var run = lab.Exec(null, TimeSpan.FromMinutes(2), executable);
        Assert.True(run.Success, run.ToString());
        Assert.Contains(PackedSharptun.Marker, run.Stdout, StringComparison.Ordinal);
    }

    [InteropFact("dotnet")]
    public void Sample_BuildsAgainstThePackage()
    {
        var lab = _packed.Lab;
        var feed = _packed.Feed();
        // In the repository (no nuget.config of its own): the package's folder plus the machine's package cache, which
        // the solution's restore filled with everything else the sample needs, as sources; its own build folder.
        var artifacts = Path.Combine(_packed.Root, "sample-artifacts");
        var build = lab.Exec(null, BuildTimeout, "env", "SHARPTUN_ARTIFACTS=" + artifacts,
            "dotnet", "build", Path.Combine(PackedSharptun.RepositoryRoot(), "samples", "FetchThroughTunnel", "FetchThroughTunnel.csproj"),
            "-c", "Release", "-p:SharptunPackageVersion=" + _packed.Version, "--source", feed, "--source", PackedSharptun.PackageCache());
        Assert.True(build.Success, build.ToString());
        var output = Path.Combine(artifacts, "bin", "FetchThroughTunnel", "release");
        Assert.True(File.Exists(Path.Combine(output, "FetchThroughTunnel.dll")), build.ToString());
        Assert.True(File.Exists(Path.Combine(output, "Sharptun.Tunnel.dll")), build.ToString());
        Assert.True(File.Exists(Path.Combine(output, "Sharptun.Device.dll")), build.ToString());
        // The sample's own project reference to src/Sharptun was not used: no artifacts of the library were built.
        Assert.False(Directory.Exists(Path.Combine(artifacts, "bin", "Sharptun")), "the sample built src/Sharptun instead of using the package");
        var usage = lab.Exec(null, TimeSpan.FromMinutes(1), "dotnet", Path.Combine(output, "FetchThroughTunnel.dll"));
        Assert.Equal(2, usage.ExitCode);
        Assert.Contains("usage: FetchThroughTunnel CONFIG-FILE URL", usage.Stderr, StringComparison.Ordinal);
    }

    /// <summary>runtimeconfig.json's configProperties: name to raw JSON value.</summary>
    private static Dictionary<string, string> RuntimeConfigProperties(string path)
    {
        Assert.True(File.Exists(path), path + " is missing");
        using var json = JsonDocument.Parse(File.ReadAllText(path));
        return json.RootElement.GetProperty("runtimeOptions").TryGetProperty("configProperties", out var properties)
            ? properties.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetRawText(), StringComparer.Ordinal)
            : [];
    }

    private static bool IsMarkedTrimmable(ZipArchiveEntry entry)
    {
        using var bytes = new MemoryStream();
        using (var stream = entry.Open())
        {
            stream.CopyTo(bytes);
        }

        bytes.Position = 0;
        using var pe = new PEReader(bytes);
        var reader = pe.GetMetadataReader();
        foreach (var handle in reader.GetAssemblyDefinition().GetCustomAttributes())
        {
            var attribute = reader.GetCustomAttribute(handle);
            if (attribute.Constructor.Kind != HandleKind.MemberReference)
            {
                continue;
            }

            var parent = reader.GetMemberReference((MemberReferenceHandle)attribute.Constructor).Parent;
            if (parent.Kind != HandleKind.TypeReference
                || reader.GetString(reader.GetTypeReference((TypeReferenceHandle)parent).Name) != "AssemblyMetadataAttribute")
            {
                continue;
            }

            // Blob: prolog 0x0001, then two SerString arguments (key, value).
            var blob = reader.GetBlobReader(attribute.Value);
            if (blob.ReadUInt16() == 1 && blob.ReadSerializedString() == "IsTrimmable" && blob.ReadSerializedString() == "True")
            {
                return true;
            }
        }

        return false;
    }
}

/// <summary>
/// Packs src/Sharptun once for <see cref="PackageInteropTests"/> (on first use, so skipped tests cost nothing) with a
/// version of its own, and writes consumer apps that reference it. The version is unique to this run, so the machine's
/// package cache never serves a stale copy; its folder there is removed again on <see cref="Dispose"/>.
/// </summary>
public sealed class PackedSharptun : IDisposable
{
    /// <summary>What the consumer app prints after the bytes came back intact.</summary>
    public const string Marker = "SHARPTUN-PACKAGE-OK";

    private readonly Lazy<NetnsLab> _lab = new(() => new NetnsLab());
    private readonly Lazy<CommandResult> _pack;

    public PackedSharptun()
    {
        Version = $"0.1.0-packtest.{Environment.ProcessId}.{DateTime.UtcNow:yyyyMMddHHmmss}";
        _pack = new Lazy<CommandResult>(() => Lab.Exec(null, TimeSpan.FromMinutes(8), "env",
            "SHARPTUN_ARTIFACTS=" + Path.Combine(Root, "pack-artifacts"),
            "dotnet", "pack", Path.Combine(RepositoryRoot(), "src", "Sharptun", "Sharptun.csproj"), "-c", "Release",
            "-o", Path.Combine(Root, "feed"), "-p:Version=" + Version));
    }

    /// <summary>The package version this run packs.</summary>
    public string Version { get; }

    /// <summary>Runs the tests' commands; owns <see cref="Root"/>.</summary>
    public NetnsLab Lab => _lab.Value;

    /// <summary>The folder everything of this fixture lives in.</summary>
    public string Root => Lab.TempDirectory;

    /// <summary>The packed .nupkg (after <see cref="Feed"/>).</summary>
    public string PackagePath => Path.Combine(Root, "feed", $"Sharptun.{Version}.nupkg");

    /// <summary>Packs (once) and returns the folder holding the package; fails the test with pack's output if it failed.</summary>
    public string Feed()
    {
        var pack = _pack.Value;
        Assert.True(pack.Success && File.Exists(PackagePath), pack.ToString());
        return Path.Combine(Root, "feed");
    }

    /// <summary>
    /// Writes a console app under <see cref="Root"/>/<paramref name="name"/> that references Sharptun at
    /// <see cref="Version"/>: its nuget.config adds the package's folder to the machine's sources (the registry mirror
    /// the repository restores from; it names no other), and its program starts two tunnels over loopback UDP, sends
    /// 256 KiB through <c>ConnectAsync</c> to a <c>ListenTcp</c> listener that echoes them, checks them and prints
    /// <see cref="Marker"/>. Trim and AOT analyzers are on, warnings are errors. <paramref name="extraProperties"/>
    /// (MSBuild property elements) go into the project's PropertyGroup.
    /// </summary>
    public string CreateConsumerApp(string name, string extraProperties = "")
    {
        var feed = Feed();
        var app = Path.Combine(Root, name);
        Directory.CreateDirectory(app);
        File.WriteAllText(Path.Combine(app, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <add key="sharptun-local" value="{feed}" />
              </packageSources>
            </configuration>
            """);
        File.WriteAllText(Path.Combine(app, "PackConsumer.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <Nullable>enable</Nullable>
                <ImplicitUsings>enable</ImplicitUsings>
                <TreatWarningsAsErrors>true</TreatWarningsAsErrors>
                <IsAotCompatible>true</IsAotCompatible>
                <InvariantGlobalization>true</InvariantGlobalization>
                {extraProperties}
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="Sharptun" Version="[{Version}]" />
              </ItemGroup>
            </Project>
            """);
        File.WriteAllText(Path.Combine(app, "Program.cs"), """"
            using System.Security.Cryptography;
            using Sharptun;
            using Sharptun.Protocol;

            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
            var ct = timeout.Token;
            using var alicePrivate = Key.GeneratePrivateKey();
            using var bobPrivate = Key.GeneratePrivateKey();
            await using var bob = await WireGuardTunnel.StartAsync($"""
                [Interface]
                PrivateKey = {bobPrivate}
                Address = 10.99.0.2/32

                [Peer]
                PublicKey = {alicePrivate.DerivePublicKey()}
                AllowedIPs = 10.99.0.1/32
                """, ct);
            await using var alice = await WireGuardTunnel.StartAsync($"""
                [Interface]
                PrivateKey = {alicePrivate}
                Address = 10.99.0.1/32

                [Peer]
                PublicKey = {bobPrivate.DerivePublicKey()}
                Endpoint = 127.0.0.1:{bob.ListenPort}
                AllowedIPs = 10.99.0.2/32
                """, ct);

            const int Size = 256 * 1024;
            await using var listener = bob.ListenTcp(7000);
            var echo = Task.Run(async () =>
            {
                await using var accepted = await listener.AcceptAsync(ct);
                var buffer = new byte[16 * 1024];
                for (var total = 0; total < Size;)
                {
                    var n = await accepted.ReadAsync(buffer, ct);
                    if (n == 0)
                    {
                        throw new InvalidOperationException($"echo: end of stream after {total} bytes");
                    }

                    await accepted.WriteAsync(buffer.AsMemory(0, n), ct);
                    total += n;
                }

                await accepted.FlushAsync(ct);
            }, ct);

            var payload = RandomNumberGenerator.GetBytes(Size);
            await using var stream = await alice.ConnectAsync("10.99.0.2", 7000, ct);
            var send = Task.Run(async () => await stream.WriteAsync(payload, ct), ct);
            var back = new byte[Size];
            await stream.ReadExactlyAsync(back, ct);
            await send;
            await echo;
            if (!back.AsSpan().SequenceEqual(payload))
            {
                Console.Error.WriteLine("the echoed bytes differ");
                return 1;
            }

            var peer = alice.Peers.Single();
            Console.WriteLine($"SHARPTUN-PACKAGE-OK {Size} bytes each way, sha256 {Convert.ToHexString(SHA256.HashData(back))[..16]}, handshake {peer.LastHandshakeAge}");
            return 0;
            """");
        return app;
    }

    /// <summary>The machine's NuGet package cache (NUGET_PACKAGES or ~/.nuget/packages).</summary>
    public static string PackageCache() =>
        Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } configured
            ? configured
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");

    public static string RepositoryRoot([CallerFilePath] string sourceFile = "")
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

    public void Dispose()
    {
        // The consumer apps' restores extracted this run's version into the machine's package cache.
        var cached = Path.Combine(PackageCache(), "sharptun", Version.ToLowerInvariant());
        if (Directory.Exists(cached))
        {
            Directory.Delete(cached, recursive: true);
        }

        if (_lab.IsValueCreated)
        {
            _lab.Value.Dispose();
        }
    }
}
