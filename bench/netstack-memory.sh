#!/usr/bin/env bash
# NetStack memory: peak private dirty memory (Private_Dirty, smaps_rollup) and peak RSS (VmHWM) of one process running
# two NetStacks joined in memory, with N concurrent TCP connections each moving B bytes each way (byte-checked).
# Builds bench/Sharptun.NetStackMemory in Release and runs it under a few configurations, then prints a table.
# No root needed. Usage: bench/netstack-memory.sh [connections, default 100] [bytes per direction, default 4M]
# SACK is on (the stack's default) in every run.
set -euo pipefail
cd "$(dirname "$0")/.."
export SHARPTUN_ARTIFACTS="${SHARPTUN_ARTIFACTS:-/tmp/art-bench-netmem}"
n="${1:-100}"
bytes="${2:-4M}"
dotnet build bench/Sharptun.NetStackMemory -c Release -v q -nologo >/dev/null
exe="$SHARPTUN_ARTIFACTS/bin/Sharptun.NetStackMemory/release/Sharptun.NetStackMemory"

# The configuration the interop test asserts (NetStackMemoryTests): 8 KiB buffers, 64-slot outbound queue,
# a 32 MiB GC heap hard limit and no tiered PGO.
tuned_env=(DOTNET_GCHeapHardLimit=0x2000000 DOTNET_TieredPGO=0)

printf '%-58s %10s %10s %10s %10s %9s\n' "configuration (N=$n, $bytes each way per connection)" "priv dirty" "peak RSS" "GC heap" "baseline" "Mbit/s"
row() {
    local label="$1"; shift
    local out rc=0
    out="$(env "$@" 2>&1)" || rc=$?
    local res; res="$(grep '^RESULT' <<<"$out" || true)"
    if [ -z "$res" ] || [ "$rc" -ne 0 ]; then
        printf '%-58s FAILED (exit %s)\n' "$label" "$rc"; tail -n 5 <<<"$out"; return
    fi
    get() { sed -E "s/.* $1=([^ ]+).*/\1/" <<<"$res"; }
    mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
    printf '%-58s %10s %10s %10s %10s %9s\n' "$label" "$(mib "$(get peak_private_dirty_kb)")" "$(mib "$(get peak_rss_kb)")" \
        "$(mib $(( $(get gc_heap_peak_bytes) / 1024 )))" "$(mib "$(get baseline_private_dirty_kb)")" "$(get mbit)"
}
common=(--connections "$n" --bytes "$bytes")
row "old defaults (256K+256K buffers, queue 512), default GC" "$exe" "${common[@]}" --buffers 256K --outbound-queue 512
row "stack defaults (32K+32K buffers, queue 64), default GC" "$exe" "${common[@]}"
row "stack defaults (32K+32K, queue 64), TieredPGO=0" DOTNET_TieredPGO=0 "$exe" "${common[@]}"
row "16K+16K buffers, queue 64, default GC" "$exe" "${common[@]}" --buffers 16K --outbound-queue 64
row "8K+8K buffers, queue 64, default GC" "$exe" "${common[@]}" --buffers 8K --outbound-queue 64
row "8K+8K buffers, queue 64, TieredPGO=0" DOTNET_TieredPGO=0 "$exe" "${common[@]}" --buffers 8K --outbound-queue 64
row "8K+8K, queue 64, TieredPGO=0, GCHeapHardLimit=32M (test)" "${tuned_env[@]}" "$exe" "${common[@]}" --buffers 8K --outbound-queue 64
echo
echo "Full output of the tested configuration:"
env "${tuned_env[@]}" "$exe" "${common[@]}" --buffers 8K --outbound-queue 64 --budget-mb 20
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg), cores: $(nproc), $(dotnet --list-runtimes | grep -m1 NETCore.App)"
