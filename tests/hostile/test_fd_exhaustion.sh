#!/usr/bin/env bash
# Out of descriptors: media-gw runs with RLIMIT_NOFILE 64 and 200 idle
# sockets (plus 40 on the HTTP listener) take every descriptor, so both
# listeners fail to accept.  The daemon must not spin (CPU time bounded,
# generously) nor flood its log (one line per interval with a count), and
# once the attacker lets go, PINGs and /healthz are answered again.
. "$STB_SRC/tests/integration/lib.sh"

n=media-gw
REAL=$(bin_of "$n")
cat >"$T/lowfd.sh" <<SH
#!/bin/sh
ulimit -n 64
exec "$REAL" "\$@"
SH
chmod +x "$T/lowfd.sh"
export STB_BIN_media_gw=$T/lowfd.sh
start_daemon "$n" '"workers": 2, "handshake_timeout_ms": 30000'
P=${PORT[$n]}
H=127.0.0.1:${HPORT[$n]}
cpu() { awk '{ print $14 + $15 }' "/proc/${PID[$n]}/stat"; } # clock ticks
tick=$(getconf CLK_TCK)
fd0=$(ls "/proc/${PID[$n]}/fd" | wc -l)
log "descriptors at start: $fd0"

"$STB_NET_CLIENT" idle "$P" 200 9 2 8 >"$T/tls.out" &
A1=$!
# the HTTP attack starts once the TLS one holds every descriptor, so its
# connections are the ones the HTTP listener fails to accept (started
# together, the HTTP listener could take its 40 before the limit)
for _ in $(seq 1 100); do
	grepq connected "$T/tls.out" && [ "$(ls "/proc/${PID[$n]}/fd" | wc -l)" -ge 60 ] && break
	sleep 0.1
done
"$STB_NET_CLIENT" idle "${HPORT[$n]}" 40 9 20 4 >"$T/http.out" &
A2=$!
for _ in $(seq 1 100); do
	grepq connected "$T/http.out" && break
	sleep 0.1
done
sleep 0.5
l0=$(wc -c <"$T/$n.log")
c0=$(cpu)
sleep 5
l1=$(wc -c <"$T/$n.log")
c1=$(cpu)
log "over 5 s at the limit: log +$((l1 - l0)) bytes, CPU $(((c1 - c0) * 1000 / tick)) ms"
[ $((l1 - l0)) -lt 4000 ] || fail "log grew $((l1 - l0)) bytes in 5 s"
[ $(((c1 - c0) * 1000 / tick)) -lt 1500 ] || fail "CPU $(((c1 - c0) * 1000 / tick)) ms in 5 s"
[ "$(ls "/proc/${PID[$n]}/fd" | wc -l)" -ge 60 ] || fail "the attack did not reach the limit"
grepq "accept on default: Too many open files" "$T/$n.log" || fail "TLS listener's line"
grepq "accept on http: Too many open files" "$T/$n.log" || fail "HTTP listener's line"
pass "at the descriptor limit: no spin, log +$((l1 - l0)) bytes"

kill "$A1" "$A2" 2>/dev/null || true
wait "$A1" "$A2" || true
# the daemon takes and drops what the attacker left queued, then has
# descriptors again; its listeners resume within CONNGUARD_PAUSE_MAX_MS
for _ in $(seq 1 100); do
	[ "$(ls "/proc/${PID[$n]}/fd" | wc -l)" -le $((fd0 + 8)) ] && break
	sleep 0.1
done
sleep 1.5
ok=0
for _ in $(seq 1 8); do
	"$STB_CLIENT" -a "127.0.0.1:$P" --ca "$PKI/ca.crt" -T 3000 ping >/dev/null 2>&1 && ok=$((ok + 1))
done
[ "$ok" = 8 ] || fail "PINGs once descriptors are free: $ok of 8"
curl -fsS -m 3 "http://$H/healthz" | grepq '^ok' || fail "/healthz once descriptors are free"
m=$(curl -fsS -m 3 "http://$H/metrics")
echo "$m" | grepq '^stbcred_listener_accept_errors_total{listener="default"} [1-9]' ||
	fail "TLS accept errors counted"
echo "$m" | grepq '^stbcred_http_accept_errors_total [1-9]' || fail "HTTP accept errors counted"
pass "PINGs $ok of 8 and /healthz after the attack"
stop_daemon "$n"
[ "$RC" = 0 ] || fail "clean stop (rc $RC)"
finish
