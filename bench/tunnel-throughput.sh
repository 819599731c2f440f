#!/usr/bin/env bash
# Issue 9's benchmark of the in-process tunnel (WireGuardTunnel.ConnectAsync streams), side by side, in one run
# (needs root, iproute2, wireguard-go, wg, dotnet):
#   (a) in-process:    two WireGuardTunnels in one process over loopback UDP, MB client->server then server->client;
#   (b) wireguard-go:  one WireGuardTunnel (namespace C) against Debian's wireguard-go (namespace S, joined by a veth,
#                      MTU 1500, tunnel MTU 1420) with a kernel TCP server behind it: download MB from it, upload MB to it;
#   (c) memory:        the process's private dirty memory (Private_Dirty of /proc/self/smaps_rollup, peak sampled every
#                      50 ms) with N (default 100) concurrent transfers: against wireguard-go (the process holds one
#                      tunnel) and in-process (the process holds both tunnels).
# The workload is bench/Sharptun.TunnelBench (Release, published first). MB/s = 10^6 bytes a second.
# Usage: sudo [AOT=1] bench/tunnel-throughput.sh [MB] [CONNECTIONS] [MB-PER-CONNECTION]     (defaults 500 100 4)
#   WG_SOCKET_BUFFER=current (or a byte count) gives wireguard-go the UDP socket buffers it sets itself since
#   0.0.20230223; Debian's older build has the kernel's 208 KiB (bench/wg-buffers.sh).
#   NETNS_PREFIX=NAME names the namespaces and links NAME-s, NAME-c, ... (default sttb), so two runs never collide.
#   AOT=1 publishes the workload with NativeAOT (needs clang) instead of running it on the JIT.
#   The workload gets the memory settings the Sharptun package gives apps (src/Sharptun/buildTransitive/Sharptun.targets:
#   2 MiB gen0 budget, TieredPGO off); SHARPTUN_RUNTIME_DEFAULTS=1 builds it with the runtime's defaults instead.
set -euo pipefail
cd "$(dirname "$0")/.."
export SHARPTUN_ARTIFACTS="${SHARPTUN_ARTIFACTS:-/tmp/art-bench-tunnel}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
mb="${1:-500}"; conns="${2:-100}"; each="${3:-4}"
p="${NETNS_PREFIX:-sttb}" # namespace, link and interface names start with it
out="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    sleep 0.5
    for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    for ns in $p-s $p-c; do ip netns del "$ns" 2>/dev/null || true; done
    rm -f /var/run/wireguard/$p-w.sock
    rm -rf "$out"
    wg_buffers_restore
}
trap cleanup EXIT
. bench/wg-buffers.sh
wg_buffers_apply

defaults=()
[ "${SHARPTUN_RUNTIME_DEFAULTS:-0}" = 1 ] && defaults=(-p:SharptunMemoryDefaults=false)
if [ "${AOT:-0}" = 1 ]; then
    # a NativeAOT app (the shipped binary's GC gen0 budget and instruction set), as an application published native gets
    dotnet publish bench/Sharptun.TunnelBench -c Release -p:PublishAot=true "${defaults[@]}" -o "$out/bench" >"$out/build.log" 2>&1 || { tail -n 30 "$out/build.log"; exit 1; }
    bench=("$out/bench/Sharptun.TunnelBench")
else
    dotnet publish bench/Sharptun.TunnelBench -c Release "${defaults[@]}" -o "$out/bench" >"$out/build.log" 2>&1 || { tail -n 30 "$out/build.log"; exit 1; }
    bench=(dotnet "$out/bench/Sharptun.TunnelBench.dll")
fi
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $2"; }

# (a) and the in-process half of (c)
inproc=$("${bench[@]}" inproc "$mb")
inproc_mem=$("${bench[@]}" inproc-memory "$conns" "$each")

# (b) and the wireguard-go half of (c): S = wireguard-go + kernel TCP server on 10.236.0.1, C = the tunnel (10.236.0.2)
for ns in $p-s $p-c; do ip netns del "$ns" 2>/dev/null || true; ip netns add "$ns"; ip -n "$ns" link set lo up; done
ip link add $p-vs netns $p-s type veth peer name $p-vc netns $p-c
ip -n $p-s addr add 10.237.0.1/24 dev $p-vs && ip -n $p-s link set $p-vs up
ip -n $p-c addr add 10.237.0.2/24 dev $p-vc && ip -n $p-c link set $p-vc up
ip netns exec $p-s wireguard-go -f $p-w >"$out/wg.log" 2>&1 & pids+=($!)
for _ in $(seq 1 100); do [ -S /var/run/wireguard/$p-w.sock ] && break; sleep 0.1; done
(umask 077; wg genkey >"$out/s.key"; wg genkey >"$out/c.key")
ip netns exec $p-s wg set $p-w private-key "$out/s.key" listen-port 51910 peer "$(wg pubkey <"$out/c.key")" allowed-ips 10.236.0.2/32
ip -n $p-s addr add 10.236.0.1/24 dev $p-w && ip -n $p-s link set $p-w up
cat >"$out/c.conf" <<CONF
[Interface]
PrivateKey = $(cat "$out/c.key")
Address = 10.236.0.2/32
MTU = 1420

[Peer]
PublicKey = $(wg pubkey <"$out/s.key")
Endpoint = 10.237.0.1:51910
AllowedIPs = 10.236.0.1/32
CONF
ip netns exec $p-s "${bench[@]}" server 5001 >"$out/server.log" 2>&1 & pids+=($!)
for _ in $(seq 1 300); do ip netns exec $p-s ss -Htln 'sport = :5001' | grep -q 5001 && break; sleep 0.1; done
wggo=$(ip netns exec $p-c "${bench[@]}" client "$out/c.conf" 10.236.0.1 5001 "$mb")
wggo_mem=$(ip netns exec $p-c "${bench[@]}" client-memory "$out/c.conf" 10.236.0.1 5001 "$conns" "$each")

mbit() { awk -v v="$1" 'BEGIN { printf "%.0f", v * 8 }'; }
printf '%-34s %16s %16s\n' "" "in-process pair" "vs wireguard-go"
printf '%-34s %16s %16s\n' "client->server MB/s (Mbit/s)" "$(field up_MBps "$inproc") ($(mbit "$(field up_MBps "$inproc")"))" "$(field up_MBps "$wggo") ($(mbit "$(field up_MBps "$wggo")"))"
printf '%-34s %16s %16s\n' "server->client MB/s (Mbit/s)" "$(field down_MBps "$inproc") ($(mbit "$(field down_MBps "$inproc")"))" "$(field down_MBps "$wggo") ($(mbit "$(field down_MBps "$wggo")"))"
printf '%-34s %16s %16s\n' "$conns x $each MB: completed" "$(field completed "$inproc_mem")" "$(field completed "$wggo_mem")"
printf '%-34s %16s %16s\n' "$conns x $each MB: MB/s total" "$(field MBps "$inproc_mem")" "$(field MBps "$wggo_mem")"
printf '%-34s %16s %16s\n' "private dirty MiB: idle tunnel(s)" "$(field private_dirty_before_MiB "$inproc_mem")" "$(field private_dirty_before_MiB "$wggo_mem")"
printf '%-34s %16s %16s\n' "private dirty MiB: peak" "$(field private_dirty_peak_MiB "$inproc_mem")" "$(field private_dirty_peak_MiB "$wggo_mem")"
printf '%-34s %16s %16s\n' "private dirty MiB: after" "$(field private_dirty_after_MiB "$inproc_mem")" "$(field private_dirty_after_MiB "$wggo_mem")"
printf '%-34s %16s %16s\n' "GC committed MiB: peak" "$(field gc_committed_peak_MiB "$inproc_mem")" "$(field gc_committed_peak_MiB "$wggo_mem")"
printf '%-34s %16s %16s\n' "gen0 collections" "$(field gen0_collections "$inproc_mem")" "$(field gen0_collections "$wggo_mem")"
echo "($mb MB each way; memory: $conns concurrent connections of $each MB; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
wg_buffers_label
