#!/usr/bin/env bash
# Slowloris on ca-authd's HTTP listener (/ocsp and /crl are public), with
# the default limits (so the base binaries run it too): 400 connections from
# 25 source addresses (16 each, the per-source cap) each drip a header byte a
# second and never end the head.  Every one must be closed by the request
# deadline (10 s, which bytes do not move) while /healthz and /crl keep being
# answered, and /metrics counts them.  Then one source alone is capped at
# 16, and a flood past http.max_connections (512) evicts connections never
# answered instead of shutting the listener.
. "$STB_SRC/tests/integration/lib.sh"

n=ca-authd
pki_init
# the CA pki-bootstrap made, so that /crl has a CRL to serve
PORT[$n]=$(free_port)
HPORT[$n]=$(free_port)
H=127.0.0.1:${HPORT[$n]}
store_json ca-authd-pki
cat >"$T/$n.json" <<JSON
{
  "listen": "127.0.0.1:${PORT[$n]}",
  "http_listen": "$H",
  "state_dir": "$PKI/ca-authd-state", $STORE_JSON
  "kek_file": "$PKI/ca-authd.kek",
  "tls": { "cert": "$PKI/ca-authd.crt", "key": "$PKI/ca-authd.key", "ca": "$PKI/ca.crt" }
}
JSON
start_daemon "$n"

"$STB_NET_CLIENT" slowloris "${HPORT[$n]}" 400 14 2 25 >"$T/attack.out" &
ATTACK=$!
for _ in $(seq 1 100); do grepq connected "$T/attack.out" && break; sleep 0.1; done
made=$(sed -n 's/^connected //p' "$T/attack.out")
[ "${made:-0}" -ge 390 ] || fail "the attacker connected: $(cat "$T/attack.out")"

# a legitimate client from 127.0.0.1 keeps being answered during the attack
ok=0
for i in $(seq 1 8); do
	if curl -fsS -m 3 "http://$H/healthz" | grepq '^ok'; then ok=$((ok + 1)); fi
	sleep 0.5
done
[ "$ok" = 8 ] || fail "/healthz answered $ok of 8 during the attack"
curl -fsS -m 3 -o "$T/crl.der" "http://$H/crl" && [ -s "$T/crl.der" ] ||
	fail "/crl answered during the attack"
pass "/healthz 8 of 8 and /crl answered during the slowloris"

wait "$ATTACK" || true
log "attacker: $(cat "$T/attack.out")"
# after 14 s every dripping connection was closed (deadline 10 s)
grepq "^open 0 " "$T/attack.out" || fail "connections held open after 14 s: $(tail -1 "$T/attack.out")"

m=$(curl -fsS -m 3 "http://$H/metrics")
metric() { echo "$m" | sed -n "s/^$1 \\([0-9]*\\)\$/\\1/p"; }
t=$(metric stbcred_http_request_timeouts_total)
[ "${t:-0}" -ge "${made:-400}" ] || fail "request deadlines counted: ${t:-none} of ${made:-?}"
c=$(metric stbcred_http_connections)
[ "${c:-99}" -le 2 ] || fail "connections left: ${c:-none}"
pass "slowloris: ${t:-none} request deadlines, ${c:-none} connections left"


# one slow source alone: at most 16 at once
"$STB_NET_CLIENT" slowloris "${HPORT[$n]}" 40 2 30 1 >"$T/one.out"
grepq "^open 16 closed 24" "$T/one.out" || fail "one source capped at 16: $(tail -1 "$T/one.out")"
m=$(curl -fsS -m 3 "http://$H/metrics")
r=$(metric 'stbcred_http_connections_refused_total{reason="source"}')
[ "${r:-0}" -ge 24 ] || fail "refusals per source counted: ${r:-none}"
# past http.max_connections: never-answered connections make room
"$STB_NET_CLIENT" slowloris "${HPORT[$n]}" 600 2 31 40 >"$T/full.out" &
ATTACK=$!
sleep 1
curl -fsS -m 3 "http://$H/healthz" | grepq '^ok' || fail "/healthz with the listener full"
wait "$ATTACK" || true
m=$(curl -fsS -m 3 "http://$H/metrics")
e=$(metric stbcred_http_connections_evicted_total)
# 600 against room for 512 (curl's included)
[ "${e:-0}" -ge 60 ] || fail "evictions counted: ${e:-none} ($(cat "$T/full.out" | tr '\n' ' '))"
pass "one source capped (refused ${r:-none}); full listener evicted ${e:-none}"
[ "$(wc -c <"$T/$n.log")" -lt 20000 ] || fail "log grew: $(wc -c <"$T/$n.log") bytes"
stop_daemon "$n"
[ "$RC" = 0 ] || fail "clean stop (rc $RC)"
finish
