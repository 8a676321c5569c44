#!/usr/bin/env bash
# Lockout as a weapon (issue 9, points 5 and 13), against cert-proxyd's
# AUTH_PROVE and rendezvousd's REGISTER.  A bounded guesser on loopback
# (lockout_client) sends wrong proofs
#  - for the real box's own ID at a steady rate from 127.0.0.1, while the
#    real box logs in from 127.0.0.2;
#  - for many device IDs from 127.0.0.1 ("many boxes behind one address"),
#    while a real box behind that same address keeps logging in;
#  - pipelined on one connection, and on four at once (rendezvousd).
# Asserts that every real login succeeds during the attack, that the
# guesser gets a bounded number of proofs checked (the rest RATE_LIMITED
# before any lookup or scrypt), that a pipelined burst gets at most
# auth.max_failures scrypt evaluations, and that no failure is written.
. "$STB_SRC/tests/integration/lib.sh"
. "$STB_SRC/tests/integration/rdv_lib.sh"

command -v sqlite3 >/dev/null || { echo "SKIP: sqlite3 not installed"; exit 77; }
LC=$STB_LOCKOUT_CLIENT
# field NAME LINE
field() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }
# bg NAME CMD...: runs CMD in the background, its line in $T/NAME.out
bg() {
	local n=$1
	shift
	"$@" >"$T/$n.out" 2>"$T/$n.err" &
	PID[$n]=$!
}
# reap NAME: waits for a bg job; its line in $OUT
reap() {
	wait "${PID[$1]}" || fail "$1 exited $?: $(cat "$T/$1.err")"
	unset "PID[$1]"
	OUT=$(cat "$T/$1.out")
	log "$1: $OUT"
}
# cpu PID: user + system clock ticks the process has used
cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# ---------------- cert-proxyd ----------------
pki_init
CPX='"ca": { "addr": "127.0.0.1:9" },
  "auth": { "max_failures": 5, "lockout_s": 60, "addr_max_failures": 10 }'
start_daemon cert-proxyd "$CPX"
CPA=127.0.0.1:${PORT[cert-proxyd]}
CPDB=$T/state-cert-proxyd/cert-proxyd.db
SR=000102030405060708090a0b0c0d0e0f
SN=101112131415161718191a1b1c1d1e1f
printf 'device_id,secret_hex,enabled\nstb-real,%s,1\nstb-nat,%s,1\n' "$SR" "$SN" >"$T/stbs.csv"
ctl cert-proxyd cp import "$T/stbs.csv" >/dev/null || fail "import"
out=$("$LC" cp "$CPA" "$PKI/ca.crt" 127.0.0.1 stb-nat $SN 1 0)
[ "$(field ok "$out")" = 1 ] || fail "stb-nat's first login from 127.0.0.1: $out"

# 1. the real box's own ID, 10 wrong proofs a second from 127.0.0.1; the
# box starts a second later, from 127.0.0.2
bg attacker "$LC" cp "$CPA" "$PKI/ca.crt" 127.0.0.1 stb-real wrong 40 100
sleep 1 # the guesser is ahead: more failures in a row than auth.max_failures
bg realbox "$LC" cp "$CPA" "$PKI/ca.crt" 127.0.0.2 stb-real $SR 10 400
reap attacker
att=$OUT
reap realbox
[ "$(field ok "$OUT")" = 10 ] &&
	pass "cert-proxyd: the real box logged in 10 of 10 times from 127.0.0.2 during the guessing" ||
	fail "cert-proxyd, guessing its ID: the real box got $OUT"
g=$(field unauth "$att")
[ "$g" -le 10 ] && [ $(($(field limited "$att") + g)) = 40 ] &&
	pass "cert-proxyd: $g of 40 wrong proofs checked ($(field seconds "$att") s), the rest RATE_LIMITED" ||
	fail "cert-proxyd: the guesser got $att"

# a restart: the trust stb-nat earned from 127.0.0.1 is kept
stop_daemon cert-proxyd
start_daemon cert-proxyd "$CPX"

# 2. 60 device IDs from 127.0.0.1 (more than the 50 that used to lock the address)
bg attacker "$LC" cp "$CPA" "$PKI/ca.crt" 127.0.0.1 'nat-%d' wrong 60 30
bg realbox "$LC" cp "$CPA" "$PKI/ca.crt" 127.0.0.1 stb-nat $SN 10 200
reap attacker
att=$OUT
reap realbox
[ "$(field ok "$OUT")" = 10 ] &&
	pass "cert-proxyd: a box behind the guesser's own address logged in 10 of 10 times" ||
	fail "cert-proxyd, many IDs from its address: the real box got $OUT"
g=$(field unauth "$att")
[ "$g" -le 10 ] && pass "cert-proxyd: $g of 60 guesses for other IDs checked" ||
	fail "cert-proxyd: the many-ID guesser got $att"
out=$("$LC" cp "$CPA" "$PKI/ca.crt" 127.0.0.1 stb-real wrong 1 0)
[ "$(field limited "$out")" = 1 ] && pass "cert-proxyd: the guessing address stays throttled" ||
	fail "cert-proxyd, after the guessing: $out"
rows=$(sqlite3 "$CPDB" "SELECT key FROM lockouts ORDER BY key" | tr '\n' ',')
[ "$rows" = "stb-nat 127.0.0.1,stb-real 127.0.0.2," ] &&
	pass "cert-proxyd: only the trust of the two real logins is stored, no failure" ||
	fail "cert-proxyd lockouts rows: $rows"
n=$(wc -l <"$T/cert-proxyd.log")
[ "$n" -lt 100 ] && pass "cert-proxyd: $n log lines for 100 guesses" ||
	fail "cert-proxyd wrote $n log lines"
stop_daemon cert-proxyd

# ---------------- rendezvousd ----------------
start_daemon rendezvousd '"overlay_pool": "10.79.0.0/16", "kdf": { "scrypt_n": 16384 },
  "auth": { "max_failures": 5, "lockout_s": 60 }'
RA=127.0.0.1:${PORT[rendezvousd]}
RDB=$T/state-rendezvousd/rendezvousd.db
RPID=${PID[rendezvousd]}
for d in dev-real dev-nat dev-pipe dev-cal $(seq -f 'dev-v%g' 0 10); do
	provision "$d" || fail "provision $d"
done
"$STB_RDV_CLIENT" "$RA" "$PKI/ca.crt" register dev-real userr pass-real-1 127.0.0.1:5001 >/dev/null ||
	fail "first register of dev-real"
"$STB_RDV_CLIENT" "$RA" "$PKI/ca.crt" register dev-nat usern pass-nat-1 127.0.0.1:5002 >/dev/null ||
	fail "first register of dev-nat"
# the others register first from elsewhere (127.0.0.3)
for d in dev-pipe dev-cal $(seq -f 'dev-v%g' 0 10); do
	out=$("$LC" rdv "$RA" "$PKI/ca.crt" 127.0.0.3 "$d" user pass-okay 1 0)
	[ "$(field ok "$out")" = 1 ] || fail "first register of $d: $out"
done

# 2. 11 device IDs from 127.0.0.1, while dev-nat (registered from there) re-registers
bg attacker "$LC" rdv "$RA" "$PKI/ca.crt" 127.0.0.1 'dev-v%d' user wrongpass 11 50
bg realbox "$LC" rdv "$RA" "$PKI/ca.crt" 127.0.0.1 dev-nat usern pass-nat-1 6 200
reap attacker
att=$OUT
reap realbox
[ "$(field ok "$OUT")" = 6 ] &&
	pass "rendezvousd: a device behind the guesser's own address registered 6 of 6 times" ||
	fail "rendezvousd, many IDs from its address: the real device got $OUT"
g=$(field unauth "$att")
[ "$g" -le 10 ] && pass "rendezvousd: $g of 11 guesses for other IDs checked" ||
	fail "rendezvousd: the many-ID guesser got $att"

# 1. the real device's own ID from 127.0.0.1, the device from 127.0.0.2
bg attacker "$LC" rdv "$RA" "$PKI/ca.crt" 127.0.0.1 dev-real userr wrongpass 40 100
sleep 2.5 # more than auth.max_failures guesses ahead (each costs a scrypt)
bg realbox "$LC" rdv "$RA" "$PKI/ca.crt" 127.0.0.2 dev-real userr pass-real-1 8 400
reap attacker
att=$OUT
reap realbox
[ "$(field ok "$OUT")" = 8 ] &&
	pass "rendezvousd: the real device registered 8 of 8 times from 127.0.0.2 during the guessing" ||
	fail "rendezvousd, guessing its ID: the real device got $OUT"
g=$(field unauth "$att")
[ "$g" -le 10 ] && pass "rendezvousd: $g of 40 wrong passwords checked ($(field seconds "$att") s)" ||
	fail "rendezvousd: the guesser got $att"

# 13. pipelined: the cost of one scrypt first (4 wrong REGISTERs, one at a time)
c0=$(cpu "$RPID")
out=$("$LC" rdv "$RA" "$PKI/ca.crt" 127.0.0.5 dev-cal user wrongpass 4 0)
c1=$(cpu "$RPID")
[ "$(field unauth "$out")" = 4 ] || fail "calibration: $out"
per=$(((c1 - c0 + 3) / 4))
[ "$per" -ge 1 ] || per=1
# 20 pipelined on one connection, then 4 connections of 10 at once
out=$("$LC" rdv-pipe "$RA" "$PKI/ca.crt" 127.0.0.4 dev-pipe user wrongpass 20)
c2=$(cpu "$RPID")
for i in 1 2 3 4; do
	bg "pipe$i" "$LC" rdv-pipe "$RA" "$PKI/ca.crt" 127.0.0.6 dev-cal user wrongpass 10
done
sum=0
for i in 1 2 3 4; do
	reap "pipe$i"
	sum=$((sum + $(field unauth "$OUT")))
done
c3=$(cpu "$RPID")
log "scrypt: $per ticks each; 20 pipelined: $((c2 - c1)) ticks; 4 x 10: $((c3 - c2)) ticks"
[ "$(field unauth "$out")" -le 5 ] && [ $((c2 - c1)) -le $((per * 9)) ] &&
	pass "rendezvousd: 20 pipelined wrong REGISTERs: $(field unauth "$out") checked, ~$(((c2 - c1) / per)) scrypt runs (limit 5)" ||
	fail "rendezvousd pipelined: $out, $((c2 - c1)) ticks at $per a run"
# dev-cal is one failure short of auth.max_failures: the burst may spend
# that last guess, and, when a later frame arrives after it is settled, the
# one guess a source gets at a guarded identity (lockout.h), never more
[ "$sum" -le 2 ] && [ $((c3 - c2)) -le $((per * 5)) ] &&
	pass "rendezvousd: 4 x 10 pipelined for a device one guess short of its limit: $sum checked" ||
	fail "rendezvousd 4 x 10 pipelined: $sum checked, $((c3 - c2)) ticks at $per a run"
out=$("$LC" rdv "$RA" "$PKI/ca.crt" 127.0.0.7 dev-pipe user pass-okay 1 0)
[ "$(field ok "$out")" = 1 ] && pass "rendezvousd: dev-pipe itself still registers (from 127.0.0.7)" ||
	fail "dev-pipe after the burst: $out"
n=$(sqlite3 "$RDB" "SELECT count(*) FROM lockouts WHERE key NOT LIKE '% %'")
[ "$n" = 0 ] && pass "rendezvousd: no failure written to lockouts" ||
	fail "rendezvousd lockouts: $(sqlite3 "$RDB" 'SELECT * FROM lockouts')"
n=$(wc -l <"$T/rendezvousd.log")
[ "$n" -lt 150 ] && pass "rendezvousd: $n log lines" || fail "rendezvousd wrote $n log lines"
stop_daemon rendezvousd
[ "$RC" -eq 0 ] && pass "clean stop" || fail "exit status $RC"
finish
