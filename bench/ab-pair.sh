#!/usr/bin/env bash
# A/B comparison of two sharptun builds as a daemon pair (sharptun <-> sharptun), alternating so that a changing
# machine load hits both alike (needs root, iproute2, wg, iperf3, jq):
#   two fresh network namespaces joined by a veth (MTU 1500, tunnel MTU 1420), configured only with wg and ip;
#   per round and build: iperf3 one TCP stream for SECONDS each way, Mbit/s as received, and each daemon's CPU seconds
#   (utime + stime from /proc/PID/stat) per GB moved — steadier than throughput on a loaded machine.
# A build is a command that runs the daemon: the native executable, or a script that runs `dotnet sharptun.dll "$@"`.
# Usage: sudo bench/ab-pair.sh BUILD_A BUILD_B [ROUNDS] [SECONDS]     (defaults 2 rounds, 6 s)
# Example (issue 8's before/after, docs/benchmarks.md): publish each commit with
#   dotnet publish -c Release -p:PublishAot=false src/Sharptun.Cli -o DIR
# and pass a two-line wrapper script per DIR (`exec dotnet DIR/sharptun.dll "$@"`).
set -euo pipefail
a=${1:?usage: ab-pair.sh BUILD_A BUILD_B [ROUNDS] [SECONDS]}
b=${2:?usage: ab-pair.sh BUILD_A BUILD_B [ROUNDS] [SECONDS]}
rounds=${3:-2}
seconds=${4:-6}
p=${NS_PREFIX:-stab}
out=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    sleep 0.3
    for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$p-a" 2>/dev/null || true; ip netns del "$p-b" 2>/dev/null || true
    rm -f "/var/run/wireguard/$p-wa.sock" "/var/run/wireguard/$p-wb.sock"
    rm -rf "$out"
}
trap cleanup EXIT

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

pair_up() { # BUILD -> sets pa pb
    local build=$1 ns
    for ns in "$p-a" "$p-b"; do ip netns del "$ns" 2>/dev/null || true; ip netns add "$ns"; ip -n "$ns" link set lo up; done
    ip link add "$p-va" netns "$p-a" type veth peer name "$p-vb" netns "$p-b"
    ip -n "$p-a" addr add 10.236.0.1/24 dev "$p-va"; ip -n "$p-a" link set "$p-va" up
    ip -n "$p-b" addr add 10.236.0.2/24 dev "$p-vb"; ip -n "$p-b" link set "$p-vb" up
    ip netns exec "$p-a" "$build" -f "$p-wa" >"$out/a.log" 2>&1 & pa=$!; pids+=("$pa")
    ip netns exec "$p-b" "$build" -f "$p-wb" >"$out/b.log" 2>&1 & pb=$!; pids+=("$pb")
    for _ in $(seq 1 300); do [ -S "/var/run/wireguard/$p-wa.sock" ] && [ -S "/var/run/wireguard/$p-wb.sock" ] && break; sleep 0.1; done
    (umask 077; wg genkey >"$out/a.key"; wg genkey >"$out/b.key")
    local puba pubb
    puba=$(wg pubkey <"$out/a.key"); pubb=$(wg pubkey <"$out/b.key")
    ip netns exec "$p-b" wg set "$p-wb" private-key "$out/b.key" listen-port 51912 peer "$puba" allowed-ips 10.237.0.1/32
    ip netns exec "$p-a" wg set "$p-wa" private-key "$out/a.key" listen-port 51911 peer "$pubb" allowed-ips 10.237.0.2/32 endpoint 10.236.0.2:51912
    ip -n "$p-a" addr add 10.237.0.1/24 dev "$p-wa"; ip -n "$p-a" link set "$p-wa" up
    ip -n "$p-b" addr add 10.237.0.2/24 dev "$p-wb"; ip -n "$p-b" link set "$p-wb" up
    timeout 20 ip netns exec "$p-a" ping -c 1 -w 15 10.237.0.2 >/dev/null
}

pair_down() {
    kill "$pa" "$pb" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pa" 2>/dev/null || kill -0 "$pb" 2>/dev/null || break; sleep 0.1; done
    ip netns del "$p-a"; ip netns del "$p-b"
}

transfer() { # [-R] -> "Mbit/s sender-s/GB receiver-s/GB"
    timeout 10 ip netns exec "$p-b" iperf3 -s -1 -p 5298 >/dev/null 2>&1 &
    local server=$!
    for _ in $(seq 1 100); do ip netns exec "$p-b" ss -Htln 'sport = :5298' | grep -q 5298 && break; sleep 0.05; done
    local a0 b0 a1 b1 result
    a0=$(ticks "$pa"); b0=$(ticks "$pb")
    result=$(timeout $((seconds + 20)) ip netns exec "$p-a" iperf3 -c 10.237.0.2 -p 5298 -t "$seconds" -J "$@" \
        | jq -r '"\(.end.sum_received.bits_per_second / 1e6 | round) \(.end.sum_received.bytes)"')
    a1=$(ticks "$pa"); b1=$(ticks "$pb")
    wait "$server" 2>/dev/null || true
    # shellcheck disable=SC2086 # two fields
    set -- $result
    local sender=$((a1 - a0)) receiver=$((b1 - b0))
    if [ "${R:-}" = 1 ]; then sender=$((b1 - b0)); receiver=$((a1 - a0)); fi
    awk -v m="$1" -v by="$2" -v s="$sender" -v r="$receiver" 'BEGIN { gb = by / 1e9; printf "%s %.2f %.2f", m, s / 100 / gb, r / 100 / gb }'
}

printf '%-6s %-5s %10s %14s %14s %10s %14s %14s  %s\n' build round "A->B Mb/s" "sender s/GB" "receiver s/GB" "B->A Mb/s" "sender s/GB" "receiver s/GB" load
for round in $(seq 1 "$rounds"); do
    for which in A B; do
        build=$a; [ "$which" = B ] && build=$b
        pair_up "$build"
        read -r up us ur <<<"$(R=0 transfer)"
        read -r down ds dr <<<"$(R=1 transfer -R)"
        printf '%-6s %-5s %10s %14s %14s %10s %14s %14s  %s\n' "$which" "$round" "$up" "$us" "$ur" "$down" "$ds" "$dr" "$(cut -d' ' -f1 /proc/loadavg)"
        pair_down
    done
done
echo "A = $a"
echo "B = $b"
echo "iperf3 -t $seconds, one TCP stream; CPU = the daemon's utime+stime per GB received; $(nproc) cores; $(date -u '+%Y-%m-%d %H:%M UTC')"
