#!/usr/bin/env bash
# /healthz is liveness, /readyz readiness: media-gw whose ca-authd is down
# is alive but not ready, and its /readyz JSON names ca-authd and why; once
# ca-authd runs it is ready, and /metrics shows each dependency's state.
. "$(dirname "$0")/lib.sh"

pki_init
PORT[ca-authd]=$(free_port)
start_daemon media-gw "\"ca\": { \"addr\": \"127.0.0.1:${PORT[ca-authd]}\" }, \"health\": { \"interval_ms\": 200 }"
H=127.0.0.1:${HPORT[media-gw]}
ready() { curl -s -m 3 -o "$T/readyz" -w '%{http_code}' "http://$H/readyz"; }

code=
for _ in $(seq 1 50); do
	code=$(ready)
	grepq '"name":"ca-authd","state":"down"' "$T/readyz" && break
	sleep 0.1
done
[ "$code" = 503 ] || fail "/readyz with ca-authd down: HTTP $code"
/usr/bin/python3 - "$T/readyz" <<'PY' || fail "/readyz body: $(cat "$T/readyz")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["daemon"] == "media-gw" and r["ready"] is False, r
c = {x["name"]: x for x in r["checks"]}
assert c["store"]["state"] == "up", c
assert c["ca-authd"]["state"] == "down" and c["ca-authd"]["error"], c
assert c["ca-authd"]["since"].endswith("Z"), c
PY
curl -fsS -m 3 "http://$H/healthz" | grepq '^ok' || fail "/healthz: alive while ca-authd is down"
curl -fsS -m 3 "http://$H/metrics" | grepq '^stbcred_dependency_up{dependency="ca-authd"} 0' ||
	fail "metrics: ca-authd down"
grepq "health: ca-authd is down" "$T/media-gw.log" || fail "the change is logged"
pass "ca-authd down: alive, not ready, and /readyz says why"

start_daemon ca-authd
for _ in $(seq 1 50); do
	code=$(ready)
	[ "$code" = 200 ] && break
	sleep 0.1
done
[ "$code" = 200 ] || fail "/readyz once ca-authd runs: HTTP $code: $(cat "$T/readyz")"
grepq '"ready":true' "$T/readyz" || fail "/readyz body: $(cat "$T/readyz")"
curl -fsS -m 3 "http://$H/metrics" | grepq '^stbcred_dependency_up{dependency="ca-authd"} 1' ||
	fail "metrics: ca-authd up"
grepq "health: ca-authd is up again" "$T/media-gw.log" || fail "the recovery is logged"
pass "ca-authd up: ready"

stop_daemon media-gw
[ "$RC" = 0 ] || fail "media-gw stops cleanly (rc $RC)"
curl -s -m 2 "http://$H/readyz" >/dev/null 2>&1 && fail "still answering after stop"
finish
