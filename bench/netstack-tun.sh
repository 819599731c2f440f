#!/usr/bin/env bash
# Side-by-side TCP throughput of the userspace stack on a Linux TUN, in one run (needs root, iproute2, iperf3):
#   Sharptun NetStack: the stack (Release build) on a TUN in a network namespace, one TCP connection to a kernel
#                      socket, stack -> kernel and kernel -> stack (NetStackKernelTests.Tcp_StackConnects..., SHA-256 checked)
#   kernel-to-kernel:  iperf3 over a veth pair between two namespaces, both directions (-R), same MTU (1420)
# Usage: sudo bench/netstack-tun.sh [MiB per direction, default 1024]
set -euo pipefail
cd "$(dirname "$0")/.."
export SHARPTUN_ARTIFACTS="${SHARPTUN_ARTIFACTS:-/tmp/art-bench-netstack}"
mib="${1:-1024}"
log="$(mktemp)"
trap 'rm -f "$log"; ip netns del stbench-a 2>/dev/null || true; ip netns del stbench-b 2>/dev/null || true' EXIT

SHARPTUN_NETSTACK_TRANSFER_MIB="$mib" dotnet test tests/Sharptun.Interop.Tests -c Release \
    --filter 'FullyQualifiedName~NetStackKernelTests.Tcp_StackConnectsToKernelListener' \
    --logger 'console;verbosity=detailed' >"$log" 2>&1 || { tail -n 60 "$log"; exit 1; }
line="$(grep -m1 'stack->kernel' "$log")"
up="$(sed -E 's/.*stack->kernel [0-9]+ MB in [0-9.]+ s = ([0-9]+) Mbit\/s.*/\1/' <<<"$line")"
down="$(sed -E 's/.*kernel->stack [0-9]+ MB in [0-9.]+ s = ([0-9]+) Mbit\/s.*/\1/' <<<"$line")"

ip netns add stbench-a
ip netns add stbench-b
ip link add stbench-va netns stbench-a type veth peer name stbench-vb netns stbench-b
for ns in a b; do
    ip -n "stbench-$ns" link set lo up
    ip -n "stbench-$ns" link set "stbench-v$ns" mtu 1420 up
done
ip -n stbench-a addr add 10.233.0.1/24 dev stbench-va
ip -n stbench-b addr add 10.233.0.2/24 dev stbench-vb
ip netns exec stbench-b iperf3 -s -1 -D >/dev/null 2>&1
sleep 0.5
iperf_mbits() { ip netns exec stbench-a iperf3 -c 10.233.0.2 -t 5 -J "$@" | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e6))'; }
k_up="$(iperf_mbits)"
ip netns exec stbench-b iperf3 -s -1 -D >/dev/null 2>&1
sleep 0.5
k_down="$(iperf_mbits -R)"

printf '%-46s%16s\n' "path (one TCP stream, MTU 1420)" "Mbit/s"
printf '%-46s%16s\n' "Sharptun NetStack -> kernel (TUN)" "$up"
printf '%-46s%16s\n' "kernel -> Sharptun NetStack (TUN)" "$down"
printf '%-46s%16s\n' "kernel -> kernel (veth, iperf3)" "$k_up"
printf '%-46s%16s\n' "kernel -> kernel reverse (veth, iperf3 -R)" "$k_down"
echo "transfer: ${mib} MiB per direction for the stack; iperf3 -t 5. load average: $(cut -d' ' -f1-3 /proc/loadavg), cores: $(nproc)"
