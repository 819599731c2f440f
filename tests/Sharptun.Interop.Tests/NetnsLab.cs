using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using System.Text;

namespace Sharptun.Interop.Tests;

/// <summary>The outcome of a command run by <see cref="NetnsLab.Exec(string?, string, string[])"/>.</summary>
/// <param name="ExitCode">The process exit code; -1 when it timed out and was killed.</param>
/// <param name="Stdout">Everything the command wrote to standard output.</param>
/// <param name="Stderr">Everything the command wrote to standard error.</param>
/// <param name="CommandLine">The command as run (for messages).</param>
/// <param name="TimedOut">True when the command exceeded its timeout and was killed.</param>
public sealed record CommandResult(int ExitCode, string Stdout, string Stderr, string CommandLine, bool TimedOut)
{
    /// <summary>True when the command exited with status 0.</summary>
    public bool Success => ExitCode == 0 && !TimedOut;

    public override string ToString() =>
        $"`{CommandLine}` -> {(TimedOut ? "timed out" : "exit " + ExitCode)}\nstdout:\n{Stdout}\nstderr:\n{Stderr}";
}

/// <summary>Both ends of a veth pair created by <see cref="NetnsLab.AddVeth"/>.</summary>
/// <param name="NamespaceA">Namespace of end A (null = the root namespace).</param>
/// <param name="InterfaceA">Interface name of end A.</param>
/// <param name="NamespaceB">Namespace of end B (null = the root namespace).</param>
/// <param name="InterfaceB">Interface name of end B.</param>
public sealed record VethPair(string? NamespaceA, string InterfaceA, string? NamespaceB, string InterfaceB);

/// <summary>
/// An IPv4 /24 and an IPv6 /64 picked for one lab, distinct across labs of this process and (by the pid) very
/// likely distinct from labs of other test processes on the same machine. Only ever assigned inside namespaces
/// the lab creates (or to the root end of one of its veths), so traffic stays on this machine.
/// </summary>
public sealed record LabSubnet(string IPv4Prefix, string IPv6Prefix)
{
    /// <summary>"10.a.b.<paramref name="host"/>".</summary>
    public string V4(int host) => $"{IPv4Prefix}.{host}";

    /// <summary>"10.a.b.<paramref name="host"/>/24".</summary>
    public string V4Cidr(int host) => $"{IPv4Prefix}.{host}/24";

    /// <summary>"fd53:...::<paramref name="host"/>" (host written in hex).</summary>
    public string V6(int host) => $"{IPv6Prefix}::{host:x}";

    /// <summary>"fd53:...::<paramref name="host"/>/64".</summary>
    public string V6Cidr(int host) => $"{IPv6Prefix}::{host:x}/64";
}

/// <summary>
/// A disposable network-namespace test lab for interop tests (needs root and iproute2).
/// Creates uniquely named namespaces (loopback up), veth pairs, addresses and routes; runs commands and
/// background processes inside namespaces; runs managed code inside a namespace (so sockets and TUN
/// devices can be created there in-process). <see cref="Dispose"/> kills every started process and deletes
/// every namespace and root-namespace interface the lab made, even after a failed test.
/// </summary>
/// <remarks>
/// Names: namespaces are <c>st-PID-N</c>, interfaces <c>stPIDxN[ab]</c> (at most 15 characters, as Linux
/// requires). N is a process-wide counter, so several labs in one test run never collide; the pid keeps
/// concurrently running test processes apart. Namespaces left behind by a crashed run (whose pid is gone)
/// are removed when a new lab starts. Not thread-safe except for <see cref="Exec(string?, string, string[])"/>
/// and <see cref="RunInNamespace{T}"/>, which may be called from several threads.
/// </remarks>
public sealed partial class NetnsLab : IDisposable
{
    /// <summary>Default timeout of <see cref="Exec(string?, string, string[])"/>.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);

    private const string Prefix = "st";
    private static int s_counter;
    private static int s_staleSwept;

    private readonly List<string> _namespaces = [];
    private readonly List<string> _rootInterfaces = [];
    private readonly List<string> _interfaceNames = [];
    private readonly List<Process> _processes = [];
    private readonly ConcurrentDictionary<Process, StringBuilder> _outputs = new();
    private readonly int _pid = Environment.ProcessId;
    private bool _disposed;
    private string? _tempDirectory;

    /// <summary>Creates an empty lab. Throws when not running as root on Linux.</summary>
    public NetnsLab()
    {
        if (!OperatingSystem.IsLinux() || !InteropEnvironment.IsRoot)
        {
            throw new InvalidOperationException("NetnsLab needs Linux and root");
        }

        if (Interlocked.Exchange(ref s_staleSwept, 1) == 0)
        {
            SweepStale();
        }
    }

    /// <summary>
    /// A directory private to this lab (for configuration files, sockets, logs), created on first use under
    /// /tmp and deleted on <see cref="Dispose"/>.
    /// </summary>
    public string TempDirectory
    {
        get
        {
            if (_tempDirectory is null)
            {
                _tempDirectory = Path.Combine(Path.GetTempPath(), $"sharptun-lab-{_pid}-{Next()}");
                Directory.CreateDirectory(_tempDirectory);
            }

            return _tempDirectory;
        }
    }

    /// <summary>Namespaces created so far (in creation order).</summary>
    public IReadOnlyList<string> Namespaces => _namespaces;

    /// <summary>Processes started so far with <see cref="Start"/>.</summary>
    public IReadOnlyList<Process> Processes => _processes;

    /// <summary>Creates a namespace with loopback up and returns its name (<c>st-PID-N</c>).</summary>
    public string AddNamespace()
    {
        ThrowIfDisposed();
        var name = $"{Prefix}-{_pid}-{Next()}";
        Check(null, "ip", "netns", "add", name);
        _namespaces.Add(name);
        Check(name, "ip", "link", "set", "lo", "up");
        return name;
    }

    /// <summary>
    /// Creates a veth pair with end A in <paramref name="nsA"/> and end B in <paramref name="nsB"/>
    /// (null = root namespace), both up. Returns the interface names.
    /// </summary>
    public VethPair AddVeth(string? nsA, string? nsB)
    {
        ThrowIfDisposed();
        var n = Next();
        var a = InterfaceName(n, 'a');
        var b = InterfaceName(n, 'b');
        Check(null, "ip", "link", "add", a, "type", "veth", "peer", "name", b);

        // Deleting either end deletes the pair, and deleting a namespace deletes the ends inside it: track both
        // names until they move, and Dispose deletes whichever is still in the root namespace.
        _rootInterfaces.Add(a);
        _rootInterfaces.Add(b);
        if (nsA is not null)
        {
            Check(null, "ip", "link", "set", a, "netns", nsA);
        }

        if (nsB is not null)
        {
            Check(null, "ip", "link", "set", b, "netns", nsB);
        }

        SetUp(nsA, a);
        SetUp(nsB, b);
        return new VethPair(nsA, a, nsB, b);
    }

    /// <summary>
    /// A unique interface name for this lab (for TUN devices, wireguard-go etc.): <c>stPIDxN</c> + suffix. A UAPI socket
    /// left at /var/run/wireguard/NAME.sock by a killed daemon is removed on <see cref="Dispose"/>.
    /// </summary>
    public string NewInterfaceName(char suffix = 't')
    {
        var name = InterfaceName(Next(), suffix);
        _interfaceNames.Add(name);
        return name;
    }

    /// <summary>Picks a fresh IPv4 /24 and IPv6 /64 for this lab (see <see cref="LabSubnet"/>).</summary>
    public LabSubnet NewSubnet()
    {
        var n = Next();
        var a = 64 + (_pid % 160);           // 10.64.0.0 - 10.223.255.255
        var b = n % 256;
        return new LabSubnet($"10.{a}.{b}", $"fd53:{_pid & 0xffff:x}:{(_pid >> 16) & 0xffff:x}:{n & 0xffff:x}");
    }

    /// <summary>Adds an address (IPv4 or IPv6 CIDR, e.g. "10.1.2.3/24" or "fd00::1/64"). IPv6 skips DAD.</summary>
    public void AddAddress(string? ns, string ifname, string cidr)
    {
        if (cidr.Contains(':'))
        {
            Check(ns, "ip", "-6", "addr", "add", cidr, "dev", ifname, "nodad");
        }
        else
        {
            Check(ns, "ip", "addr", "add", cidr, "dev", ifname);
        }
    }

    /// <summary>Brings an interface up.</summary>
    public void SetUp(string? ns, string ifname) => Check(ns, "ip", "link", "set", ifname, "up");

    /// <summary>Sets an interface's MTU.</summary>
    public void SetMtu(string? ns, string ifname, int mtu) =>
        Check(ns, "ip", "link", "set", ifname, "mtu", mtu.ToString(System.Globalization.CultureInfo.InvariantCulture));

    /// <summary>Adds a route: <c>ip route add PREFIX dev IFNAME</c> (or <c>via</c> when <paramref name="via"/> is given).</summary>
    public void AddRoute(string? ns, string prefix, string ifname, string? via = null)
    {
        var family = prefix.Contains(':') ? "-6" : "-4";
        if (via is null)
        {
            Check(ns, "ip", family, "route", "add", prefix, "dev", ifname);
        }
        else
        {
            Check(ns, "ip", family, "route", "add", prefix, "via", via, "dev", ifname);
        }
    }

    /// <summary>Sets a sysctl inside a namespace, e.g. ("net.ipv4.ip_forward", "1").</summary>
    public void Sysctl(string? ns, string key, string value) => Check(ns, "sysctl", "-q", "-w", $"{key}={value}");

    /// <summary>
    /// Runs <paramref name="file"/> with <paramref name="args"/> inside <paramref name="ns"/> (null = root namespace)
    /// with <see cref="DefaultTimeout"/>, and returns its exit code and output. Never throws for a failing command.
    /// </summary>
    public CommandResult Exec(string? ns, string file, params string[] args) => Exec(ns, DefaultTimeout, file, args);

    /// <summary>As <see cref="Exec(string?, string, string[])"/> with an explicit timeout; a command that exceeds it is killed.</summary>
    public CommandResult Exec(string? ns, TimeSpan timeout, string file, params string[] args) => Exec(ns, timeout, file, args, null);

    private CommandResult Exec(string? ns, TimeSpan timeout, string file, string[] args, string? stdin)
    {
        var psi = CreateStartInfo(ns, file, args);
        var commandLine = CommandLine(ns, file, args);
        using var process = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {commandLine}");
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        var readers = new[] { Drain(process.StandardOutput, stdout), Drain(process.StandardError, stderr) };
        if (stdin is not null)
        {
            try
            {
                process.StandardInput.Write(stdin);
            }
            catch (IOException)
            {
                // the command exited without reading its input; its exit code tells
            }
        }

        try
        {
            process.StandardInput.Close();
        }
        catch (IOException)
        {
            // same
        }

        var timedOut = false;
        if (!process.WaitForExit(timeout))
        {
            timedOut = true;
            try
            {
                process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
                // exited meanwhile
            }

            process.WaitForExit(5000);
        }

        // A command that daemonizes may leave a child holding the pipes open: do not wait for their end forever.
        Task.WaitAll(readers, TimeSpan.FromSeconds(5));
        string Snapshot(StringBuilder sb)
        {
            lock (sb)
            {
                return sb.ToString();
            }
        }

        return new CommandResult(timedOut ? -1 : process.ExitCode, Snapshot(stdout), Snapshot(stderr), commandLine, timedOut);
    }

    private static async Task Drain(StreamReader reader, StringBuilder into)
    {
        var buffer = new char[4096];
        int n;
        while ((n = await reader.ReadAsync(buffer.AsMemory()).ConfigureAwait(false)) > 0)
        {
            lock (into)
            {
                into.Append(buffer, 0, n);
            }
        }
    }

    /// <summary>As <see cref="Exec(string?, string, string[])"/>, writing <paramref name="stdin"/> to the command's standard input (e.g. keys for <c>wg pubkey</c>).</summary>
    public CommandResult ExecWithInput(string? ns, string stdin, string file, params string[] args) =>
        Exec(ns, DefaultTimeout, file, args, stdin);

    /// <summary>As <see cref="Exec(string?, string, string[])"/>, but throws (with stdout and stderr in the message) unless the command succeeds.</summary>
    public CommandResult Check(string? ns, string file, params string[] args) => Check(ns, DefaultTimeout, file, args);

    /// <summary>As <see cref="Exec(string?, TimeSpan, string, string[])"/>, but throws unless the command succeeds.</summary>
    public CommandResult Check(string? ns, TimeSpan timeout, string file, params string[] args)
    {
        var result = Exec(ns, timeout, file, args);
        if (!result.Success)
        {
            throw new InvalidOperationException($"command failed: {result}");
        }

        return result;
    }

    /// <summary>
    /// Starts a background process inside <paramref name="ns"/> (null = root namespace). Its stdout and stderr are
    /// captured (see <see cref="OutputOf"/>, <see cref="DescribeProcesses"/>); it is killed on <see cref="Dispose"/>.
    /// </summary>
    public Process Start(string? ns, string file, params string[] args) => Start(ns, null, file, args);

    /// <summary>As <see cref="Start(string?, string, string[])"/> with extra environment variables.</summary>
    public Process Start(string? ns, IReadOnlyDictionary<string, string>? environment, string file, params string[] args)
    {
        ThrowIfDisposed();
        var psi = CreateStartInfo(ns, file, args);
        if (environment is not null)
        {
            foreach (var (key, value) in environment)
            {
                psi.Environment[key] = value;
            }
        }

        var output = new StringBuilder();
        var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        process.OutputDataReceived += (_, e) => Append(output, "out", e.Data);
        process.ErrorDataReceived += (_, e) => Append(output, "err", e.Data);
        if (!process.Start())
        {
            throw new InvalidOperationException($"could not start {CommandLine(ns, file, args)}");
        }

        process.StandardInput.Close();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _processes.Add(process);
        _outputs[process] = output;
        lock (output)
        {
            output.Append("$ ").AppendLine(CommandLine(ns, file, args));
        }

        return process;
    }

    /// <summary>Everything a process started with <see cref="Start(string?, string, string[])"/> has printed so far (stdout and stderr interleaved, prefixed).</summary>
    public string OutputOf(Process process)
    {
        if (!_outputs.TryGetValue(process, out var output))
        {
            return "";
        }

        lock (output)
        {
            return output.ToString();
        }
    }

    /// <summary>The state and output of every started process: put it in failure messages.</summary>
    public string DescribeProcesses()
    {
        var sb = new StringBuilder();
        foreach (var p in _processes)
        {
            string state;
            try
            {
                state = p.HasExited ? $"exited {p.ExitCode}" : $"running (pid {p.Id})";
            }
            catch (InvalidOperationException)
            {
                state = "unknown";
            }

            sb.Append("--- process ").Append(state).AppendLine(" ---").Append(OutputOf(p));
        }

        return sb.ToString();
    }

    /// <summary>
    /// Stops one started process: SIGTERM first (so daemons such as wireguard-go remove their interface and UAPI
    /// socket), SIGKILL to its whole tree if it has not exited within <paramref name="grace"/> (default 2 s); then waits for it.
    /// </summary>
    public void Kill(Process process, TimeSpan? grace = null)
    {
        try
        {
            if (!process.HasExited)
            {
                const int SIGTERM = 15;
                _ = kill(process.Id, SIGTERM);
                if (!process.WaitForExit(grace ?? TimeSpan.FromSeconds(2)))
                {
                    process.Kill(entireProcessTree: true);
                }
            }

            if (process.WaitForExit(5000))
            {
                // WaitForExit(timeout) can return before the async stdout/stderr readers have delivered the last
                // lines (the process's final counters); the parameterless overload waits for both streams' EOF.
                // Bounded, because a grandchild that inherited the pipes would hold them open.
                _ = Task.Run(process.WaitForExit).Wait(TimeSpan.FromSeconds(5));
            }
        }
        catch (InvalidOperationException)
        {
            // never started or already reaped
        }
    }

    /// <summary>
    /// Polls <paramref name="condition"/> (every 20 ms, backing off to 200 ms) until it is true; throws
    /// <see cref="TimeoutException"/> naming <paramref name="what"/> when <paramref name="timeout"/> passes first.
    /// </summary>
    public static void WaitUntil(Func<bool> condition, TimeSpan timeout, string what)
    {
        var sw = Stopwatch.StartNew();
        var delay = 20;
        while (!condition())
        {
            if (sw.Elapsed > timeout)
            {
                throw new TimeoutException($"timed out after {timeout.TotalSeconds:0.#} s waiting for {what}");
            }

            Thread.Sleep(delay);
            delay = Math.Min(delay * 2, 200);
        }
    }

    /// <summary>As <see cref="WaitUntil(Func{bool}, TimeSpan, string)"/>, adding <see cref="DescribeProcesses"/> to the exception.</summary>
    public void WaitFor(Func<bool> condition, TimeSpan timeout, string what)
    {
        try
        {
            WaitUntil(condition, timeout, what);
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException(e.Message + "\n" + DescribeProcesses(), e);
        }
    }

    /// <summary>
    /// Runs <paramref name="callback"/> on a dedicated thread that has joined the network namespace <paramref name="ns"/>
    /// (setns(2) with CLONE_NEWNET), and returns its result; exceptions are rethrown on the caller's thread. Sockets and
    /// TUN devices created in the callback stay in that namespace after it returns, so in-process code can be placed
    /// in a namespace this way. Do not start threads or await inside the callback: only its own thread is in the namespace.
    /// </summary>
    public static T RunInNamespace<T>(string ns, Func<T> callback)
    {
        T result = default!;
        ExceptionDispatchInfo? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                result = InNamespaceOnThisThread(ns, callback);
            }
            catch (Exception e)
            {
                error = ExceptionDispatchInfo.Capture(e);
            }
        })
        {
            IsBackground = true,
            Name = "netns " + ns,
        };
        thread.Start();
        thread.Join();
        error?.Throw();
        return result;
    }

    /// <summary>As <see cref="RunInNamespace{T}(string, Func{T})"/> without a result.</summary>
    public static void RunInNamespace(string ns, Action callback) =>
        RunInNamespace(ns, () =>
        {
            callback();
            return 0;
        });

    /// <summary>Kills every started process, then deletes every namespace and root-namespace interface the lab made. Never throws.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        foreach (var p in _processes)
        {
            Kill(p);
        }

        foreach (var p in _processes)
        {
            p.Dispose();
        }

        foreach (var ifname in _rootInterfaces)
        {
            // Most are gone already (moved into a namespace); ignore failures.
            if (File.Exists($"/sys/class/net/{ifname}/ifindex"))
            {
                Exec(null, TimeSpan.FromSeconds(10), "ip", "link", "del", ifname);
            }
        }

        foreach (var ns in _namespaces)
        {
            DeleteNamespace(ns);
        }

        foreach (var name in _interfaceNames)
        {
            var socket = $"/var/run/wireguard/{name}.sock";
            if (File.Exists(socket))
            {
                try
                {
                    File.Delete(socket);
                }
                catch (IOException)
                {
                    // best effort
                }
            }
        }

        if (_tempDirectory is not null)
        {
            try
            {
                Directory.Delete(_tempDirectory, recursive: true);
            }
            catch (IOException)
            {
                // best effort
            }
            catch (UnauthorizedAccessException)
            {
                // best effort
            }
        }
    }

    private static T InNamespaceOnThisThread<T>(string ns, Func<T> callback)
    {
        const int O_RDONLY = 0, O_CLOEXEC = 0x80000, CLONE_NEWNET = 0x40000000;
        var original = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
        if (original < 0)
        {
            throw new InvalidOperationException($"open(/proc/thread-self/ns/net) failed: errno {Marshal.GetLastPInvokeError()}");
        }

        try
        {
            var target = open("/var/run/netns/" + ns, O_RDONLY | O_CLOEXEC);
            if (target < 0)
            {
                throw new InvalidOperationException($"open(/var/run/netns/{ns}) failed: errno {Marshal.GetLastPInvokeError()}");
            }

            try
            {
                if (setns(target, CLONE_NEWNET) != 0)
                {
                    throw new InvalidOperationException($"setns({ns}) failed: errno {Marshal.GetLastPInvokeError()}");
                }
            }
            finally
            {
                close(target);
            }

            try
            {
                return callback();
            }
            finally
            {
                if (setns(original, CLONE_NEWNET) != 0)
                {
                    // The thread is about to end anyway; the runtime never reuses a dedicated thread.
                    Environment.FailFast($"setns back to the original namespace failed: errno {Marshal.GetLastPInvokeError()}");
                }
            }
        }
        finally
        {
            close(original);
        }
    }

    private void DeleteNamespace(string ns)
    {
        // Processes entered with `ip netns exec` that we did not start could keep it busy: kill whatever is inside.
        var pids = Exec(null, TimeSpan.FromSeconds(10), "ip", "netns", "pids", ns);
        if (pids.Success)
        {
            foreach (var line in pids.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                if (int.TryParse(line, out var pid) && pid != _pid)
                {
                    try
                    {
                        using var p = Process.GetProcessById(pid);
                        p.Kill(entireProcessTree: true);
                        p.WaitForExit(2000);
                    }
                    catch (Exception e) when (e is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception)
                    {
                        // gone already
                    }
                }
            }
        }

        Exec(null, TimeSpan.FromSeconds(10), "ip", "netns", "del", ns);
    }

    private void SweepStale()
    {
        var list = Exec(null, TimeSpan.FromSeconds(10), "ip", "netns", "list");
        if (!list.Success)
        {
            return;
        }

        foreach (var line in list.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var name = line.Split(' ')[0];
            var parts = name.Split('-');
            if (parts.Length == 3 && parts[0] == Prefix && int.TryParse(parts[1], out var pid) && pid != _pid
                && !Directory.Exists($"/proc/{pid}"))
            {
                DeleteNamespace(name);
            }
        }
    }

    private string InterfaceName(int n, char suffix)
    {
        var name = $"{Prefix}{_pid}x{n}{suffix}";
        if (name.Length > 15)
        {
            // pid and counter too long together: keep the low digits of the pid, still unique within this run.
            name = $"{Prefix}{_pid % 100000}x{n % 100000}{suffix}";
        }

        return name;
    }

    private static int Next() => Interlocked.Increment(ref s_counter);

    private static ProcessStartInfo CreateStartInfo(string? ns, string file, string[] args)
    {
        var psi = new ProcessStartInfo
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        if (ns is null)
        {
            psi.FileName = file;
        }
        else
        {
            psi.FileName = "ip";
            psi.ArgumentList.Add("netns");
            psi.ArgumentList.Add("exec");
            psi.ArgumentList.Add(ns);
            psi.ArgumentList.Add(file);
        }

        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        return psi;
    }

    private static string CommandLine(string? ns, string file, string[] args) =>
        (ns is null ? "" : $"ip netns exec {ns} ") + file + (args.Length == 0 ? "" : " " + string.Join(' ', args));

    private static void Append(StringBuilder output, string stream, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (output)
        {
            output.Append(stream).Append(": ").AppendLine(line);
        }
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int close(int fd);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setns(int fd, int nstype);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int signal);
}
