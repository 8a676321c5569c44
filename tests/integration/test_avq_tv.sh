#!/usr/bin/env bash
# flow E from the TV's side: stb-client app-check (libstbclient's
# stb_app_check and stb_app_check_offline) against a real appvetd with
# apk's fixture APKs: online ALLOW for a SAFE app and DENY with the warning
# for an UNSAFE one, the QR PNG scanned with zbar (--image), forged,
# tampered and expired payloads refused; the signed index verified offline
# (and by an independent COSE reader), an older index refused once a newer
# one was seen (the TV's rollback counter), an expired one refused.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
READER=$STB_SRC/tests/unit/cose_reader.py
AVLIB=$STB_SRC/tests/integration/av_lib.py
FX=${STB_APK_FIXTURES:?apk fixtures}

pki_init
CHECK_PORT=$(free_port)
: >"$T/blocklist"
write_config appvetd "\"listeners\": [
    {\"name\": \"check\", \"listen\": \"127.0.0.1:$CHECK_PORT\", \"client_auth\": \"none\",
     \"messages\": \"APP_CHECK,APP_INDEX_EXPORT\"}],
  \"vet\": {\"blocklist\": \"$T/blocklist\"}"
start_daemon appvetd

app() { ctl appvetd app "$@"; }
jget() { "$PY" -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
# tv ARGS...: stb-client app-check as a TV; prints its output, sets TV_RC
tv() {
	TV_RC=0
	TV_OUT=$("$STB_CLIENT" -a "127.0.0.1:$CHECK_PORT" --ca "$PKI/ca.crt" app-check "$@" 2>&1) ||
		TV_RC=$?
}
# off STATE INDEX ARGS...: offline check trusting the operator's key
off() {
	local st=$1 ix=$2
	shift 2
	tv --index "$ix" --key "$T/op.pem" --state "$st" "$@"
}
wait_vetted() {
	local st
	for _ in $(seq 1 400); do
		st=$(app show "$1" --json | jget state)
		[ "$st" = vetted ] && return 0
		sleep 0.05
	done
	return 1
}

# ---- the operator's side, as stbctl does it
ID_SAFE=$(app submit "$FX/v1v2.apk" --name tv.player --version 1.0)
ID_PERM=$(app submit "$FX/perms.apk" --name tv.spy --version 2.0)
ID_LATE=$(app submit "$FX/v2.apk" --name tv.late --version 3.0)
for id in "$ID_SAFE" "$ID_PERM" "$ID_LATE"; do wait_vetted "$id" || fail "$id not vetted"; done
P_SAFE=$(app publish "$ID_SAFE" --json | jget payload)
P_PERM=$(app publish "$ID_PERM" --json | jget payload)
t_short=$(date +%s)
P_SHORT=$(app publish "$ID_LATE" --validity 4 --json | jget payload)
tv "$P_SHORT"
[ "$TV_RC" = 0 ] && echo "$TV_OUT" | grepq "^ALLOW app=tv.late" &&
	pass "online: a payload valid for 4 s is ALLOWed at once" || fail "short: rc $TV_RC $TV_OUT"
app pubkey "$T/op.pem" >/dev/null
app qr "$ID_SAFE" --png "$T/safe.png" >/dev/null
app index export "$T/index1.cose" >/dev/null
[ -s "$T/op.pem" ] && [ -s "$T/index1.cose" ] && [ -s "$T/safe.png" ] &&
	pass "published 3 apps; key, QR image and index exported" || fail "operator side"

# ---- online
tv "$P_SAFE"
[ "$TV_RC" = 0 ] && [ "$TV_OUT" = "ALLOW app=tv.player version=1.0" ] &&
	pass "online: the SAFE app is ALLOWed ($TV_OUT)" || fail "online SAFE: rc $TV_RC $TV_OUT"
tv "$P_PERM"
[ "$TV_RC" = 3 ] && echo "$TV_OUT" | grepq '^DENY app=tv.spy version=2.0 warning=".*SEND_SMS' &&
	pass "online: the UNSAFE app is DENYed with its warning" || fail "online UNSAFE: rc $TV_RC $TV_OUT"
tv --image "$T/safe.png"
[ "$TV_RC" = 0 ] && [ "$TV_OUT" = "ALLOW app=tv.player version=1.0" ] &&
	pass "online: the QR PNG scanned by zbar is ALLOWed" || fail "--image: rc $TV_RC $TV_OUT"
TAMPERED=$("$PY" "$AVLIB" tamper "$P_SAFE")
tv "$TAMPERED"
[ "$TV_RC" = 1 ] && echo "$TV_OUT" | grepq "UNAUTHENTICATED" &&
	pass "online: a tampered payload is refused UNAUTHENTICATED" || fail "tampered: rc $TV_RC $TV_OUT"
FORGED=$("$PY" "$AVLIB" forge "$P_PERM" 1)
tv "$FORGED"
[ "$TV_RC" = 1 ] && echo "$TV_OUT" | grepq "UNAUTHENTICATED" &&
	pass "online: a forged SAFE flag is refused UNAUTHENTICATED" || fail "forged: rc $TV_RC $TV_OUT"
# the verified-payload cache (check.cache_size): P_SHORT and P_PERM once,
# P_SAFE twice (text, PNG); the tampered and forged ones are not kept
tv "$FORGED"
[ "$TV_RC" = 1 ] && echo "$TV_OUT" | grepq "UNAUTHENTICATED" &&
	pass "online: the forged payload again: still refused" || fail "forged twice: rc $TV_RC $TV_OUT"
avm=$(http_get "127.0.0.1:${HPORT[appvetd]}" /appvetd/metrics)
mval() { echo "$avm" | awk -v k="$1" '$1 == k { print $2 }'; }
[ "$(mval stbcred_app_check_cache_hits_total)" = 1 ] &&
	[ "$(mval stbcred_app_check_cache_misses_total)" = 6 ] &&
	[ "$(mval stbcred_app_check_cache_entries)" = 3 ] &&
	pass "checks: 1 of 7 verified before; 3 payloads remembered, none of the forged" ||
	fail "check cache metrics: $(echo "$avm" | grep check_cache)"
# past its expiry, the remembered payload is refused like any other
while [ "$(date +%s)" -le $((t_short + 5)) ]; do sleep 0.2; done
tv "$P_SHORT"
[ "$TV_RC" = 1 ] && echo "$TV_OUT" | grepq "EXPIRED" &&
	pass "online: an expired payload is refused EXPIRED" || fail "expired: rc $TV_RC $TV_OUT"

# ---- an independent COSE reader on what the daemon signed
out=$("$PY" "$READER" --key "$T/op.pem" --payload "$P_PERM") && echo "$out" | grepq '"flag": 2' &&
	pass "cose_reader verifies the daemon's UNSAFE payload" || fail "cose_reader payload: $out"
out=$("$PY" "$READER" --key "$T/op.pem" --index "$T/index1.cose") &&
	v1=$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["version"])' "$out") &&
	pass "cose_reader verifies the daemon's index (version $v1)" || fail "cose_reader index: $out"

# ---- offline against the index
off "$T/tv.state" "$T/index1.cose" "$P_SAFE"
[ "$TV_RC" = 0 ] && [ "$TV_OUT" = "ALLOW index=$v1" ] &&
	pass "offline: the SAFE app is ALLOWed by index $v1" || fail "offline SAFE: rc $TV_RC $TV_OUT"
[ "$(cat "$T/tv.state")" = "$v1" ] && pass "the TV stored index version $v1" ||
	fail "state file: $(cat "$T/tv.state" 2>&1)"
off "$T/tv.state" "$T/index1.cose" "$P_PERM"
[ "$TV_RC" = 3 ] && echo "$TV_OUT" | grepq "^DENY index=$v1 warning=\".*SEND_SMS" &&
	pass "offline: the UNSAFE app is DENYed with its warning" || fail "offline UNSAFE: rc $TV_RC $TV_OUT"
off "$T/tv.state" "$T/index1.cose" "$TAMPERED"
[ "$TV_RC" = 1 ] && echo "$TV_OUT" | grepq "UNAUTHENTICATED" &&
	pass "offline: a tampered payload is refused" || fail "offline tampered: rc $TV_RC $TV_OUT"
off "$T/tv.state" "$T/index1.cose" "$FORGED"
[ "$TV_RC" = 1 ] && echo "$TV_OUT" | grepq "UNAUTHENTICATED" &&
	pass "offline: a forged payload is refused" || fail "offline forged: rc $TV_RC $TV_OUT"
off "$T/tv.state" "$T/index1.cose" "$P_SHORT"
[ "$TV_RC" = 1 ] && echo "$TV_OUT" | grepq "EXPIRED" &&
	pass "offline: an expired payload is refused" || fail "offline expired: rc $TV_RC $TV_OUT"
cp "$T/index1.cose" "$T/index-bad.cose"
printf '\001' | dd of="$T/index-bad.cose" bs=1 seek=$(($(stat -c %s "$T/index1.cose") - 3)) \
	conv=notrunc 2>/dev/null
off "$T/tv.state" "$T/index-bad.cose" "$P_SAFE"
[ "$TV_RC" = 1 ] && echo "$TV_OUT" | grepq "index: UNAUTHENTICATED" &&
	pass "offline: an index with a changed signature byte is refused" ||
	fail "tampered index: rc $TV_RC $TV_OUT"
"$PY" -c '
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives import serialization
import sys
k = ec.generate_private_key(ec.SECP256R1()).public_key()
open(sys.argv[1], "wb").write(k.public_bytes(serialization.Encoding.PEM,
    serialization.PublicFormat.SubjectPublicKeyInfo))' "$T/other.pem"
tv --index "$T/index1.cose" --key "$T/other.pem" "$P_SAFE"
[ "$TV_RC" = 1 ] && echo "$TV_OUT" | grepq "index: UNAUTHENTICATED" &&
	pass "offline: an index not signed by the trusted key is refused" ||
	fail "foreign key: rc $TV_RC $TV_OUT"
off "$T/tv.state" "$T/index1.cose" --at $(($(date +%s) + 2 * 86400)) "$P_SAFE"
[ "$TV_RC" = 1 ] && echo "$TV_OUT" | grepq "index: EXPIRED" &&
	pass "offline: an expired index is refused" || fail "expired index: rc $TV_RC $TV_OUT"

# ---- re-vetting turns the SAFE app UNSAFE; the next index says so
sha=$(sha256sum "$FX/v1v2.apk" | cut -d' ' -f1)
echo "$sha" >"$T/blocklist"
[ "$(app revet "$ID_SAFE" --json | jget flag)" = UNSAFE ] && pass "re-vetted UNSAFE" ||
	fail "revet"
tv "$P_SAFE"
[ "$TV_RC" = 1 ] && echo "$TV_OUT" | grepq "REVOKED" &&
	pass "online: the re-vetted app's old payload is REVOKED" || fail "revoked: rc $TV_RC $TV_OUT"
app index export "$T/index2.cose" >/dev/null
off "$T/tv.state" "$T/index2.cose" "$P_SAFE"
v2=$(cat "$T/tv.state")
[ "$TV_RC" = 3 ] && echo "$TV_OUT" | grepq "^DENY index=$v2 " && [ "$v2" -gt "$v1" ] &&
	pass "offline: index $v2 DENYs the re-vetted app" || fail "offline after revet: rc $TV_RC $TV_OUT"
off "$T/tv.state" "$T/index1.cose" "$P_SAFE"
[ "$TV_RC" = 1 ] && echo "$TV_OUT" | grepq "index: REPLAY" && [ "$(cat "$T/tv.state")" = "$v2" ] &&
	pass "offline: the older index $v1 is refused after $v2 (rollback)" ||
	fail "rollback: rc $TV_RC $TV_OUT"
[ "$(sqlite3 "$T/state-appvetd/appvetd.db" "SELECT flag, revoked FROM apps WHERE id1='$ID_SAFE'")" = "2|1" ] &&
	pass "appvetd's row: UNSAFE and revoked" || fail "row: $(sqlite3 "$T/state-appvetd/appvetd.db" "SELECT flag, revoked FROM apps WHERE id1='$ID_SAFE'")"

# ---- usage and a missing zbarimg
tv --image "$T/safe.png" "$P_SAFE"
[ "$TV_RC" = 2 ] && pass "a payload and --image together are a usage error" || fail "usage: $TV_RC"
TV_RC=0
out=$(PATH=/nonexistent "$STB_CLIENT" -a "127.0.0.1:$CHECK_PORT" --ca "$PKI/ca.crt" app-check \
	--image "$T/safe.png" 2>&1) || TV_RC=$?
[ "$TV_RC" = 1 ] && echo "$out" | grepq "needs zbarimg" &&
	pass "without zbarimg, --image says what is missing" || fail "no zbar: rc $TV_RC $out"

stop_daemon appvetd
[ "$RC" = 0 ] && pass "appvetd stops cleanly" || fail "exit status $RC"
finish
