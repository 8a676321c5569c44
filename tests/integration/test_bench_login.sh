#!/usr/bin/env bash
# stb-bench login and issue against real ca-authd, cert-proxyd and media-gw,
# small: every simulated STB is imported, its first login fetches a
# certificate, the measured logins all succeed; issue mode adds one
# certificate per answer at ca-authd.
. "$(dirname "$0")/lib.sh"

pki_init
write_config ca-authd
"$STB_BIN_ca_authd" init -c "$T/ca-authd.json" >>"$T/ca-authd.log" 2>&1 || fail "ca-authd init"
start_daemon ca-authd
CA=127.0.0.1:${PORT[ca-authd]}
start_daemon cert-proxyd "\"ca\": { \"addr\": \"$CA\" }"
start_daemon media-gw "\"ca\": { \"addr\": \"$CA\" }"
CADB=$T/state-ca-authd/ca-authd.db
num() { sed -n "s/.*\"$1\":\([0-9.-]*\).*/\1/p" <<<"$2"; }

out=$("$STB_BENCH" login -a "127.0.0.1:${PORT[media-gw]}" --cp "127.0.0.1:${PORT[cert-proxyd]}" \
	--ca "$PKI/ca.crt" --admin-cert "$PKI/admin.crt" --admin-key "$PKI/admin.key" \
	-c 6 -w 0.2 -d 1 --json 2>"$T/login.err") || fail "stb-bench login: $(cat "$T/login.err")"
[ "$(num ready "$out")" = 6 ] && [ "$(num first_fetched "$out")" = 6 ] &&
	pass "6 STBs imported, each first login fetched its certificate" || fail "first logins: $out"
[ "$(num errors "$out")" = 0 ] && [ "$(num failures "$out")" = 0 ] && [ "$(num done "$out")" -gt 0 ] &&
	pass "$(num done "$out") logins measured, no errors" || fail "logins: $out"
n=$(sqlite3 "$CADB" "SELECT count(*) FROM certs WHERE profile='stb-media'")
[ "$n" = 6 ] && pass "ca-authd issued exactly one certificate per STB" || fail "$n certificates"
tok=$(sqlite3 "$T/state-media-gw/media-gw.db" "SELECT count(*) FROM tokens")
[ "$tok" -ge "$(num done "$out")" ] && pass "media-gw stored $tok tokens" || fail "tokens $tok"

before=$(sqlite3 "$CADB" "SELECT count(*) FROM certs")
out=$("$STB_BENCH" issue -a "$CA" --ca "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
	-c 3 -w 0.2 -d 1 --json 2>"$T/issue.err") || fail "stb-bench issue: $(cat "$T/issue.err")"
after=$(sqlite3 "$CADB" "SELECT count(*) FROM certs")
[ "$(num errors "$out")" = 0 ] && [ "$(num done "$out")" -gt 0 ] &&
	pass "$(num done "$out") certificates issued in the measured second" || fail "issue: $out"
[ $((after - before)) -ge "$(num done "$out")" ] && pass "every issued certificate is recorded" ||
	fail "recorded $((after - before)) < $(num done "$out")"
finish
