#!/usr/bin/env bash
# Whole WireGuard daemons side by side in one run (issue 12 item 7; needs root, iproute2, wireguard-go, wg, iperf3,
# jq, ping, timeout, dotnet). Pairs (A <-> B):
#   wg-wg  wireguard-go <-> wireguard-go (the baseline of the ratios)    st-st  sharptun <-> sharptun
#   st-wg  sharptun (A) <-> wireguard-go (B)                             wg-st  wireguard-go (A) <-> sharptun (B)
# Each pair gets two fresh network namespaces joined by a veth (MTU 1500; tunnel MTU 1420), configured only with wg
# and ip. Per pair, in this order:
#   connect  time from `wg set A ... endpoint B` (A's last configuration step) to A's first ping reply through the
#            tunnel (handshake plus one round trip); always measured;
#   ping     idle latency: A pings B through the tunnel every 0.2 s for 2 s (median);
#   tcp      iperf3 TCP, one stream, SECONDS each way: Mbit/s received and the sender's retransmits; with `ping` also
#            A's pings every 0.2 s during each transfer (median, p99, median minus the idle median); CPU seconds of
#            each daemon (utime+stime, /proc/PID/stat) over both transfers divided by the GB (10^9 bytes) moved;
#   p4       the same with 4 parallel streams (-P 4), Mbit/s summed;
#   udp      iperf3 UDP, UDP_LEN-byte payloads (default 1372: 1400-byte IP packets, which fit the 1420 MTU unfragmented)
#            at UDP_RATE (default 0 = as fast as the sender can), SECONDS each way: packets/s received and loss %;
#   memory   each daemon's Private_Dirty (/proc/PID/smaps_rollup) sampled every 0.2 s from start to end of the pair's
#            tests (peak kept), and VmHWM (/proc/PID/status, the kernel's peak RSS) at the end; always measured.
# Throughput cells carry the ratio to the wg-wg pair's same column when wg-wg is in the run.
# sharptun is `dotnet publish -c Release src/Sharptun.Cli` (built first): the native executable when clang is
# installed (NativeAOT, the default publish), else the JIT build run as `dotnet sharptun.dll`.
# Usage: sudo [PAIRS="wg-wg st-st st-wg wg-st"] [TESTS="ping tcp p4 udp"] [OUT=results.md|results.tsv]
#             [NS_PREFIX=stnb] [SHARPTUN_PUBLISH_ARGS=...] [SHARPTUN_BIN=path/to/sharptun|sharptun.dll]
#             bench/netns-iperf.sh [SECONDS]            (SECONDS per transfer, default 5)
#   PAIRS, TESTS       subsets, for a quick run (e.g. PAIRS="wg-wg st-st" TESTS=tcp bench/netns-iperf.sh 2);
#   OUT                also writes the tables to this file: Markdown, or TSV of the raw figures if it ends in .tsv;
#   NS_PREFIX          names of the namespaces (PREFIX-a, PREFIX-b), links and UAPI sockets (<= 10 characters);
#   SHARPTUN_PUBLISH_ARGS  extra publish arguments (e.g. -p:PublishAot=false to measure the JIT build);
#   SHARPTUN_BIN       an already published sharptun (or sharptun.dll) instead of publishing.
# Every step runs under timeout(1), every iperf3 server is per test and always stopped, and everything started is
# stopped and the namespaces deleted on exit (also on Ctrl-C); a failed or hung test prints "fail" in its cells.
set -euo pipefail
cd "$(dirname "$0")/.."
export SHARPTUN_ARTIFACTS="${SHARPTUN_ARTIFACTS:-/tmp/art-bench-netns}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
export LC_ALL=C.UTF-8   # ${#s} counts characters (for the table's alignment); printf's decimal point is "."

seconds="${1:-5}"
prefix="${NS_PREFIX:-stnb}"
pairs="${PAIRS:-wg-wg st-st st-wg wg-st}"
tests="${TESTS:-ping tcp p4 udp}"
udp_len="${UDP_LEN:-1372}"
udp_rate="${UDP_RATE:-0}"
out_file="${OUT:-}"

die() { echo "netns-iperf: $*" >&2; exit 2; }
[[ $seconds =~ ^[1-9][0-9]*$ ]] || die "SECONDS must be a positive integer, got '$seconds'"
[[ $prefix =~ ^[a-z][a-z0-9]{0,9}$ ]] || die "NS_PREFIX must be 1-10 lowercase letters/digits, got '$prefix'"
[[ $udp_len =~ ^[0-9]+$ ]] || die "UDP_LEN must be a number of bytes, got '$udp_len'"
[[ $udp_rate =~ ^[0-9]+[KMG]?$ ]] || die "UDP_RATE must be an iperf3 rate (0, 500M, ...), got '$udp_rate'"
for p in $pairs; do [[ $p =~ ^(wg-wg|st-st|st-wg|wg-st)$ ]] || die "unknown pair '$p' (wg-wg st-st st-wg wg-st)"; done
for t in $tests; do [[ $t =~ ^(ping|tcp|p4|udp)$ ]] || die "unknown test '$t' (ping tcp p4 udp)"; done
[ -n "${pairs// /}" ] || die "PAIRS is empty"
[ "$(id -u)" = 0 ] || die "needs root (network namespaces)"
for tool in ip wg wireguard-go iperf3 jq ping timeout; do command -v "$tool" >/dev/null || die "$tool not found"; done
want() { [[ " $tests " == *" $1 "* ]]; }

ns_a="$prefix-a" ns_b="$prefix-b"
veth_a="$prefix-va" veth_b="$prefix-vb"
wg_a="$prefix-wa" wg_b="$prefix-wb"
ip_a=10.235.0.1 ip_b=10.235.0.2
port=5299
work="$(mktemp -d /tmp/netns-iperf.XXXXXX)"
live=()   # pids of everything started in the background and not yet stopped

# stop PID...: SIGTERM, up to 5 s to exit, then SIGKILL; reaps and forgets the pids. Signals only pids that are
# still running jobs of this shell, so a pid the kernel has reused for another process is never hit.
running() { [[ " $(jobs -pr | tr '\n' ' ') " == *" $1 "* ]]; }
stop() {
    local pid
    for pid in "$@"; do if running "$pid"; then kill -TERM "$pid" 2>/dev/null || true; fi; done
    for pid in "$@"; do
        for _ in $(seq 1 50); do running "$pid" || break; sleep 0.1; done
        if running "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
        wait "$pid" 2>/dev/null || true
        forget "$pid"
    done
}

forget() { # PID: reaped by `wait`, no longer to be stopped
    local p kept=()
    for p in "${live[@]}"; do [ "$p" = "$1" ] || kept+=("$p"); done
    live=("${kept[@]}")
}

# spawn VAR LOG CMD...: runs CMD in the background with its output in LOG, its pid in VAR (and in `live`).
spawn() {
    local var=$1 log=$2; shift 2
    "$@" >"$log" 2>&1 &
    printf -v "$var" '%s' "$!"
    live+=("$!")
}

remove_namespaces() {
    for ns in "$ns_a" "$ns_b"; do ip netns del "$ns" 2>/dev/null || true; done
    rm -f "/var/run/wireguard/$wg_a.sock" "/var/run/wireguard/$wg_b.sock"
}

cleanup() {
    trap - EXIT INT TERM
    [ ${#live[@]} -eq 0 ] || stop "${live[@]}"
    remove_namespaces
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- sharptun build -------------------------------------------------------------------------------------------
sharptun_cmd=() build="-"
if [[ " $pairs " == *st-* || " $pairs " == *-st\ * ]]; then
    if [ -n "${SHARPTUN_BIN:-}" ]; then bin="$SHARPTUN_BIN"
    else
        echo "publishing src/Sharptun.Cli (Release) ..." >&2
        # shellcheck disable=SC2086 # SHARPTUN_PUBLISH_ARGS is a list of arguments
        timeout 1800 dotnet publish src/Sharptun.Cli -c Release -o "$work/sharptun" ${SHARPTUN_PUBLISH_ARGS:-} \
            >"$work/build.log" 2>&1 || { tail -n 30 "$work/build.log" >&2; die "publish failed"; }
        if [ -f "$work/sharptun/sharptun.dll" ]; then bin="$work/sharptun/sharptun.dll"; else bin="$work/sharptun/sharptun"; fi
    fi
    case "$bin" in
        *.dll) [ -f "$bin" ] || die "no $bin"; sharptun_cmd=(dotnet "$bin"); build="JIT (dotnet sharptun.dll)" ;;
        *) [ -x "$bin" ] || die "no executable $bin"; sharptun_cmd=("$bin"); build="native (NativeAOT)" ;;
    esac
fi

# ---- measurements ---------------------------------------------------------------------------------------------
declare -A R   # R[pair,metric] = value ("fail" when the test failed)

# start_daemon VAR IMPL NS IFNAME: the daemon in the foreground of a background job; waits for its UAPI socket.
start_daemon() {
    local var=$1 impl=$2 ns=$3 ifname=$4 pid
    rm -f "/var/run/wireguard/$ifname.sock"
    if [ "$impl" = st ]; then spawn pid "$work/$ifname.log" ip netns exec "$ns" "${sharptun_cmd[@]}" -f "$ifname"
    else spawn pid "$work/$ifname.log" ip netns exec "$ns" wireguard-go -f "$ifname"; fi
    printf -v "$var" '%s' "$pid"
    for _ in $(seq 1 300); do
        [ -S "/var/run/wireguard/$ifname.sock" ] && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "no UAPI socket for $ifname ($impl); its log:" >&2; tail -n 20 "$work/$ifname.log" >&2; return 1
}

cpu_ticks() { # PID -> utime+stime (all threads) in clock ticks
    local s f
    s=$(<"/proc/$1/stat"); s=${s##*) }   # the fields after "pid (comm) ", from field 3 (state) on
    read -r -a f <<<"$s"
    echo $(( f[11] + f[12] ))
}

kib_field() { # FILE KEY -> the value of "KEY: N kB"
    local k v _
    while read -r k v _; do [ "$k" = "$2:" ] && { echo "$v"; return 0; }; done <"$1"
    return 1
}

sample_private_dirty() { # PID FILE: writes the largest Private_Dirty (KiB) seen so far to FILE until PID exits
    local max=0 v
    while v=$(kib_field "/proc/$1/smaps_rollup" Private_Dirty 2>/dev/null); do
        if (( v > max )); then max=$v; echo "$max" >"$2"; fi
        sleep 0.2
    done
}

# iperf NAME ARGS...: one iperf3 test from A to B's server (a fresh server per test, always stopped); the client's
# JSON in $work/NAME.json. With PING_DURING=1, A pings B during the transfer into $work/NAME.ping.
iperf() {
    local name=$1 srv cli rc=0; shift
    rm -f "$work/$name".*   # iperf3 --logfile appends
    spawn srv "$work/$name.server.log" timeout -k 2 $((seconds + 60)) ip netns exec "$ns_b" iperf3 -s -1 -p "$port"
    for _ in $(seq 1 100); do
        ip netns exec "$ns_b" ss -Htln "sport = :$port" | grep -q . && break
        sleep 0.05
    done
    spawn cli "$work/$name.client.err" timeout -k 2 $((seconds + 30)) \
        ip netns exec "$ns_a" iperf3 -c "$ip_b" -p "$port" -t "$seconds" --connect-timeout 5000 -J --logfile "$work/$name.json" "$@"
    if [ "${PING_DURING:-0}" = 1 ]; then
        sleep 1   # past the connection setup and slow start
        timeout -k 2 $((seconds + 10)) ip netns exec "$ns_a" ping -n -i 0.2 -w $((seconds > 2 ? seconds - 1 : 1)) "$ip_b" \
            >"$work/$name.ping" 2>&1 || true
    fi
    wait "$cli" || rc=$?
    forget "$cli"
    stop "$srv"
    if [ "$rc" -ne 0 ] || ! jq -e '.end.sum_received' "$work/$name.json" >/dev/null 2>&1; then
        echo "iperf3 $name failed (rc $rc): $(jq -r '.error // empty' "$work/$name.json" 2>/dev/null) $(tail -c 300 "$work/$name.client.err")" >&2
        return 1
    fi
}

ping_stats() { # FILE -> "median p99" in ms (nearest rank), or nothing when no reply came back
    grep -o 'time=[0-9.]*' "$1" | cut -d= -f2 | sort -n | awk '
        { v[NR] = $1 }
        END { if (NR == 0) exit; m = int((NR + 1) / 2); p = int(NR * 0.99); if (p < NR * 0.99) p++; printf "%.2f %.2f\n", v[m], v[p] }'
}

# tcp_pair KEY TESTNAME ARGS...: A->B and B->A; sets R[KEY,TEST_ab_mbps/_ab_rtx/_ba_mbps/_ba_rtx] and returns the
# bytes received over both in $moved (0 when one failed).
moved=0
tcp_pair() {
    local key=$1 t=$2 dir args; shift 2
    moved=0
    for dir in ab ba; do
        args=("$@"); [ "$dir" = ba ] && args+=(-R)
        if iperf "$t-$dir" "${args[@]}"; then
            R[$key,${t}_${dir}_mbps]=$(jq -r '.end.sum_received.bits_per_second / 1e6 | round' "$work/$t-$dir.json")
            R[$key,${t}_${dir}_rtx]=$(jq -r '.end.sum_sent.retransmits' "$work/$t-$dir.json")
            [ "$moved" = fail ] || moved=$(( moved + $(jq -r '.end.sum_received.bytes' "$work/$t-$dir.json") ))
        else
            R[$key,${t}_${dir}_mbps]=fail; R[$key,${t}_${dir}_rtx]=fail; moved=fail
        fi
    done
}

run_pair() { # KEY (wg-wg, st-st, st-wg, wg-st)
    local key=$1 ia=${1%-*} ib=${1#*-} pa pb sa sb
    echo "== $key: $(label "$key") ==" >&2
    remove_namespaces
    for ns in "$ns_a" "$ns_b"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
    ip link add "$veth_a" netns "$ns_a" type veth peer name "$veth_b" netns "$ns_b"
    ip -n "$ns_a" addr add 10.234.0.1/24 dev "$veth_a"; ip -n "$ns_a" link set "$veth_a" up
    ip -n "$ns_b" addr add 10.234.0.2/24 dev "$veth_b"; ip -n "$ns_b" link set "$veth_b" up
    pa="" pb=""
    if ! start_daemon pa "$ia" "$ns_a" "$wg_a" || ! start_daemon pb "$ib" "$ns_b" "$wg_b"; then
        R[$key,connect_ms]=fail R[$key,load]=$(cut -d' ' -f1 /proc/loadavg)
        [ -z "$pa" ] || stop "$pa"; [ -z "$pb" ] || stop "$pb"
        remove_namespaces; return 0
    fi
    : >"$work/pd-a"; : >"$work/pd-b"
    spawn sa /dev/null sample_private_dirty "$pa" "$work/pd-a"
    spawn sb /dev/null sample_private_dirty "$pb" "$work/pd-b"

    (umask 077; wg genkey >"$work/a.key"; wg genkey >"$work/b.key")
    local puba pubb t0 t1
    puba=$(wg pubkey <"$work/a.key"); pubb=$(wg pubkey <"$work/b.key")
    # each step || fail: a daemon that does not answer its UAPI socket costs this pair, not the run
    if timeout 10 ip netns exec "$ns_b" wg set "$wg_b" private-key "$work/b.key" listen-port 51902 peer "$puba" allowed-ips "$ip_a/32" &&
        timeout 10 ip netns exec "$ns_a" wg set "$wg_a" private-key "$work/a.key" listen-port 51901 peer "$pubb" allowed-ips "$ip_b/32" &&
        ip -n "$ns_a" addr add "$ip_a/24" dev "$wg_a" && ip -n "$ns_a" link set "$wg_a" mtu 1420 up &&
        ip -n "$ns_b" addr add "$ip_b/24" dev "$wg_b" && ip -n "$ns_b" link set "$wg_b" mtu 1420 up &&
        t0=$(date +%s%N) &&
        timeout 10 ip netns exec "$ns_a" wg set "$wg_a" peer "$pubb" endpoint 10.234.0.2:51902 &&
        timeout 25 ip netns exec "$ns_a" ping -n -c 1 -i 0.01 -w 20 "$ip_b" >/dev/null; then
        t1=$(date +%s%N); R[$key,connect_ms]=$(( (t1 - t0) / 1000000 ))
    else
        R[$key,connect_ms]=fail
        echo "$key: configuration failed or no ping reply through the tunnel in 20 s; daemon logs:" >&2
        tail -n 10 "$work/$wg_a.log" "$work/$wg_b.log" >&2 || true
    fi

    if [ "${R[$key,connect_ms]}" != fail ]; then
        if want ping; then
            timeout 10 ip netns exec "$ns_a" ping -n -i 0.2 -c 10 "$ip_b" >"$work/idle.ping" 2>&1 || true
            local idle=""
            read -r idle _ <<<"$(ping_stats "$work/idle.ping")" || true
            R[$key,ping_idle_med]=${idle:-fail}
        fi
        if want tcp || want ping; then
            local ca0 cb0 ca1 cb1 dir med p99
            ca0=$(cpu_ticks "$pa"); cb0=$(cpu_ticks "$pb")
            PING_DURING=$(want ping && echo 1 || echo 0) tcp_pair "$key" tcp
            ca1=$(cpu_ticks "$pa"); cb1=$(cpu_ticks "$pb")
            if [ "$moved" != fail ] && [ "$moved" -gt 0 ]; then
                local hz; hz=$(getconf CLK_TCK)
                R[$key,cpu_a]=$(awk -v t=$((ca1 - ca0)) -v hz="$hz" -v b="$moved" 'BEGIN { printf "%.2f", t / hz / (b / 1e9) }')
                R[$key,cpu_b]=$(awk -v t=$((cb1 - cb0)) -v hz="$hz" -v b="$moved" 'BEGIN { printf "%.2f", t / hz / (b / 1e9) }')
            else R[$key,cpu_a]=fail; R[$key,cpu_b]=fail; fi
            if want ping; then
                for dir in ab ba; do
                    if [ -f "$work/tcp-$dir.ping" ] && read -r med p99 <<<"$(ping_stats "$work/tcp-$dir.ping")" && [ -n "$med" ]; then
                        R[$key,ping_${dir}_med]=$med; R[$key,ping_${dir}_p99]=$p99
                    else R[$key,ping_${dir}_med]=fail; R[$key,ping_${dir}_p99]=fail; fi
                done
            fi
        fi
        if want p4; then tcp_pair "$key" p4 -P 4; fi
        if want udp; then
            local dir args
            for dir in ab ba; do
                args=(-u -l "$udp_len" -b "$udp_rate"); [ "$dir" = ba ] && args+=(-R)
                if iperf "udp-$dir" "${args[@]}"; then
                    R[$key,udp_${dir}_pps]=$(jq -r '.end.sum_received | (.packets - .lost_packets) / .seconds | round' "$work/udp-$dir.json")
                    R[$key,udp_${dir}_loss]=$(jq -r '.end.sum_received.lost_percent * 10 | round / 10 | tostring | if test("[.]") then . else . + ".0" end' "$work/udp-$dir.json")
                else R[$key,udp_${dir}_pps]=fail; R[$key,udp_${dir}_loss]=fail; fi
            done
        fi
    fi

    local side pid kib
    for side in a b; do
        if [ "$side" = a ]; then pid=$pa; else pid=$pb; fi
        if kib=$(kib_field "/proc/$pid/status" VmHWM 2>/dev/null); then R[$key,hwm_$side]=$(( (kib * 10 + 512) / 1024 )); else R[$key,hwm_$side]=fail; fi
        kib=$(kib_field "/proc/$pid/smaps_rollup" Private_Dirty 2>/dev/null) || kib=0
        local peak; peak=$(cat "$work/pd-$side"); peak=${peak:-0}
        (( kib > peak )) && peak=$kib
        R[$key,pd_$side]=$(( (peak * 10 + 512) / 1024 ))   # MiB x 10
    done
    R[$key,load]=$(cut -d' ' -f1 /proc/loadavg)
    stop "$sa" "$sb" "$pa" "$pb"
    remove_namespaces
}

# ---- tables ---------------------------------------------------------------------------------------------------
label() {
    case $1 in
        wg-wg) echo "wireguard-go ↔ wireguard-go" ;; st-st) echo "sharptun ↔ sharptun" ;;
        st-wg) echo "sharptun (A) ↔ wireguard-go (B)" ;; wg-st) echo "wireguard-go (A) ↔ sharptun (B)" ;;
    esac
}
get() { echo "${R[$1,$2]:-fail}"; }
tenths() { local v; v=$(get "$1" "$2"); [ "$v" = fail ] && { echo fail; return; }; printf '%d.%d' $((v / 10)) $((v % 10)); }
ratio() { # KEY METRIC -> " (1.23×)" against wg-wg, or nothing
    local v base; v=$(get "$1" "$2"); base=${R[wg-wg,$2]:-fail}
    [ "$1" = wg-wg ] || [ "$v" = fail ] || [ "$base" = fail ] || [ "$base" = 0 ] && return 0
    awk -v v="$v" -v b="$base" 'BEGIN { printf " (%.2f×)", v / b }'
}
tput_cell() { # KEY TEST DIR
    local v; v=$(get "$1" "${2}_${3}_mbps"); [ "$v" = fail ] && { echo fail; return; }
    echo "$v$(ratio "$1" "${2}_${3}_mbps") $(get "$1" "${2}_${3}_rtx")"
}
udp_cell() { # KEY DIR
    local v; v=$(get "$1" "udp_${2}_pps"); [ "$v" = fail ] && { echo fail; return; }
    echo "$(awk -v v="$v" 'BEGIN { printf "%.1f", v / 1000 }')$(ratio "$1" "udp_${2}_pps") $(get "$1" "udp_${2}_loss")%"
}
ping_cell() { # KEY DIR
    local med p99 idle; med=$(get "$1" "ping_${2}_med"); p99=$(get "$1" "ping_${2}_p99"); idle=$(get "$1" ping_idle_med)
    [ "$med" = fail ] && { echo fail; return; }
    if [ "$idle" = fail ]; then echo "$med / $p99"
    else awk -v m="$med" -v p="$p99" -v i="$idle" 'BEGIN { printf "%s / %s (%+.1f)", m, p, m - i }'; fi
}

# rows for the two tables, cells separated by tabs
table1=() table2=()
h1="pair"
want tcp && h1+=$'\tTCP A→B Mbit/s (× wg) rtx\tTCP B→A Mbit/s (× wg) rtx'
want p4 && h1+=$'\t4×TCP A→B Mbit/s (× wg) rtx\t4×TCP B→A Mbit/s (× wg) rtx'
want udp && h1+=$'\tUDP A→B kpkt/s (× wg) loss\tUDP B→A kpkt/s (× wg) loss'
h2=$'pair\tconnect ms'
want ping && h2+=$'\tping idle ms\tping under TCP A→B ms\tping under TCP B→A ms'
want tcp && h2+=$'\tCPU s/GB A / B'
h2+=$'\tpeak Private_Dirty MiB A / B\tVmHWM MiB A / B\tload'

build_rows() {
    local key r
    for key in $pairs; do
        r=$(label "$key")
        if want tcp; then r+=$'\t'"$(tput_cell "$key" tcp ab)"$'\t'"$(tput_cell "$key" tcp ba)"; fi
        if want p4; then r+=$'\t'"$(tput_cell "$key" p4 ab)"$'\t'"$(tput_cell "$key" p4 ba)"; fi
        if want udp; then r+=$'\t'"$(udp_cell "$key" ab)"$'\t'"$(udp_cell "$key" ba)"; fi
        table1+=("$r")
        r="$(label "$key")"$'\t'"$(get "$key" connect_ms)"
        if want ping; then r+=$'\t'"$(get "$key" ping_idle_med)"$'\t'"$(ping_cell "$key" ab)"$'\t'"$(ping_cell "$key" ba)"; fi
        if want tcp; then r+=$'\t'"$(get "$key" cpu_a) / $(get "$key" cpu_b)"; fi
        r+=$'\t'"$(tenths "$key" pd_a) / $(tenths "$key" pd_b)"$'\t'"$(tenths "$key" hwm_a) / $(tenths "$key" hwm_b)"$'\t'"$(get "$key" load)"
        table2+=("$r")
    done
}

markdown() { # HEADER ROW...: a Markdown table padded to column widths (numbers right-aligned)
    local -a rows=("$@") width=() cells
    local r i c pad line sep
    for r in "${rows[@]}"; do
        IFS=$'\t' read -r -a cells <<<"$r"
        for i in "${!cells[@]}"; do (( ${#cells[i]} > ${width[i]:-3} )) && width[i]=${#cells[i]}; : "${width[i]:=3}"; done
    done
    for r in "${!rows[@]}"; do
        IFS=$'\t' read -r -a cells <<<"${rows[r]}"
        line="|"
        for i in "${!width[@]}"; do
            c=${cells[i]:-}; printf -v pad '%*s' $(( width[i] - ${#c} )) ''
            if (( i == 0 || r == 0 )); then line+=" $c$pad |"; else line+=" $pad$c |"; fi
        done
        echo "$line"
        if (( r == 0 )); then
            sep="|"
            for i in "${!width[@]}"; do
                printf -v pad '%*s' $(( width[i] - 1 )) ''
                if (( i == 0 )); then sep+=" ${pad// /-}- |"; else sep+=" ${pad// /-}: |"; fi
            done
            echo "$sep"
        fi
    done
}

report() {
    local wgv; wgv=$(dpkg-query -W -f='${Version}' wireguard-go 2>/dev/null || echo '?')
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average at start $load_start, at end $(cut -d' ' -f1-3 /proc/loadavg);"
    echo "wireguard-go $wgv, sharptun $build; iperf3 -t $seconds per transfer; tunnel MTU 1420 on a veth."
    echo
    if want tcp || want p4 || want udp; then markdown "$h1" "${table1[@]}"; echo; fi
    markdown "$h2" "${table2[@]}"
    echo
    want tcp && echo "- TCP: iperf3, one stream; Mbit/s received, (× wg) = ratio to the wireguard-go pair's same column, rtx = the sender's retransmits."
    want p4 && echo "- 4×TCP: the same with -P 4 (Mbit/s summed over the 4 streams)."
    want udp && echo "- UDP: iperf3 -u -l $udp_len -b $udp_rate (${udp_len}-byte payloads, $((udp_len + 28))-byte IP packets); thousands of packets/s received, loss % at the receiver."
    want ping && echo "- ping: A → B every 0.2 s; idle = median of 10 before the transfers; under TCP = median / p99 (nearest rank: of ~5 pings a second, about the maximum) while the one-stream transfer runs (from 1 s in), (+x) = median − idle median, the added latency."
    want tcp && echo "- CPU s/GB: each daemon's utime+stime over the two one-stream TCP transfers, divided by the 10^9 bytes they moved."
    echo "- memory: Private_Dirty (smaps_rollup) sampled every 0.2 s over the pair's tests, peak kept; VmHWM = peak RSS; load = 1-minute load average after the pair."
}

tsv() {
    local cols=(connect_ms ping_idle_med tcp_ab_mbps tcp_ab_rtx tcp_ba_mbps tcp_ba_rtx ping_ab_med ping_ab_p99 ping_ba_med ping_ba_p99
        cpu_a cpu_b p4_ab_mbps p4_ab_rtx p4_ba_mbps p4_ba_rtx udp_ab_pps udp_ab_loss udp_ba_pps udp_ba_loss pd_a pd_b hwm_a hwm_b load)
    local key c line
    line="pair"; for c in "${cols[@]}"; do line+=$'\t'"$c"; done; echo "$line"
    for key in $pairs; do
        line=$key
        for c in "${cols[@]}"; do
            case $c in pd_*|hwm_*) line+=$'\t'"$(tenths "$key" "$c")" ;; *) line+=$'\t'"${R[$key,$c]:--}" ;; esac
        done
        echo "$line"
    done
}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
for key in $pairs; do run_pair "$key"; done
build_rows
report
if [ -n "$out_file" ]; then
    case $out_file in *.tsv) tsv >"$out_file" ;; *) report >"$out_file" ;; esac
    echo "written: $out_file" >&2
fi
