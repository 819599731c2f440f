#!/usr/bin/env bash
# Side-by-side X25519 throughput on this machine, in one run:
#   Sharptun: BenchmarkDotNet (--job short, in-process toolchain: no per-run project build) X25519Benchmarks.ScalarMult, mean → ops/s (one core)
#   OpenSSL:  openssl speed -seconds 3 ecdhx25519 (one core). By default openssl speed divides by the process's
#             CPU time, BenchmarkDotNet by wall-clock time, so on a busy machine the script also runs it with
#             -elapsed (wall clock), the figure comparable with ours.
#   CPU time: bench/x25519-cputime.cs, ops per second of process CPU time of Sharptun's X25519.ScalarMult (which
#             calls libsodium since issue 12) and of libsodium's crypto_scalarmult_curve25519 called directly, in
#             alternating rounds of one process; comparable with openssl speed's default figure even when other
#             jobs load the machine.
# Usage: bench/x25519.sh   (SHARPTUN_ARTIFACTS selects the build folder; default /tmp/art-bench-x25519)
set -euo pipefail
cd "$(dirname "$0")/.."
export SHARPTUN_ARTIFACTS="${SHARPTUN_ARTIFACTS:-/tmp/art-bench-x25519}"
results="$(mktemp -d)"
trap 'rm -rf "$results"' EXIT

dotnet run -c Release --project bench/Sharptun.Benchmarks -- \
    --filter '*X25519Benchmarks.ScalarMult*' --job short --inProcess --exporters json --artifacts "$results" >"$results/bdn.log" 2>&1 \
    || { tail -n 40 "$results/bdn.log"; exit 1; }
json="$(find "$results" -name '*.json' | head -n 1)"
sharptun_ns="$(python3 -c 'import json,sys; b=json.load(open(sys.argv[1]))["Benchmarks"][0]; print(b["Statistics"]["Mean"])' "$json")"

openssl_ops() { openssl speed "$@" ecdhx25519 2>/dev/null | grep -i 'X25519' | tail -n 1 | awk '{print $NF}'; }
openssl_cpu="$(openssl_ops -seconds 3)"
dotnet run -c Release bench/x25519-cputime.cs >"$results/cputime.out" 2>"$results/cputime.log" \
    || { cat "$results/cputime.log" "$results/cputime.out"; exit 1; }
sharptun_cpu="$(awk '$1 == "sharptun" {print $2}' "$results/cputime.out")"
sodium_cpu="$(awk '$1 == "libsodium" {print $2}' "$results/cputime.out")"
openssl_wall="$(openssl_ops -seconds 3 -elapsed)"

python3 - "$sharptun_ns" "$openssl_cpu" "$openssl_wall" "$sharptun_cpu" "$sodium_cpu" <<'PY'
import sys
ns, cpu, wall, ours_cpu, sodium_cpu = (float(a) for a in sys.argv[1:6])
ours = 1e9 / ns
print(f"{'implementation':<40}{'us/op':>10}{'ops/s':>12}")
print(f"{'Sharptun X25519.ScalarMult (wall clock)':<40}{ns / 1000:>10.1f}{ours:>12.0f}")
print(f"{'Sharptun X25519.ScalarMult (CPU time)':<40}{1e6 / ours_cpu:>10.1f}{ours_cpu:>12.0f}")
print(f"{'libsodium scalarmult direct (CPU time)':<40}{1e6 / sodium_cpu:>10.1f}{sodium_cpu:>12.0f}")
print(f"{'OpenSSL ecdhx25519 (CPU time)':<40}{1e6 / cpu:>10.1f}{cpu:>12.0f}")
print(f"{'OpenSSL ecdhx25519 -elapsed (wall clock)':<40}{1e6 / wall:>10.1f}{wall:>12.0f}")
print(f"ratio Sharptun/OpenSSL: wall clock {ours / wall:.2f}, CPU time {ours_cpu / cpu:.2f}")
PY
# Both figures are single-core; compare them only within one run, and note the machine load.
echo "load average (1/5/15 min): $(cut -d" " -f1-3 /proc/loadavg), cores: $(nproc)"
