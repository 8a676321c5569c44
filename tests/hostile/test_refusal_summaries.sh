#!/usr/bin/env bash
# The anonymous refusal paths of cert-proxyd and rendezvousd feed the
# refusal summaries (issue 9, point 4): made-up device IDs guarded at
# cert-proxyd (lockout.h), REGISTERs of unprovisioned devices and wrong passwords at
# rendezvousd each cost a counter, not an audit row and a log line; the
# daemon writes one summary row per source and action when it stops.  A
# real device authenticates and registers meanwhile.
. "$STB_SRC/tests/integration/lib.sh"
. "$STB_SRC/tests/integration/rdv_lib.sh"

N=${N:-15}
rows() { sqlite3 "$T/state-$1/$1.db" "SELECT count(*) FROM audit"; }
log_bytes() { stat -c %s "$T/$1.log"; }

# --- cert-proxyd: every wrong MAC for a made-up ID spends its guess budget ---
start_daemon cert-proxyd '"auth": { "max_failures": 1, "lockout_s": 60, "addr_max_failures": 100000 }'
SECRET=$(openssl rand -hex 32)
echo "stb-1,$SECRET" >"$T/stbs.csv"
ctl cert-proxyd cp import "$T/stbs.csv" >/dev/null || fail "cp import"
cpc() { "$STB_CP_CLIENT" "127.0.0.1:${PORT[cert-proxyd]}" "$PKI/ca.crt" "$@"; }
r0=$(rows cert-proxyd) l0=$(log_bytes cert-proxyd)
locked=0
for i in $(seq 1 "$N"); do
	out=$(cpc "ghost-$i" 00 badmac 2>&1 || true)
	[[ $out == *"after repeated failures"* ]] && locked=$((locked + 1))
done
[ $locked = "$N" ] && pass "$N made-up IDs each guarded on their first failure" ||
	fail "$locked of $N locked"
out=$(cpc stb-1 "$SECRET" auth 2>&1 || true)
[[ $out == "auth OK"* ]] && pass "the real box authenticates meanwhile" || fail "stb-1: $out"
# a wrong secret for a real box, and a client certificate from another CA:
# failed authentications too, in the same summaries
out=$(cpc stb-1 "$(openssl rand -hex 32)" auth 2>&1 || true)
[[ $out == *UNAUTHENTICATED* ]] || fail "stb-1 with a wrong secret: $out"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=intruder \
	-days 1 -keyout "$T/intruder.key" -out "$T/intruder.crt" 2>/dev/null
fp=$(openssl x509 -in "$T/intruder.crt" -outform DER | openssl dgst -sha256 -r | cut -c1-16)
echo | openssl s_client -connect "127.0.0.1:${PORT[cert-proxyd]}" -CAfile "$PKI/ca.crt" \
	-cert "$T/intruder.crt" -key "$T/intruder.key" >/dev/null 2>&1 || true
stop_daemon cert-proxyd
r1=$(rows cert-proxyd) l1=$(log_bytes cert-proxyd)
log "cert-proxyd: audit +$((r1 - r0)) rows, log +$((l1 - l0)) bytes for $N lockouts"
# rows: the auth and tls_client_cert summaries, and stb-1's own lockout
# (max_failures 1) which a real device's gets
[ $((r1 - r0)) -le 3 ] && [ $((l1 - l0)) -le 2048 ] &&
	pass "cert-proxyd: one summary per action for $N lockouts of made-up IDs" ||
	fail "cert-proxyd: audit +$((r1 - r0)) rows, log +$((l1 - l0)) bytes"
sums=$(sqlite3 "$T/state-cert-proxyd/cert-proxyd.db" "SELECT detail FROM audit WHERE event='refusals'")
grepq "^refused $((2 * N + 1)) auth from 127.0.0.1 .*: $N unknown_device, $N lockout_unknown_device, 1 wrong_secret (last: stb-1)" <<<"$sums" &&
	pass "cert-proxyd: the summary row names the last device" || fail "cert-proxyd summary: $sums"
grepq "^refused 1 tls_client_cert from 127.0.0.1 .*: 1 untrusted_certificate (last: $fp)" <<<"$sums" &&
	grepq "refused 1 tls_client_cert from 127.0.0.1 .*(last: $fp)" "$T/cert-proxyd.log" &&
	pass "cert-proxyd: a refused client certificate logged and audited with its fingerprint" ||
	fail "tls summary (fingerprint $fp): $sums"

# --- rendezvousd: unprovisioned devices, wrong passwords ---
start_daemon rendezvousd '"overlay_pool": "10.77.0.0/16", "kdf": { "scrypt_n": 1024 },
  "auth": { "max_failures": 1000, "addr_max_failures": 100000, "lockout_s": 60 }'
rdvc() { "$STB_RDV_CLIENT" "127.0.0.1:${PORT[rendezvousd]}" "$PKI/ca.crt" "$@"; }
provision dev-a || fail "provision dev-a"
out=$(rdvc register dev-a usera passworda 127.0.0.1:6001 || true)
[[ $out == registered* ]] || fail "dev-a first registration: $out"
r0=$(rows rendezvousd) l0=$(log_bytes rendezvousd)
forbidden=0 wrong=0
for i in $(seq 1 "$N"); do
	out=$(rdvc register "ghost-$i" user password 127.0.0.1:6002 || true)
	[[ $out == FORBIDDEN* ]] && forbidden=$((forbidden + 1))
	out=$(rdvc register dev-a usera "wrongpass-$i" 127.0.0.1:6001 || true)
	[[ $out == UNAUTHENTICATED* ]] && wrong=$((wrong + 1))
done
[ $forbidden = "$N" ] && [ $wrong = "$N" ] && pass "$N unprovisioned, $N wrong passwords refused" ||
	fail "refused: $forbidden FORBIDDEN, $wrong UNAUTHENTICATED of $N"
out=$(rdvc register dev-a usera passworda 127.0.0.1:6001 || true)
[[ $out == registered* ]] && pass "the real device registers meanwhile" || fail "dev-a: $out"
stop_daemon rendezvousd
r1=$(rows rendezvousd) l1=$(log_bytes rendezvousd)
log "rendezvousd: audit +$((r1 - r0)) rows, log +$((l1 - l0)) bytes for $((2 * N)) refusals"
# dev-a's own registration row and the summary
[ $((r1 - r0)) -le 2 ] && [ $((l1 - l0)) -le 1024 ] &&
	pass "rendezvousd: one summary for $((2 * N)) refused REGISTERs" ||
	fail "rendezvousd: audit +$((r1 - r0)) rows, log +$((l1 - l0)) bytes"
sqlite3 "$T/state-rendezvousd/rendezvousd.db" "SELECT detail FROM audit WHERE event='refusals'" |
	grepq "^refused $((2 * N)) register from 127.0.0.1 .*$N FORBIDDEN, $N UNAUTHENTICATED" &&
	pass "rendezvousd: the summary row" ||
	fail "rendezvousd summary: $(sqlite3 "$T/state-rendezvousd/rendezvousd.db" "SELECT detail FROM audit WHERE event='refusals'")"

finish
