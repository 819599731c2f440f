namespace Sharptun.Interop.Tests;

/// <summary>
/// The <see cref="InteropFactAttribute"/> of a parametrised test: needs root, network namespaces and the named tools;
/// skipped with the reason on a machine that lacks them, always run (and failing if something is missing) with CI=true.
/// </summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class InteropTheoryAttribute : TheoryAttribute
{
    public InteropTheoryAttribute(params string[] tools)
    {
        var reason = InteropEnvironment.MissingRequirement(tools);
        if (reason is not null && !InteropEnvironment.IsCi)
        {
            Skip = reason;
        }
    }
}
