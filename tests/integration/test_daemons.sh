#!/usr/bin/env bash
# All seven daemons start, answer PING and the admin messages, serve
# /healthz and /metrics, reload TLS on SIGHUP and drain on SIGTERM.
. "$(dirname "$0")/lib.sh"

daemons="ca-authd cert-proxyd media-gw rendezvousd keymgmtd qualifyd appvetd"
pki_init

for n in $daemons; do
	start_daemon "$n"
done
pass "seven daemons started"

for n in $daemons; do
	out=$(ctl "$n" -j stats)
	echo "$out" | grepq "\"daemon\":[[:space:]]*\"$n\"" || fail "$n: stats names the daemon: $out"
	echo "$out" | grepq '"type":[[:space:]]*"PING"' || fail "$n: stats counts PING: $out"
	ctl "$n" stats | grepq "^daemon *$n" || fail "$n: stats table"
	ctl "$n" config | grepq "\"listen\":[[:space:]]*\"127.0.0.1:${PORT[$n]}\"" ||
		fail "$n: config dump shows the listen address"
	if ctl "$n" config | grepq -i 'kek"[[:space:]]*:[[:space:]]*"[0-9a-f]\{64\}'; then
		fail "$n: config dump leaks key material"
	fi
	seq=$(ctl "$n" audit note "integration test note for $n")
	[ "$seq" = "audit record 1" ] || fail "$n: first audit note is record 1 (got '$seq')"
	ctl "$n" audit verify | grepq "intact: 1 records" || fail "$n: audit chain intact"
	ctl "$n" audit export | grepq "integration test note for $n" || fail "$n: audit export"
	h=$(http_get "127.0.0.1:${HPORT[$n]}" /healthz)
	# the status line by pattern: `echo | head -1` can die of SIGPIPE under pipefail
	[[ ${h%%$'\n'*} == *" 200 "* ]] || fail "$n: /healthz 200: $h"
	m=$(http_get "127.0.0.1:${HPORT[$n]}" /metrics)
	echo "$m" > "$T/$n.metrics"
	echo "$m" | grepq "^stbcred_requests_total{type=\"PING\",status=\"OK\"} [1-9]" ||
		fail "$n: /metrics counts PING"
	echo "$m" | grepq '^stbcred_store_commits_total [1-9]' ||
		fail "$n: /metrics store commits: $(echo "$m" | grep -E '^HTTP|store_commits|^stbcred_requests_total' | tr '\n' ' ')"
	echo "$m" | grepq '^stbcred_request_seconds_bucket{type="ADMIN_AUDIT_NOTE",le="+Inf"} 1$' ||
		fail "$n: /metrics latency histogram"
	echo "$m" | grepq '^process_open_fds [1-9]' || fail "$n: /metrics has process_* metrics"
	# promtool lints the exposition (HELP for every family, names, types)
	if command -v promtool >/dev/null 2>&1; then
		curl -fsS -m 5 "http://127.0.0.1:${HPORT[$n]}/metrics" >"$T/$n.prom" || fail "$n: curl /metrics"
		promtool check metrics <"$T/$n.prom" >"$T/$n.promtool" 2>&1 ||
			fail "$n: promtool check metrics: $(head -c 600 "$T/$n.promtool")"
	fi
	h=$(http_get "127.0.0.1:${HPORT[$n]}" /nope)
	[[ ${h%%$'\n'*} == *" 404 "* ]] || fail "$n: 404: $h"
done
pass "admin messages, audit and HTTP on every daemon"

# STB-facing daemons take clients without certificates; ca-authd does not.
"$STB_CLIENT" -a "127.0.0.1:${PORT[media-gw]}" --ca "$PKI/ca.crt" ping -n 3 -s 100 >/dev/null ||
	fail "anonymous PING to media-gw"
if "$STB_CLIENT" -a "127.0.0.1:${PORT[ca-authd]}" --ca "$PKI/ca.crt" -T 3000 ping \
	>/dev/null 2>&1; then
	fail "ca-authd must refuse a client without a certificate"
fi
# An admin message from a service role is FORBIDDEN.
out=$("$STBCTL" -a "127.0.0.1:${PORT[media-gw]}" --ca "$PKI/ca.crt" \
	--cert "$PKI/cert-proxyd.crt" --key "$PKI/cert-proxyd.key" stats 2>&1) && fail "role check"
echo "$out" | grepq "FORBIDDEN" || fail "stats from cert-proxyd role is FORBIDDEN: $out"
# A client that pins another CA refuses the daemon.
mkdir -p "$T/other"
"$STB_SRC/scripts/pki-bootstrap.sh" "$T/other" >/dev/null
out=$("$STB_CLIENT" -a "127.0.0.1:${PORT[media-gw]}" --ca "$T/other/ca.crt" ping 2>&1) &&
	fail "foreign CA accepted"
echo "$out" | grepq UNAUTHENTICATED || fail "foreign CA: $out"
pass "roles and trust"

# SIGHUP: a re-issued certificate is served to new connections.
serial() {
	openssl s_client -connect "127.0.0.1:${PORT[media-gw]}" -CAfile "$PKI/ca.crt" \
		</dev/null 2>/dev/null | openssl x509 -noout -serial
}
before=$(serial)
"$STB_SRC/scripts/pki-bootstrap.sh" --reissue "$PKI" media-gw >/dev/null
kill -HUP "${PID[media-gw]}"
sleep 0.5
after=$(serial)
[ -n "$before" ] && [ "$before" != "$after" ] || fail "SIGHUP reloads the certificate ($before / $after)"
grepq "reload: TLS certificates" "$T/media-gw.log" || fail "reload logged"
# A broken certificate on SIGHUP keeps the old one in service.
cp "$PKI/media-gw.crt" "$T/good.crt"
echo "garbage" > "$PKI/media-gw.crt"
kill -HUP "${PID[media-gw]}"
sleep 0.5
ctl media-gw ping >/dev/null || fail "daemon keeps serving after a failed reload"
grepq "reload: keeping the old certificates" "$T/media-gw.log" || fail "failed reload logged"
cp "$T/good.crt" "$PKI/media-gw.crt"
pass "SIGHUP reload"

# -t checks a config; a bad one names the key and file.
"$(bin_of media-gw)" -t -c "$T/media-gw.json" | grepq "configuration OK" || fail "-t good config"
echo '{"listen":"127.0.0.1:1","max_frame":12,"bogus":1}' > "$T/bad.json"
out=$("$(bin_of media-gw)" -t -c "$T/bad.json" 2>&1) && fail "-t bad config accepted"
echo "$out" | grepq "bad.json: max_frame" || fail "-t names the file and key: $out"

# -t says why a file cannot be used, refuses a key given twice, lists an
# enum's values, and opens the certificate, key and KEK a start will need.
gw=$(bin_of media-gw)
out=$("$gw" -t -c "$T/none.json" 2>&1) && fail "-t accepted a missing file"
grepq "none.json: No such file or directory" <<<"$out" || fail "-t missing file: $out"
echo '{"workers": 2, "workers": 3}' >"$T/dup.json"
out=$("$gw" -t -c "$T/dup.json" 2>&1) && fail "-t accepted a key given twice"
grepq "key 'workers' appears twice" <<<"$out" || fail "-t duplicate key: $out"
echo '{"client_auth": "maybe"}' >"$T/enum.json"
out=$("$gw" -t -c "$T/enum.json" 2>&1) && fail "-t accepted a bad enum"
grepq "(require, optional, none)" <<<"$out" || fail "-t enum lists the values: $out"
sed "s#$PKI/media-gw.crt#$T/gone.crt#" "$T/media-gw.json" >"$T/nocert.json"
out=$("$gw" -t -c "$T/nocert.json" 2>&1) && fail "-t accepted a missing certificate"
grepq "certificate $T/gone.crt: No such file or directory" <<<"$out" || fail "-t cert: $out"
sed "s#$PKI/media-gw.kek#$T/gone.kek#" "$T/media-gw.json" >"$T/nokek.json"
out=$("$gw" -t -c "$T/nokek.json" 2>&1) && fail "-t accepted a missing KEK"
grepq "gone.kek" <<<"$out" || fail "-t KEK: $out"
out=$("$gw" --help 2>/dev/null) || fail "--help exits 0"
grepq "^usage: media-gw" <<<"$out" || fail "--help on stdout: $out"
"$gw" --version | grepq "^media-gw [0-9]" || fail "--version"
rc=0
"$gw" --bogus >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "an unknown option exits 2 (got $rc)"
pass "-t, --help, --version"

# Log lines carry an ISO-8601 UTC time, except on journald's own stream
# (JOURNAL_STREAM names stderr), which stamps them itself; a start that fails
# logs at priority err (<3>), so `journalctl -p err` shows it.
grepq -E '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z <6>media-gw: ' "$T/media-gw.log" ||
	fail "log lines have a timestamp: $(head -n 1 "$T/media-gw.log")"
sed "s#\"listen\": \"127.0.0.1:[0-9]*\"#\"listen\": \"127.0.0.1:${PORT[media-gw]}\"#" "$T/media-gw.json" >"$T/busy.json"
: >"$T/busy.log"
rc=0
JOURNAL_STREAM=$(stat -c '%d:%i' "$T/busy.log") "$gw" -c "$T/busy.json" 2>>"$T/busy.log" || rc=$?
[ "$rc" = 1 ] || fail "a second media-gw on a busy port exits 1 (got $rc)"
grepq '^<3>media-gw: cannot start' "$T/busy.log" || fail "start failure at <3>, no stamp under journald: $(cat "$T/busy.log")"
pass "log timestamps, start failures at priority err"

# stbctl: help on stdout, a version, a checked -T, a short usage for a verb
# missing, JSON that is JSON
"$STBCTL" --help 2>/dev/null | grepq "^usage: stbctl" || fail "stbctl --help on stdout"
"$STBCTL" --version | grepq "^stbctl [0-9]" || fail "stbctl --version"
rc=0
out=$("$STBCTL" -T abc ping 2>&1) || rc=$?
[ "$rc" = 2 ] && grepq "1..3600000" <<<"$out" || fail "stbctl -T abc: rc $rc: $out"
rc=0
out=$(ctl media-gw audit 2>&1) || rc=$?
[ "$rc" = 2 ] && [ "$(wc -l <<<"$out")" -le 4 ] || fail "stbctl audit with no verb: rc $rc: $out"
"$STBCTL" --json messages | /usr/bin/python3 -c 'import json, sys; m = json.load(sys.stdin); assert m[0]["message"] == "PING"' ||
	fail "stbctl --json messages is not JSON"
# TLS failures say what is wrong: a key that is not the certificate's, a
# client certificate the daemon refuses
out=$("$STBCTL" -a "127.0.0.1:${PORT[media-gw]}" --ca "$PKI/ca.crt" --cert "$PKI/admin.crt" \
	--key "$PKI/media-gw.key" ping 2>&1) && fail "a mismatched key was accepted"
grepq "media-gw.key does not match certificate" <<<"$out" || fail "mismatched key: $out"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=stranger \
	-days 1 -keyout "$T/stranger.key" -out "$T/stranger.crt" 2>/dev/null
out=$("$STBCTL" -a "127.0.0.1:${PORT[media-gw]}" --ca "$PKI/ca.crt" --cert "$T/stranger.crt" \
	--key "$T/stranger.key" ping 2>&1) && fail "a foreign certificate was accepted"
grepq "UNAUTHENTICATED: .*refused this client's certificate" <<<"$out" || fail "foreign cert: $out"
pass "stbctl --help, --version, -T, audit, --json messages, TLS failures explained"

# A daemon's own checks run for -t too.
echo '{"overlay_pool":"10.0.0.0/33"}' > "$T/badpool.json"
out=$("$(bin_of rendezvousd)" -t -c "$T/badpool.json" 2>&1) && fail "-t bad overlay_pool accepted"
grepq "badpool.json: overlay_pool" <<<"$out" || fail "-t names the daemon's own key: $out"

# SIGTERM drains and exits 0.
for n in $daemons; do
	stop_daemon "$n" TERM
	[ "$RC" = 0 ] || fail "$n exits 0 on SIGTERM (got $RC)"
	grepq "stopped" "$T/$n.log" || fail "$n logs its stop"
done
pass "SIGTERM drain"
finish
