#!/usr/bin/env bash
# Coverage-guided fuzzing of one target of fuzz/Sharptun.Fuzz with afl++ and SharpFuzz (docs/architecture.md,
# "Fuzzing"). The targets: wire, session, ip, dns, http, socks5, socks5-udp, wg-config, proxy-config, uapi
# (fuzz/Sharptun.Fuzz/FuzzTargets.cs).
#
#   bash scripts/fuzz.sh TARGET [SECONDS]        (default 60)
#
# Needs afl++ (Debian: apt-get install afl++) and the SharpFuzz instrumentation tool (SharpFuzz.CommandLine 2.3.0,
# installed into the work folder from NuGet on first use). Publishes the harness, instruments Sharptun's assemblies
# (not Sharptun.Crypto, whose loops are all coverage and no branches), runs afl-fuzz from fuzz/corpus/TARGET for
# SECONDS and prints afl's counts. Inputs that crash or hang are copied to fuzz/findings/TARGET/ and the script exits 1:
# replay one with `artifacts/bin/Sharptun.Fuzz/release/Sharptun.Fuzz TARGET FILE` (the exception and stack trace), fix
# the bug, and add the input to fuzz/corpus/TARGET/ so tests/Sharptun.Fuzz.Tests replays it in every test run.
# FUZZ_WORK=DIR keeps the published harness and afl's output there (default: a temporary folder, removed at the end).
# FUZZ_NO_BUILD=1 publishes what `dotnet build Sharptun.slnx -c Release` already built (the test run's end-to-end test).
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
target=${1:?usage: scripts/fuzz.sh TARGET [SECONDS]}
seconds=${2:-60}
[ -d "fuzz/corpus/$target" ] || { echo "fuzz.sh: no target '$target' (fuzz/corpus has: $(ls fuzz/corpus | tr '\n' ' '))" >&2; exit 2; }
command -v afl-fuzz >/dev/null || { echo "fuzz.sh: afl-fuzz is missing (apt-get install afl++)" >&2; exit 2; }

work=${FUZZ_WORK:-}
if [ -z "$work" ]; then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work"

tools="$work/tools"
if [ ! -x "$tools/sharpfuzz" ]; then
    dotnet tool install SharpFuzz.CommandLine --version 2.3.0 --tool-path "$tools" >"$work/tool.log" 2>&1 \
        || { cat "$work/tool.log" >&2; exit 2; }
fi

bin="$work/bin"
rm -rf "$bin"
no_build=()
[ "${FUZZ_NO_BUILD:-0}" = 1 ] && no_build=(--no-build)
dotnet publish fuzz/Sharptun.Fuzz -c Release "${no_build[@]}" -o "$bin" >"$work/publish.log" 2>&1 || { tail -n 30 "$work/publish.log" >&2; exit 2; }
for dll in "$bin"/Sharptun.*.dll; do
    case "$(basename "$dll")" in
        Sharptun.Fuzz.dll | Sharptun.Crypto.dll) ;;
        *) "$tools/sharpfuzz" "$dll" >/dev/null ;;
    esac
done

out="$work/afl-$target"
rm -rf "$out"
# The harness is a .NET program: afl's own instrumentation check does not apply (SharpFuzz reports the coverage);
# this machine's core pattern, CPU governor and other work on its cores (no pinning) are not afl's business either.
export AFL_SKIP_BIN_CHECK=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1 AFL_NO_AFFINITY=1
afl-fuzz -i "fuzz/corpus/$target" -o "$out" -V "$seconds" -t 5000 -m none -- "$bin/Sharptun.Fuzz" "$target" >"$work/afl.log" 2>&1 \
    || { tail -n 40 "$work/afl.log" >&2; exit 2; }

stats="$out/default/fuzzer_stats"
stat() { sed -n "s/^$1 *: *//p" "$stats"; }
crashes=$(find "$out/default/crashes" -type f -name 'id:*' 2>/dev/null | wc -l)
hangs=$(find "$out/default/hangs" -type f -name 'id:*' 2>/dev/null | wc -l)
echo "$target: $(stat execs_done) executions in $(stat run_time) s ($(stat execs_per_sec)/s), $(stat corpus_count) inputs in the queue, edges found $(stat edges_found), crashes $crashes, hangs $hangs"
if [ "$((crashes + hangs))" -gt 0 ]; then
    mkdir -p "fuzz/findings/$target"
    find "$out/default/crashes" "$out/default/hangs" -type f -name 'id:*' -exec cp {} "fuzz/findings/$target/" \;
    echo "inputs copied to fuzz/findings/$target/"
    exit 1
fi
