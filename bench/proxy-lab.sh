# Sourced by bench/proxy-curl.sh and bench/ab-proxy.sh: the lab both measure `sharptun proxy` in.
#   stpb-s: Debian's wireguard-go (interface stpb-w, 10.238.0.1, UDP port 51930 on 10.239.0.1) with nginx behind it,
#           serving $out/www/big.bin (MB megabytes), $out/www/each.bin (EACH megabytes) and accepting PUT under /upload/;
#   stpb-c: the client side, joined to stpb-s by a veth (MTU 1500); the tunnel's MTU is 1420.
# proxy_lab_up writes $out/proxy.conf (a [Socks5] section on 127.0.0.1:1080, owned by uid 65534 and mode 0600) and
# the keys $out/s.key and $out/c.key; wireguard-go's and nginx's pids are appended to the caller's pids array
# (wireguard-go's first). Needs: out, mb, each, pids set by the caller; root. proxy_lab_down removes the namespaces and
# the UAPI sockets (stpb-k is the comparison client's in proxy-curl.sh). The helpers below are the scripts' shared
# measures: curl in stpb-c, Mbit/s from bytes a second, and a process's CPU (utime + stime) per GB of MB moved.
timed() { ip netns exec stpb-c curl -sS "$@"; }
mbit() { awk -v v="$1" 'BEGIN { printf "%.0f", v * 8 / 1000000 }'; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
cpu_per_gb() { awk -v t="$1" -v hz="$(getconf CLK_TCK)" -v mb="$mb" 'BEGIN { printf "%.1f", t / hz / (mb / 1000) }'; }

proxy_lab_down() {
    for ns in stpb-s stpb-c; do ip netns del "$ns" 2>/dev/null || true; done
    rm -f /var/run/wireguard/stpb-w.sock /var/run/wireguard/stpb-k.sock
}

proxy_lab_up() {
    for ns in stpb-s stpb-c; do ip netns del "$ns" 2>/dev/null || true; ip netns add "$ns"; ip -n "$ns" link set lo up; done
    ip link add stpb-vs netns stpb-s type veth peer name stpb-vc netns stpb-c
    ip -n stpb-s addr add 10.239.0.1/24 dev stpb-vs && ip -n stpb-s link set stpb-vs up
    ip -n stpb-c addr add 10.239.0.2/24 dev stpb-vc && ip -n stpb-c link set stpb-vc up
    ip netns exec stpb-s wireguard-go -f stpb-w >"$out/wg.log" 2>&1 & pids+=($!)
    for _ in $(seq 1 100); do [ -S /var/run/wireguard/stpb-w.sock ] && break; sleep 0.1; done
    (umask 077; wg genkey >"$out/s.key"; wg genkey >"$out/c.key")
    ip netns exec stpb-s wg set stpb-w private-key "$out/s.key" listen-port 51930 peer "$(wg pubkey <"$out/c.key")" allowed-ips 10.238.0.2/32
    ip -n stpb-s addr add 10.238.0.1/24 dev stpb-w && ip -n stpb-s link set stpb-w up

    mkdir -p "$out/www" "$out/www/upload" "$out/nginx-temp"
    head -c "$((mb * 1000000))" /dev/urandom >"$out/www/big.bin"
    head -c "$((each * 1000000))" /dev/urandom >"$out/www/each.bin"
    cat >"$out/nginx.conf" <<CONF
user root;
worker_processes 1;
daemon off;
pid $out/nginx.pid;
error_log $out/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off; sendfile on; tcp_nopush on; default_type application/octet-stream;
  client_body_temp_path $out/nginx-temp/body; proxy_temp_path $out/nginx-temp/proxy;
  fastcgi_temp_path $out/nginx-temp/fcgi; uwsgi_temp_path $out/nginx-temp/uwsgi; scgi_temp_path $out/nginx-temp/scgi;
  server {
    listen 10.238.0.1:80;
    root $out/www;
    location /upload/ { dav_methods PUT; create_full_put_path on; client_max_body_size 0; }
  }
}
CONF
    ip netns exec stpb-s nginx -c "$out/nginx.conf" >"$out/nginx.log" 2>&1 & pids+=($!)
    for _ in $(seq 1 100); do ip netns exec stpb-s ss -Hltn 'sport = :80' | grep -q ':80' && break; sleep 0.1; done

    cat >"$out/proxy.conf" <<CONF
[Interface]
PrivateKey = $(cat "$out/c.key")
Address = 10.238.0.2/32
MTU = 1420

[Peer]
PublicKey = $(wg pubkey <"$out/s.key")
Endpoint = 10.239.0.1:51930
AllowedIPs = 10.238.0.1/32
PersistentKeepalive = 25

[Socks5]
BindAddress = 127.0.0.1:1080
CONF
    chown 65534:65534 "$out/proxy.conf"; chmod 600 "$out/proxy.conf"
}
