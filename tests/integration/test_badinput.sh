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
ctl media-gw audit verify | grep -q "intact" || fail "store intact"
stop_daemon media-gw TERM
[ "$RC" = 0 ] || fail "clean exit after the abuse (got $RC)"
finish
