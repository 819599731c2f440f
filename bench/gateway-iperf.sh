#!/usr/bin/env bash
# Issue 11's benchmark of `sharptun gateway`, side by side in one run (needs root, iproute2, wireguard-go, wg, nft,
# iperf3, dotnet). Three namespaces:
#   C: the client, Debian's wireguard-go on a kernel TUN (the same key and config for both servers);
#   G: the server, in turn
#     (a) sharptun gateway as uid 65534 (no TUN, no root): the netstack terminates C's flows, host sockets carry them on;
#     (b) wireguard-go on a kernel TUN with IP forwarding and nftables masquerade: the usual root exit;
#   S: iperf3 -s, reachable from G only.
# For each server: iperf3 C -> S (upload) and S -> C (-R, download), one TCP stream for SECONDS; then PARALLEL streams
# at once (-P), sampling the server process's private dirty memory (Private_Dirty of /proc/PID/smaps_rollup) every
# 100 ms: idle before, peak during. Mbit/s = 10^6 bits a second, iperf3's receiver side.
# Usage: sudo bench/gateway-iperf.sh [SECONDS] [PARALLEL]      (defaults 10 100)
#   WG_SOCKET_BUFFER=current (or a byte count) gives wireguard-go the UDP socket buffers it sets itself since
#   0.0.20230223; Debian's older build has the kernel's 208 KiB (bench/wg-buffers.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export SHARPTUN_ARTIFACTS="${SHARPTUN_ARTIFACTS:-/tmp/art-bench-gateway}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
secs="${1:-10}"; par="${2:-100}"
out="$(mktemp -d /tmp/sharptun-gateway-bench.XXXXXX)"
chmod 755 "$out"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    sleep 0.5
    for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    # iperf3 -D daemonizes, so its pid comes from its pid file (it outlived the namespace before)
    [ -s "$out/iperf3.pid" ] && kill "$(cat "$out/iperf3.pid")" 2>/dev/null || true
    for ns in stgb-c stgb-g stgb-s; do ip netns del "$ns" 2>/dev/null || true; done
    rm -f /var/run/wireguard/stgb-k.sock /var/run/wireguard/stgb-w.sock
    rm -rf "$out"
    wg_buffers_restore
}
trap cleanup EXIT
. bench/wg-buffers.sh
wg_buffers_apply

# NativeAOT when clang is installed (the CLI's default publish), else the JIT build; PUBLISH_AOT=false forces JIT.
dotnet publish src/Sharptun.Cli -c Release ${PUBLISH_AOT:+-p:PublishAot=$PUBLISH_AOT} -o "$out/cli" >"$out/build.log" 2>&1 || { tail -n 30 "$out/build.log"; exit 1; }
if [ -x "$out/cli/sharptun" ]; then sharptun=("$out/cli/sharptun"); build=NativeAOT; else sharptun=(dotnet "$out/cli/sharptun.dll"); build=JIT; fi
chmod -R a+rX "$out/cli"

for ns in stgb-c stgb-g stgb-s; do ip netns del "$ns" 2>/dev/null || true; ip netns add "$ns"; ip -n "$ns" link set lo up; done
ip link add stgb-cg netns stgb-c type veth peer name stgb-gc netns stgb-g
ip link add stgb-gs netns stgb-g type veth peer name stgb-sg netns stgb-s
ip -n stgb-c addr add 10.237.0.2/24 dev stgb-cg && ip -n stgb-c link set stgb-cg up
ip -n stgb-g addr add 10.237.0.1/24 dev stgb-gc && ip -n stgb-g link set stgb-gc up
ip -n stgb-g addr add 10.236.0.1/24 dev stgb-gs && ip -n stgb-g link set stgb-gs up
ip -n stgb-s addr add 10.236.0.2/24 dev stgb-sg && ip -n stgb-s link set stgb-sg up
ip -n stgb-s route add default via 10.236.0.1
ip netns exec stgb-s iperf3 -s -D -I "$out/iperf3.pid" >/dev/null 2>&1

(umask 077; wg genkey >"$out/g.key"; wg genkey >"$out/c.key")
gpub="$(wg pubkey <"$out/g.key")"; cpub="$(wg pubkey <"$out/c.key")"

# the client: wireguard-go on a kernel TUN in C, S's subnet routed into it
ip netns exec stgb-c wireguard-go -f stgb-k >"$out/wgc.log" 2>&1 & pids+=($!)
for _ in $(seq 1 100); do [ -S /var/run/wireguard/stgb-k.sock ] && break; sleep 0.1; done
ip netns exec stgb-c wg set stgb-k private-key "$out/c.key"
ip -n stgb-c addr add 10.235.0.2/32 dev stgb-k && ip -n stgb-c link set stgb-k mtu 1420 up
ip -n stgb-c route add 10.236.0.0/24 dev stgb-k
client_peer() {   # a fresh session with whichever server runs now
    ip netns exec stgb-c wg set stgb-k peer "$gpub" remove
    ip netns exec stgb-c wg set stgb-k peer "$gpub" endpoint 10.237.0.1:51940 allowed-ips 0.0.0.0/0
    for _ in $(seq 1 100); do ip netns exec stgb-c ping -c1 -W1 10.236.0.2 >/dev/null 2>&1 && return; sleep 0.2; done
    echo "no connectivity through the server" >&2; exit 1
}

private_dirty_kib() { awk '/^Private_Dirty:/ { print $2 }' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
iperf_mbits() {
    ip netns exec stgb-c iperf3 -c 10.236.0.2 -J "$@" >"$out/iperf.json" || { cat "$out/iperf.json"; exit 1; }
    python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"]/1e6))' "$out/iperf.json"
}
# "idle peak Mbit/s" of PID while PARALLEL streams run
parallel_run() {
    local pid=$1 before peak=0 v
    before=$(private_dirty_kib "$pid")
    ip netns exec stgb-c iperf3 -c 10.236.0.2 -P "$par" -t 5 -J >"$out/par.json" 2>&1 & local ip=$!
    while kill -0 "$ip" 2>/dev/null; do v=$(private_dirty_kib "$pid"); [ "$v" -gt "$peak" ] && peak=$v; sleep 0.1; done
    wait "$ip" || { cat "$out/par.json"; exit 1; }
    echo "$(mib "$before") $(mib "$peak") $(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"]/1e6))' "$out/par.json")"
}

# (a) sharptun gateway as uid 65534
cat >"$out/gateway.conf" <<CONF
[Interface]
PrivateKey = $(cat "$out/g.key")
ListenPort = 51940
Address = 10.235.0.1/32

[Peer]
PublicKey = $cpub
AllowedIPs = 10.235.0.2/32

[Gateway]
Allow = 10.236.0.0/24
CONF
chown 65534:65534 "$out/gateway.conf"; chmod 600 "$out/gateway.conf"
ip netns exec stgb-g setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all -- \
    env HOME="$out" DOTNET_CLI_HOME="$out" "${sharptun[@]}" gateway -c "$out/gateway.conf" >"$out/gateway.log" 2>&1 & gw_setpriv=$!; pids+=($gw_setpriv)
for _ in $(seq 1 300); do grep -q "gateway ready" "$out/gateway.log" && break; sleep 0.1; done
gw_pid=$(pgrep -f "$out/cli/sharptun.* gateway" | head -n1)
client_peer
iperf_mbits -t 2 >/dev/null   # warm-up (JIT)
sg_up=$(iperf_mbits -t "$secs")
sg_down=$(iperf_mbits -t "$secs" -R)
read -r sg_idle sg_peak sg_par <<<"$(parallel_run "$gw_pid")"
kill "$gw_setpriv" 2>/dev/null || true; kill "$gw_pid" 2>/dev/null || true; sleep 2
tail -n 2 "$out/gateway.log"

# (b) wireguard-go + kernel TUN + nftables masquerade in G, same key and port
ip netns exec stgb-g wireguard-go -f stgb-w >"$out/wgs.log" 2>&1 & wgs=$!; pids+=($wgs)
for _ in $(seq 1 100); do [ -S /var/run/wireguard/stgb-w.sock ] && break; sleep 0.1; done
ip netns exec stgb-g wg set stgb-w private-key "$out/g.key" listen-port 51940 peer "$cpub" allowed-ips 10.235.0.2/32
ip -n stgb-g addr add 10.235.0.1/24 dev stgb-w && ip -n stgb-g link set stgb-w mtu 1420 up
ip netns exec stgb-g sysctl -q -w net.ipv4.ip_forward=1
ip netns exec stgb-g nft -f - <<NFT
table ip stgb {
    chain post {
        type nat hook postrouting priority 100;
        oifname "stgb-gs" ip saddr 10.235.0.0/24 masquerade
    }
}
NFT
client_peer
iperf_mbits -t 2 >/dev/null
wg_up=$(iperf_mbits -t "$secs")
wg_down=$(iperf_mbits -t "$secs" -R)
read -r wg_idle wg_peak wg_par <<<"$(parallel_run "$wgs")"

printf '%-44s %24s %24s\n' "" "sharptun gateway (65534)" "wireguard-go+TUN+NAT"
printf '%-44s %24s %24s\n' "upload C->S, 1 stream, Mbit/s" "$sg_up" "$wg_up"
printf '%-44s %24s %24s\n' "download S->C (-R), 1 stream, Mbit/s" "$sg_down" "$wg_down"
printf '%-44s %24s %24s\n' "upload, $par streams (-P), Mbit/s" "$sg_par" "$wg_par"
printf '%-44s %24s %24s\n' "server private dirty MiB: idle" "$sg_idle" "$wg_idle"
printf '%-44s %24s %24s\n' "server private dirty MiB: peak, $par streams" "$sg_peak" "$wg_peak"
echo "(iperf3 -t $secs; server process: sharptun gateway ($build) / wireguard-go; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
wg_buffers_label
