using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using Sharptun;

// Fetches one URL through a WireGuard tunnel that lives inside this process (no TUN, no root):
//   FetchThroughTunnel wg0.conf http://10.0.0.1:8080/file [--sha256] [--output PATH]
// Prints the HTTP status, the body's length, the time, the throughput and (with --sha256) the body's SHA-256.
// Exit codes: 0 = a 2xx response was read completely, 1 = any other status or a failure, 2 = bad usage.
return await FetchProgram.RunAsync(args, Console.Out, Console.Error).ConfigureAwait(false);

/// <summary>The sample's command line and fetch loop.</summary>
internal static class FetchProgram
{
    private const string Usage = "usage: FetchThroughTunnel CONFIG-FILE URL [--sha256] [--output PATH] [--connect-timeout SECONDS (default 30)]";

    /// <summary>Runs the sample with <paramref name="args"/>; returns the process exit code.</summary>
    public static async Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr)
    {
        string? configPath = null, url = null, outputPath = null;
        var sha256 = false;
        var connectTimeout = TimeSpan.FromSeconds(30);
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--sha256":
                    sha256 = true;
                    break;
                case "--output" when i + 1 < args.Length:
                    outputPath = args[++i];
                    break;
                case "--connect-timeout" when i + 1 < args.Length && double.TryParse(args[i + 1], NumberStyles.Float, CultureInfo.InvariantCulture, out var s) && s > 0:
                    connectTimeout = TimeSpan.FromSeconds(s);
                    i++;
                    break;
                case "-h" or "--help":
                    await stdout.WriteLineAsync(Usage).ConfigureAwait(false);
                    return 0;
                default:
                    if (args[i].StartsWith("--", StringComparison.Ordinal) || (configPath is not null && url is not null))
                    {
                        await stderr.WriteLineAsync($"unexpected argument '{args[i]}'\n{Usage}").ConfigureAwait(false);
                        return 2;
                    }

                    if (configPath is null)
                    {
                        configPath = args[i];
                    }
                    else
                    {
                        url = args[i];
                    }

                    break;
            }
        }

        if (configPath is null || url is null || !Uri.TryCreate(url, UriKind.Absolute, out var uri) || (uri.Scheme != "http" && uri.Scheme != "https"))
        {
            await stderr.WriteLineAsync(Usage).ConfigureAwait(false);
            return 2;
        }

        using var cancel = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            cancel.Cancel();
        };

        try
        {
            var config = await File.ReadAllTextAsync(configPath, cancel.Token).ConfigureAwait(false);
            var started = Stopwatch.GetTimestamp();

            // Until the response headers arrive (handshake, TCP connect, request) the fetch has connectTimeout; the
            // body then takes as long as it takes.
            cancel.CancelAfter(connectTimeout);
            await using var tunnel = await WireGuardTunnel.StartAsync(config, cancel.Token).ConfigureAwait(false);
            using var http = new HttpClient(tunnel.CreateHttpHandler()) { Timeout = Timeout.InfiniteTimeSpan };
            using var response = await http.GetAsync(uri, HttpCompletionOption.ResponseHeadersRead, cancel.Token).ConfigureAwait(false);
            var headersAt = Stopwatch.GetElapsedTime(started);
            cancel.CancelAfter(Timeout.InfiniteTimeSpan);
            await stdout.WriteLineAsync($"status: {(int)response.StatusCode} {response.ReasonPhrase} (headers after {headersAt.TotalMilliseconds:0} ms)").ConfigureAwait(false);

            using var hash = sha256 ? IncrementalHash.CreateHash(HashAlgorithmName.SHA256) : null;
            await using var output = outputPath is null ? null : File.Create(outputPath);
            await using var body = await response.Content.ReadAsStreamAsync(cancel.Token).ConfigureAwait(false);
            var buffer = new byte[256 * 1024];
            long total = 0;
            var bodyStarted = Stopwatch.GetTimestamp();
            int n;
            while ((n = await body.ReadAsync(buffer, cancel.Token).ConfigureAwait(false)) > 0)
            {
                total += n;
                hash?.AppendData(buffer, 0, n);
                if (output is not null)
                {
                    await output.WriteAsync(buffer.AsMemory(0, n), cancel.Token).ConfigureAwait(false);
                }
            }

            var seconds = Math.Max(Stopwatch.GetElapsedTime(bodyStarted).TotalSeconds, 1e-6);
            await stdout.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"bytes: {total}\ntime: {seconds:0.000} s\nthroughput: {total / seconds / 1e6:0.0} MB/s ({total * 8 / seconds / 1e6:0.0} Mbit/s)")).ConfigureAwait(false);
            if (hash is not null)
            {
                await stdout.WriteLineAsync("sha256: " + Convert.ToHexStringLower(hash.GetHashAndReset())).ConfigureAwait(false);
            }

            if (response.Content.Headers.ContentLength is { } expected && expected != total)
            {
                await stderr.WriteLineAsync($"error: the body ended after {total} of {expected} bytes").ConfigureAwait(false);
                return 1;
            }

            return response.IsSuccessStatusCode ? 0 : 1;
        }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested)
        {
            await stderr.WriteLineAsync("error: cancelled (no response within the connect timeout, or Ctrl+C)").ConfigureAwait(false);
            return 1;
        }
        catch (Exception e) when (e is IOException or HttpRequestException or UnauthorizedAccessException or FormatException or ArgumentException or OperationCanceledException or InvalidOperationException)
        {
            await stderr.WriteLineAsync($"error: {e.GetType().Name}: {e.Message}").ConfigureAwait(false);
            return 1;
        }
    }
}
