#!/usr/bin/env bash
# Several listeners in one daemon: the top-level listener requires client
# certificates, a second one (optional) takes clients without one, a third
# serves only the admin role and only PING.  Each listener keeps its own
# client-auth mode, accepted roles and messages; -t names a bad entry.
. "$(dirname "$0")/lib.sh"

n=keymgmtd
pki_init
PORT[$n]=$(free_port)
P2=$(free_port)
P3=$(free_port)
write_config "$n" "\"client_auth\": \"require\",
  \"listeners\": [
    { \"name\": \"stb\", \"listen\": \"127.0.0.1:$P2\", \"client_auth\": \"optional\" },
    { \"name\": \"ops\", \"listen\": \"127.0.0.1:$P3\", \"client_auth\": \"optional\",
      \"roles\": \"admin\", \"messages\": \"PING\" }
  ]"
"$(bin_of $n)" -t -c "$T/$n.json" | grepq "configuration OK" || fail "-t accepts the listeners"
start_daemon "$n"
pass "started with three listeners"

anon() { "$STB_CLIENT" -a "127.0.0.1:$1" --ca "$PKI/ca.crt" -T 3000 ping >/dev/null 2>&1; }
admin_at() {
	"$STBCTL" -a "127.0.0.1:$1" --ca "$PKI/ca.crt" --cert "$PKI/admin.crt" \
		--key "$PKI/admin.key" -T 5000 "${@:2}"
}

# require: no certificate, no handshake
if anon "${PORT[$n]}"; then
	fail "the require listener takes a client without a certificate"
fi
# optional: PING without a certificate, but an admin message is FORBIDDEN
anon "$P2" || fail "anonymous PING on the optional listener"
# ADMIN_STATS (0x0f01) request id 7 without a certificate, as a raw frame;
# the answer is an ERROR frame that names the role it needs
out=$( (printf 'SB\001\000\017\001\000\000\000\000\000\007\000\000\000\000'; sleep 1) |
	timeout 3 openssl s_client -quiet -connect "127.0.0.1:$P2" -CAfile "$PKI/ca.crt" 2>/dev/null |
	tr -c '[:print:]' '.') || true
echo "$out" | grepq "ADMIN_STATS may only be sent by: admin" ||
	fail "anonymous ADMIN_STATS on the optional listener is FORBIDDEN: $out"
# so is it for a service role
out=$("$STBCTL" -a "127.0.0.1:$P2" --ca "$PKI/ca.crt" --cert "$PKI/cert-proxyd.crt" \
	--key "$PKI/cert-proxyd.key" -T 5000 stats 2>&1) && fail "stats from a service role"
echo "$out" | grepq FORBIDDEN || fail "stats from cert-proxyd on stb is FORBIDDEN: $out"
# an admin certificate works on both
for p in "${PORT[$n]}" "$P2"; do
	admin_at "$p" ping >/dev/null || fail "admin PING on $p"
	admin_at "$p" stats | grepq "^daemon *$n" || fail "admin stats on $p"
done
pass "require and optional listeners"

# ops: only the admin role, only PING
out=$("$STB_CLIENT" -a "127.0.0.1:$P3" --ca "$PKI/ca.crt" -T 3000 ping 2>&1) &&
	fail "anonymous PING on the admin-only listener"
echo "$out" | grepq FORBIDDEN || fail "anonymous PING on ops is FORBIDDEN: $out"
admin_at "$P3" ping >/dev/null || fail "admin PING on ops"
out=$(admin_at "$P3" stats 2>&1) && fail "stats on the PING-only listener"
echo "$out" | grepq UNSUPPORTED || fail "stats on ops is UNSUPPORTED: $out"
pass "accepted roles and messages per listener"

m=$(http_get "127.0.0.1:${HPORT[$n]}" /metrics)
echo "$m" | grepq '^stbcred_listener_accepted_total{listener="stb"} [1-9]' ||
	fail "per-listener metrics: $(echo "$m" | grep listener | tr '\n' ' ')"
echo "$m" | grepq '^stbcred_connections_accepted_total [1-9]' || fail "total metrics"
echo "$m" | grepq '^stbcred_requests_total{type="PING",status="OK"} [1-9]' ||
	fail "PING counted over the listeners"
pass "metrics per listener and summed"

# SIGHUP reloads every listener
kill -HUP "${PID[$n]}"
for _ in $(seq 1 100); do grepq "reload: TLS" "$T/$n.log" && break; sleep 0.05; done
grepq "reload: TLS certificates and trust anchors reloaded (the listeners" "$T/$n.log" ||
	fail "SIGHUP reloads every listener"
anon "$P2" || fail "optional listener after SIGHUP"
stop_daemon "$n"
[ "$RC" = 0 ] || fail "clean stop (rc $RC)"

# -t names the file, the entry and the key at fault
check_bad() {
	local what=$1 entries=$2 want=$3 out
	write_config bad "\"listeners\": $entries"
	if out=$("$(bin_of $n)" -t -c "$T/bad.json" 2>&1); then
		fail "-t accepts $what"
		return
	fi
	echo "$out" | grepq -F "$T/bad.json" || fail "$what: the file is named: $out"
	echo "$out" | grepq -F -- "$want" || fail "$what: says '$want': $out"
}
check_bad "a bad client_auth" \
	'[{"name": "x", "listen": "127.0.0.1:1", "client_auth": "maybe"}]' \
	'listeners[0]: client_auth: "maybe" is not one of the allowed values'
check_bad "an unknown key" '[{"name": "x", "listen": "127.0.0.1:1", "port": 1}]' \
	"listeners[0]: unknown key 'port'"
check_bad "a missing listen" '[{"name": "x"}]' "listeners[0]: listen is required"
check_bad "a bad address" '[{"name": "x", "listen": "nowhere"}]' \
	"listeners[0]: listen: 'nowhere' is not IP:port"
check_bad "an unknown role" '[{"name": "x", "listen": "127.0.0.1:1", "roles": "admin,pope"}]' \
	"listeners[0]: roles: 'pope' is not known"
check_bad "an unknown message" '[{"name": "x", "listen": "127.0.0.1:1", "messages": "PONG"}]' \
	"listeners[0]: messages: 'PONG' is not known"
check_bad "a taken name" \
	'[{"name": "a", "listen": "127.0.0.1:1"}, {"name": "a", "listen": "127.0.0.1:2"}]' \
	"listeners[1]: name: 'a' is taken"
check_bad "a non-object" '[7]' "listeners[0] must be an object"
check_bad "a non-array" '{}' "listeners must be an array of objects"
check_bad "too many" '[{"name":"a","listen":"127.0.0.1:1"},{"name":"b","listen":"127.0.0.1:2"},
  {"name":"c","listen":"127.0.0.1:3"},{"name":"d","listen":"127.0.0.1:4"}]' "at most 3 entries"
pass "-t refuses bad listener entries, naming file, entry and key"

finish
