using System.Runtime.InteropServices;

namespace Sharptun.Interop.Tests;

/// <summary>
/// A test that needs root, network namespaces and the named external tools. On a developer machine that
/// lacks them it is skipped with the reason; with CI=true it always runs (and fails if something is missing),
/// because under CI a skipped interop test is a failure.
/// </summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class InteropFactAttribute : FactAttribute
{
    public InteropFactAttribute(params string[] tools)
    {
        var reason = InteropEnvironment.MissingRequirement(tools);
        if (reason is not null && !InteropEnvironment.IsCi)
        {
            Skip = reason;
        }
    }
}

/// <summary>What an interop test needs from the machine.</summary>
public static class InteropEnvironment
{
    public static bool IsCi => System.Environment.GetEnvironmentVariable("CI") == "true";

    public static bool IsRoot => geteuid() == 0;

    /// <summary>Returns why the machine cannot run the test, or null when it can.</summary>
    public static string? MissingRequirement(IEnumerable<string> tools)
    {
        if (!OperatingSystem.IsLinux())
        {
            return "needs Linux";
        }

        if (!IsRoot)
        {
            return "needs root (network namespaces)";
        }

        foreach (var tool in tools.Append("ip"))
        {
            if (FindTool(tool) is null)
            {
                return $"needs '{tool}' on PATH";
            }
        }

        return null;
    }

    public static string? FindTool(string name)
    {
        var path = System.Environment.GetEnvironmentVariable("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin";
        foreach (var dir in path.Split(':').Concat(["/usr/sbin", "/sbin"]))
        {
            var candidate = Path.Combine(dir, name);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    [DllImport("libc", EntryPoint = "geteuid")]
    private static extern uint geteuid();
}
