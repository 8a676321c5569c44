#!/usr/bin/env bash
# stb-bench rdv against a real rendezvousd, small: every device registers
# and holds its control channel, callers get grants with no error, the
# figures are reported, and the server saw every session it granted.
. "$(dirname "$0")/lib.sh"

# the CONNECT_REQ limits raised, offers short-lived: the bench measures
# grants, not refusals
start_daemon rendezvousd '"kdf": { "scrypt_n": 1024 }, "session_ttl_s": 1,
  "connect": { "per_minute": 6000000, "burst": 100000, "max_offers_per_pair": 1024,
  "max_offers_per_caller": 1024, "max_offers_per_target": 1024 }'
out=$("$STB_BENCH" rdv -a "127.0.0.1:${PORT[rendezvousd]}" --ca "$PKI/ca.crt" \
	--admin-cert "$PKI/admin.crt" --admin-key "$PKI/admin.key" -D 40 -c 8 -t 2 -w 0.2 -d 1 \
	--server-pid "${PID[rendezvousd]}" --json 2>"$T/bench.err") || fail "stb-bench rdv: $(cat "$T/bench.err")"
num() { sed -n "s/.*\"$1\":\([0-9.-]*\).*/\1/p" <<<"$out"; }
[ "$(num registered)" = 40 ] && pass "40 devices registered and held" || fail "registered: $out"
[ "$(num errors)" = 0 ] && [ "$(num failures)" = 0 ] && [ "$(num lost)" = 0 ] &&
	pass "no errors, failures or lost channels" || fail "$out"
grants=$(num grants)
[ "${grants:-0}" -gt 0 ] && pass "$grants sessions granted" || fail "no grants: $out"
awk -v k="$(num server_kib_per_device)" 'BEGIN { exit !(k > 0) }' &&
	pass "server memory per device reported" || fail "RSS: $out"
online=$(ctl rendezvousd rdv online --json | grep -c '"device_id"' || true)
[ "$online" = 0 ] && pass "channels closed when the bench ended" || fail "$online still online"
sessions=$(sqlite3 "$T/state-rendezvousd/rendezvousd.db" "SELECT count(*) FROM sessions")
[ "$sessions" -ge "$grants" ] && pass "server recorded $sessions sessions (>= grants)" ||
	fail "sessions $sessions < grants $grants"
finish
