#!/usr/bin/env bash
# Issue 9 point 10: an attacker who knows a provisioned device's ID but not
# its one-time enrolment code cannot register it (no code, a made-up one,
# another device's, over and over), cannot lock it out that way and leaves
# no row or log line per try; the real device then enrols with its code,
# which is spent, and only its password opens the device afterwards.
. "$STB_SRC/tests/integration/lib.sh"
. "$STB_SRC/tests/integration/rdv_lib.sh"

command -v sqlite3 >/dev/null || { echo "SKIP: sqlite3 not installed"; exit 77; }

TRIES=30
start_daemon rendezvousd '"overlay_pool": "10.80.0.0/16", "kdf": { "scrypt_n": 1024 },
  "auth": { "max_failures": 3 }'
ADDR=127.0.0.1:${PORT[rendezvousd]}
DB=$T/state-rendezvousd/rendezvousd.db
sc() { "$STB_CLIENT" -a "$ADDR" --ca "$PKI/ca.crt" -T 10000 "$@"; }
code_of() { cat "$(enrol_file "$1")" 2>/dev/null || true; }

provision victim other || fail "provisioning shows no enrolment code"
[ -n "$(code_of victim)" ] && [ "$(code_of victim)" != "$(code_of other)" ] ||
	fail "no distinct codes"
[ "$(sqlite3 "$DB" "SELECT length(verifier), CASE WHEN verifier = $(db_blob "$(code_of victim)") THEN 1 ELSE 0 END
	FROM enrolments WHERE device_id='victim'" 2>/dev/null)" = "32|0" ] ||
	fail "the store does not hold a 32-byte verifier (or holds the code itself)"
audit0=$(sqlite3 "$DB" "SELECT count(*) FROM audit")
log0=$(wc -l <"$T/rendezvousd.log")

# the attacker: no code, made-up codes, the other device's code
squat() { STB_RDV_PASSWORD=attackerpw sc rdv-register victim mallory 127.0.0.1:6666 2>&1 || true; }
out=$(squat)
grepq 'UNAUTHENTICATED' <<<"$out" && pass "the device ID alone does not register it" ||
	fail "squatted without a code: $out"
bad=0
for i in $(seq 1 "$TRIES"); do
	guess=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
	out=$(STB_RDV_ENROL_CODE=$guess squat)
	grepq 'UNAUTHENTICATED' <<<"$out" || bad=$((bad + 1))
	# a legitimate device keeps working meanwhile
	[ "$i" -eq 10 ] && { out=$(STB_RDV_PASSWORD=otherpass1 STB_RDV_ENROL_CODE=$(code_of other) \
		sc rdv-register other userother 127.0.0.1:6001 2>&1) || fail "other during the attack: $out"; }
done
[ "$bad" -eq 0 ] && pass "$TRIES made-up codes refused" || fail "$bad of $TRIES made-up codes not refused"
out=$(STB_RDV_ENROL_CODE=$(code_of other) squat)
grepq 'UNAUTHENTICATED' <<<"$out" && pass "another device's code does not open this one" ||
	fail "other's code: $out"
audit=$(($(sqlite3 "$DB" "SELECT count(*) FROM audit") - audit0))
logn=$(($(wc -l <"$T/rendezvousd.log") - log0))
[ "$audit" -le 2 ] && pass "no audit row per refused try ($audit in all)" || fail "$audit audit rows"
[ "$logn" -le 3 ] && pass "no log line per refused try ($logn in all)" || fail "$logn log lines"

# the real device enrols, though it was attacked more than max_failures times
out=$(STB_RDV_PASSWORD=victimpass STB_RDV_ENROL_CODE=$(code_of victim) \
	sc rdv-register victim uservictim 127.0.0.1:6002 2>&1) &&
	pass "the real device enrols after the attack" || fail "the real device: $out"
[ "$(sqlite3 "$DB" "SELECT count(*) FROM enrolments WHERE device_id='victim'")" = 0 ] &&
	pass "the enrolment code is spent" || fail "enrolment row left"
out=$(STB_RDV_ENROL_CODE=$(code_of victim) squat)
grepq 'UNAUTHENTICATED' <<<"$out" && pass "the spent code sets no new password" ||
	fail "spent code reused: $out"
out=$(STB_RDV_PASSWORD=victimpass sc rdv-register victim uservictim 127.0.0.1:6002 2>&1) &&
	pass "the device registers again with its password" || fail "re-registration: $out"
[ "$(sqlite3 "$DB" "SELECT endpoint, username FROM devices WHERE device_id='victim'")" = \
	"127.0.0.1:6002|uservictim" ] && pass "the device's endpoint and username are its own" ||
	fail "device row: $(sqlite3 "$DB" "SELECT endpoint, username FROM devices WHERE device_id='victim'")"
[ -n "$(code_of victim)" ] && grepq "$(code_of victim)" "$T/rendezvousd.log" &&
	fail "the code reached the log"

stop_daemon rendezvousd
[ "$RC" -eq 0 ] && pass "clean stop" || fail "exit status $RC"
finish
