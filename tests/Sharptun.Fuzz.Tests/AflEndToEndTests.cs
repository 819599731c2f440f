using System.Diagnostics;
using System.Text.RegularExpressions;

namespace Sharptun.Fuzz.Tests;

/// <summary>
/// scripts/fuzz.sh end to end: afl++ drives the SharpFuzz-instrumented harness for a few seconds and finds coverage,
/// so the fuzzing setup cannot rot unnoticed between the sessions that fuzz for longer.
/// </summary>
public sealed partial class AflEndToEndTests
{
    [AflFact]
    public void FuzzScript_RunsAflOnTheInstrumentedHarness_AndFindsNoCrash()
    {
        var work = Directory.CreateTempSubdirectory("sharptun-afl-");
        try
        {
            var root = Repository.Root;
            var start = new ProcessStartInfo("bash", ["scripts/fuzz.sh", "socks5-udp", "10"])
            {
                WorkingDirectory = root,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            start.Environment["FUZZ_WORK"] = work.FullName;
            start.Environment["FUZZ_NO_BUILD"] = "1";
            using var process = Process.Start(start)!;
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            Assert.True(process.WaitForExit(TimeSpan.FromMinutes(5)), "fuzz.sh did not finish in 5 minutes");
            var output = stdout.Result + stderr.Result;
            Assert.True(process.ExitCode == 0, $"fuzz.sh exited {process.ExitCode}:\n{output}");

            // "socks5-udp: N executions in S s (R/s), Q inputs in the queue, edges found E, crashes 0, hangs 0"
            var line = Summary().Match(output);
            Assert.True(line.Success, output);
            Assert.True(long.Parse(line.Groups["execs"].Value) > 1000, output);
            Assert.True(int.Parse(line.Groups["edges"].Value) > 10, output); // the instrumentation reports coverage
        }
        finally
        {
            work.Delete(recursive: true);
        }
    }

    [GeneratedRegex(@"socks5-udp: (?<execs>\d+) executions in .*edges found (?<edges>\d+), crashes 0, hangs 0")]
    private static partial Regex Summary();
}

/// <summary>
/// Needs afl-fuzz (Debian's afl++) on PATH: skipped without it on a developer machine; with CI=true it always runs, and
/// fails if afl++ is missing, as the interop tests do.
/// </summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class AflFactAttribute : FactAttribute
{
    public AflFactAttribute()
    {
        var path = Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin";
        var found = OperatingSystem.IsLinux() && path.Split(':').Any(d => File.Exists(Path.Combine(d, "afl-fuzz")));
        if (!found && Environment.GetEnvironmentVariable("CI") != "true")
        {
            Skip = "needs afl-fuzz (apt-get install afl++)";
        }
    }
}
