#!/usr/bin/env bash
# Key sync over TLS end to end, as the terminal sees it: stb-client keysync
# at keymgmtd, the key arriving at the reference app platform and opening
# there (its own check, and `openssl cms -decrypt` by hand with the
# platform's key); the same sync again (OK, the first push_id, no second
# key at the platform); and the refusals with the status the terminal gets
# and nothing left behind at either side.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/kmt_lib.sh"

kmt_pki
K1=$(rand_key) K2=$(rand_key) K3=$(rand_key)
M1=8613800000001 M2=8613800000002
KMT_APPS="app.tv app.radio"
start_platform ap
start_km
printf 'k1,%s,term-1\nk2,%s,term-2\nk3,%s,term-3\n' "$K1" "$K2" "$K3" > "$T/keys.csv"
ctl keymgmtd keys import "$T/keys.csv" >/dev/null
ctl keymgmtd keys register "$M1" app.tv >/dev/null
ctl keymgmtd keys register "$M2" app.tv >/dev/null
ctl keymgmtd keys register "$M2" app.radio >/dev/null

now=$(date +%s)
out=$(kmt_sync "$K1" --timestamp "$now" k1 "$M1")
log "$out"
case $out in
"keysync ok key_id=k1 mdn=$M1 app_id=app.tv push_id="[0-9]*) pass "sync over TLS answered OK with the app and a push" ;;
*) fail "sync: $out" ;;
esac
push1=${out##*push_id=}
[ "$(wait_platform ap "key_id='k1' AND mdn='$M1' AND app_id='app.tv' AND push_id=$push1" 1)" = 1 ] &&
	pass "the key arrived at the platform under the push_id the terminal got" || fail "no key at the platform"
want=$(printf '%s' "$K1" | xxd -r -p | sha256sum | cut -d' ' -f1)
[ "$(platform_sql ap "SELECT key_sha256 FROM keys WHERE key_id='k1'")" = "$want" ] &&
	pass "the platform opened the envelope: the terminal's key" || fail "key digest at the platform"
# keys travel in batches (KEY_PUSH_BATCH): one envelope of KM_PUSH_ENTRY TLVs
platform_sql ap "SELECT hex(b.wrapped) FROM keys k JOIN batches b ON b.first_push_id = k.batch_id
	WHERE k.key_id='k1'" | xxd -r -p > "$T/k1.der"
openssl cms -decrypt -inform DER -in "$T/k1.der" -inkey "$PKI/app-platform.key" \
	-recip "$PKI/app-platform.crt" -out "$T/k1.bin" 2>>"$T/cms.log" &&
	# KM_PUSH_ENTRY 0x0517, then inside it KM_KEY 0x0502 with the key's length and bytes
	xxd -p "$T/k1.bin" | tr -d '\n' | grep -q "^0517.*0502$(printf '%08x' $((${#K1} / 2)))$K1" &&
	pass "openssl cms -decrypt opens the batch with the platform's key: k1's key is in it" ||
	fail "openssl cms -decrypt of the pushed batch"

# the same proof again is a replay; the same sync with a fresh proof is OK
out=$(kmt_sync "$K1" --timestamp "$now" k1 "$M1")
case $out in *REPLAY*) pass "the same proof again: REPLAY" ;; *) fail "replayed proof: $out" ;; esac
out=$(kmt_sync "$K1" --timestamp $((now - 1)) k1 "$M1")
[ "$out" = "keysync ok key_id=k1 mdn=$M1 app_id=app.tv push_id=$push1" ] &&
	pass "the same sync again: OK with the first push_id" || fail "repeat: $out"

# refusals, as the terminal sees them
expect() { # WHAT STATUS OUTPUT
	case $3 in *"keysync: $2:"*) pass "$1: $2" ;; *) fail "$1: want $2, got: $3" ;; esac
}
expect "a wrong key" UNAUTHENTICATED "$(kmt_sync "$K2" k1 "$M1")"
expect "an unknown key_id" UNAUTHENTICATED "$(kmt_sync "$K2" k9 "$M1")"
expect "a stale timestamp" EXPIRED "$(kmt_sync "$K2" --timestamp $((now - 3600)) k2 "$M1")"
expect "a malformed MDN" BAD_REQUEST "$(kmt_sync "$K2" k2 86-1380)"
expect "an MDN without the service" NOT_FOUND "$(kmt_sync "$K2" k2 8613800000099)"
expect "an app the MDN has not opened" NOT_FOUND "$(kmt_sync "$K2" --app app.radio k2 "$M1")"
out=$(kmt_sync "$K2" k2 "$M2")
expect "several apps and none named" BAD_REQUEST "$out"
case $out in *app.radio*app.tv* | *app.tv*app.radio*) pass "the refusal lists the MDN's apps" ;; *) fail "apps not listed: $out" ;; esac
expect "a key bound to another MDN" CONFLICT "$(kmt_sync "$K1" --app app.tv k1 "$M2")"

# nothing of the refusals is left behind; a named app works
sleep 0.3
[ "$(platform_sql ap "SELECT count(*) FROM keys")" = 1 ] &&
	pass "the refusals and the repeat left one key at the platform" || fail "platform rows: $(platform_sql ap "SELECT key_id FROM keys")"
b=$(ctl keymgmtd --json keys bindings)
[ "$(grep -o '"key_id"' <<<"$b" | wc -l)" = 1 ] && pass "one binding at keymgmtd" || fail "bindings: $b"
out=$(kmt_sync "$K2" --app app.radio k2 "$M2")
case $out in "keysync ok key_id=k2 mdn=$M2 app_id=app.radio"*) pass "several apps, one named: OK" ;; *) fail "named app: $out" ;; esac
[ "$(wait_platform ap "key_id='k2' AND app_id='app.radio'" 1)" = 1 ] &&
	pass "the key for the named app arrived" || fail "k2 not at the platform"

finish
