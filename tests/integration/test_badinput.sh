#!/usr/bin/env bash
# Broken and hostile clients get a clear ERROR frame or a closed connection,
# never a crash or a hang; the daemon keeps serving.
. "$(dirname "$0")/lib.sh"

pki_init
start_daemon media-gw '"handshake_timeout_ms": 1000, "frame_timeout_ms": 1000,
  "idle_timeout_ms": 2000, "max_frame": 4096'
"$STB_BADINPUT" 127.0.0.1 "${PORT[media-gw]}" "$PKI/ca.crt" "$PKI/admin.crt" "$PKI/admin.key" \
	"$PKI/cert-proxyd.crt" "$PKI/cert-proxyd.key" || fail "badinput cases"
kill -0 "${PID[media-gw]}" || fail "daemon alive"
ctl media-gw audit verify | grepq "intact" || fail "store intact"
stop_daemon media-gw TERM
[ "$RC" = 0 ] || fail "clean exit after the abuse (got $RC)"

# max_connections: the listener turns away what it cannot hold.
start_daemon appvetd '"max_connections": 2'
hold() { # keep a TLS connection open until killed
	sleep 8 | openssl s_client -quiet -connect "127.0.0.1:${PORT[appvetd]}" \
		-CAfile "$PKI/ca.crt" >/dev/null 2>&1 &
	echo $!
}
h1=$(hold)
h2=$(hold)
sleep 1
if "$STB_CLIENT" -a "127.0.0.1:${PORT[appvetd]}" --ca "$PKI/ca.crt" -T 3000 ping >/dev/null 2>&1; then
	fail "a third connection must be refused at max_connections 2"
fi
pkill -P "$h1" sleep 2>/dev/null || true
pkill -P "$h2" sleep 2>/dev/null || true
kill "$h1" "$h2" 2>/dev/null || true
ok=0
for _ in $(seq 1 50); do
	"$STB_CLIENT" -a "127.0.0.1:${PORT[appvetd]}" --ca "$PKI/ca.crt" ping >/dev/null 2>&1 && { ok=1; break; }
	sleep 0.1
done
[ $ok = 1 ] || fail "connections are accepted again once others close"
ctl appvetd -j stats | grepq '"connections"' || fail "stats after the limit"
http_get "127.0.0.1:${HPORT[appvetd]}" /metrics | grepq '^stbcred_connections_rejected_total [1-9]' ||
	fail "rejected connections are counted"
stop_daemon appvetd TERM
finish
