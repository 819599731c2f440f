namespace Sharptun.Proxy.Config;

/// <summary>One <c>Key = Value</c> line of a config section, with environment references already expanded.</summary>
/// <param name="Key">The key as written (keys compare case-insensitively).</param>
/// <param name="Value">The value, trimmed; a <c>$NAME</c> value is the environment variable's value.</param>
/// <param name="Line">The 1-based line number.</param>
public readonly record struct ConfigEntry(string Key, string Value, int Line);
