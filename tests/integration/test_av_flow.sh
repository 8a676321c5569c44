#!/usr/bin/env bash
# appvetd end to end (flow E): submit through a connection that drops
# mid-upload (stbctl resumes), vetting, publish, the QR PNG read back by
# zbarimg, checks by an anonymous TV on the check listener (ALLOW SAFE, DENY
# UNSAFE with the warning; forged, tampered, expired refused), an
# independent COSE reader, re-vetting with a newer blocklist (the SAFE
# payload is then REVOKED and the next index says UNSAFE), the rows and the
# audit chain, and no store write per anonymous check.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
AVLIB="$(dirname "$0")/av_lib.py"

pki_init
CHECK_PORT=$(free_port)
VET_PORT=$(free_port)
PROXY_PORT=$(free_port)
: >"$T/blocklist"
write_config appvetd "\"listeners\": [
    {\"name\": \"vetter\", \"listen\": \"127.0.0.1:$VET_PORT\", \"client_auth\": \"require\",
     \"roles\": \"appvetd,admin\",
     \"messages\": \"PING,APP_UPLOAD_BEGIN,APP_UPLOAD_CHUNK,APP_UPLOAD_OFFSET,APP_VET\"},
    {\"name\": \"check\", \"listen\": \"127.0.0.1:$CHECK_PORT\", \"client_auth\": \"none\",
     \"messages\": \"PING,APP_CHECK,APP_INDEX_EXPORT\"}],
  \"vet\": {\"blocklist\": \"$T/blocklist\"}"
start_daemon appvetd
"$PY" "$AVLIB" proxy "$PROXY_PORT" "${PORT[appvetd]}" 300000 >>"$T/proxy.log" 2>&1 &
PID[proxy]=$!

tv() { "$STB_AV_CLIENT" "127.0.0.1:$CHECK_PORT" "$PKI/ca.crt" "$@"; }
app() { ctl appvetd app "$@"; }
jget() { "$PY" -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

# ---- fixtures (apk's fixtures, when they are there, are in $STB_APK_FIXTURES)
mkdir -p "$T/fx/a"
head -c 700000 /dev/urandom >"$T/fx/a/assets.bin"
echo "hello" >"$T/fx/a/readme.txt"
(cd "$T/fx/a" && zip -q -0 ../safe.apk assets.bin readme.txt)
(cd "$T/fx/a" && zip -q ../other.apk readme.txt)
head -c 5000 /dev/urandom >"$T/fx/unsafe.apk" # not a ZIP at all

wait_vetted() {
	local id=$1 st
	for _ in $(seq 1 200); do
		st=$(app show "$id" --json | jget state)
		[ "$st" = vetted ] || [ "$st" = published ] && return 0
		sleep 0.05
	done
	return 1
}

# ---- submit, with the connection cut after 300000 bytes
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PROXY_PORT") 2>/dev/null && break; sleep 0.05; done
if ID_SAFE=$("$STBCTL" -a "127.0.0.1:$PROXY_PORT" --ca "$PKI/ca.crt" --cert "$PKI/admin.crt" \
	--key "$PKI/admin.key" -T 5000 app submit "$T/fx/safe.apk" --name tv.safe --version 1.0 \
	2>"$T/submit.err"); then
	pass "submit through a dropped connection: $ID_SAFE"
else
	fail "submit through a dropped connection: $(cat "$T/submit.err")"
fi
grepq "connection lost at .*resuming" "$T/submit.err" && pass "stbctl resumed the upload" ||
	fail "no resume seen: $(cat "$T/submit.err")"
[ "${#ID_SAFE}" = 64 ] && pass "ID1 is 64 hex digits" || fail "ID1 '$ID_SAFE'"
sha=$(sha256sum "$T/fx/safe.apk" | cut -d' ' -f1)
[ "$(app show "$ID_SAFE" --json | jget sha256)" = "$sha" ] &&
	pass "the stored package has the file's SHA-256" || fail "package digest differs"
cmp -s "$T/fx/safe.apk" "$T/state-appvetd/packages/$ID_SAFE.apk" &&
	pass "the stored package is the file, byte for byte" || fail "stored package differs"
out=$(app submit "$T/fx/safe.apk" --name tv.safe --version 1.0 2>&1) &&
	fail "a second submission of the same app: $out" ||
	{ echo "$out" | grepq CONFLICT && pass "the same app twice is CONFLICT"; }
ID_BAD=$(app submit "$T/fx/unsafe.apk" --name tv.bad --version 2)
ID_OLD=$(app submit "$T/fx/other.apk" --name tv.short --version 3)
[ "$(app qr "$ID_BAD" --submitted)" = "$ID_BAD" ] && pass "the submission QR holds ID1" ||
	fail "submission QR text"

# ---- vetting
for id in "$ID_SAFE" "$ID_BAD" "$ID_OLD"; do
	wait_vetted "$id" || fail "$id not vetted"
done
[ "$(app show "$ID_SAFE" --json | jget flag)" = SAFE ] && pass "safe.apk vetted SAFE" ||
	fail "safe.apk flag"
[ "$(app show "$ID_BAD" --json | jget flag)" = UNSAFE ] && pass "unsafe.apk vetted UNSAFE" ||
	fail "unsafe.apk flag"
app findings "$ID_BAD" | grepq "zip\." && pass "unsafe.apk has its ZIP finding" ||
	fail "findings of unsafe.apk: $(app findings "$ID_BAD")"
app list | grepq "tv.bad" && pass "app list shows the apps" || fail "app list"

# ---- publish, QR
P_SAFE=$(app publish "$ID_SAFE" --json | jget payload)
P_BAD=$(app publish "$ID_BAD" --json | jget payload)
P_OLD=$(app publish "$ID_OLD" --validity 1 --json | jget payload)
app qr "$ID_SAFE" --png "$T/safe.png" --svg "$T/safe.svg" >/dev/null
[ "$(zbarimg --raw -q "$T/safe.png" 2>/dev/null)" = "$P_SAFE" ] &&
	pass "zbarimg decodes the PNG to the exact payload" ||
	fail "zbarimg: '$(zbarimg --raw -q "$T/safe.png" 2>&1)'"
grepq "<svg" "$T/safe.svg" && pass "SVG written" || fail "no SVG"
app pubkey "$T/op.pem"
out=$("$PY" "$AVLIB" verify "$T/op.pem" "$P_SAFE") && echo "$out" | grepq "^flag=1 " &&
	pass "an independent COSE reader verifies the SAFE payload ($out)" || fail "COSE: $out"
out=$("$PY" "$AVLIB" verify "$T/op.pem" "$P_BAD") && echo "$out" | grepq "^flag=2 " &&
	pass "... and the UNSAFE one" || fail "COSE: $out"

# ---- checks by the TV
out=$(tv check "$P_SAFE")
[ "$out" = "ALLOW SAFE tv.safe 1.0" ] && pass "check ALLOWs the SAFE app" || fail "check: $out"
out=$(tv check "$P_BAD")
echo "$out" | grepq "^DENY UNSAFE tv.bad 2: .*ZIP" && pass "check DENYs the UNSAFE app: $out" ||
	fail "check of the unsafe app: $out"
out=$(tv check "$("$PY" "$AVLIB" tamper "$P_SAFE")")
echo "$out" | grepq "^UNAUTHENTICATED" && pass "a tampered payload is UNAUTHENTICATED" ||
	fail "tampered: $out"
out=$(tv check "$("$PY" "$AVLIB" forge "$P_BAD" 1)")
echo "$out" | grepq "^UNAUTHENTICATED" && pass "a forged SAFE flag is UNAUTHENTICATED" ||
	fail "forged: $out"
out=$(tv check "STB1:NOT-A-PAYLOAD")
echo "$out" | grepq "^BAD_REQUEST" && pass "garbage is BAD_REQUEST" || fail "garbage: $out"
sleep 2
out=$(tv check "$P_OLD")
echo "$out" | grepq "^EXPIRED" && pass "an expired payload is EXPIRED" || fail "expired: $out"
out=$("$STBCTL" -a "127.0.0.1:$CHECK_PORT" --ca "$PKI/ca.crt" --cert "$PKI/admin.crt" \
	--key "$PKI/admin.key" app list 2>&1) && fail "admin list on the check listener: $out" ||
	pass "the check listener serves no admin messages"

# no store write per anonymous check (ADMIN_STATS store_writes)
w0=$(ctl appvetd --json stats | jget store_writes)
out=$(tv flood 300 "$P_SAFE")
tv flood 100 "$("$PY" "$AVLIB" tamper "$P_SAFE")" >/dev/null
w1=$(ctl appvetd --json stats | jget store_writes)
[ "$out" = "OK 300" ] && pass "300 checks on one connection" || fail "flood: $out"
[ "$w0" = "$w1" ] && pass "anonymous checks wrote nothing ($w0 writes before and after)" ||
	fail "store writes went from $w0 to $w1"

# ---- the index, then re-vetting with a newer blocklist
app index export "$T/index1.cbor" >/dev/null
out=$("$PY" "$AVLIB" index "$T/op.pem" "$T/index1.cbor" "$ID_SAFE" "$ID_BAD")
v1=$(echo "$out" | sed -n 's/^version=//p')
echo "$out" | grepq "^$ID_SAFE flag=1" && echo "$out" | grepq "^$ID_BAD flag=2" &&
	pass "the signed index lists both apps (version $v1)" || fail "index: $out"
echo "$sha  safe.apk, newly blocked" >"$T/blocklist"
out=$(app revet "$ID_SAFE" --json | jget flag)
[ "$out" = UNSAFE ] && pass "re-vetting with the newer blocklist: UNSAFE" || fail "revet: $out"
out=$(tv check "$P_SAFE")
echo "$out" | grepq "^REVOKED" && pass "the old SAFE payload is now REVOKED: $out" ||
	fail "after revet: $out"
[ "$(app show "$ID_SAFE" --json | jget state)" = revoked ] && pass "the row says revoked" ||
	fail "state after revet"
app findings "$ID_SAFE" | grepq blocklist && pass "the blocklist finding is recorded" ||
	fail "findings after revet"
tv index "$T/index2.cbor" >/dev/null
out=$("$PY" "$AVLIB" index "$T/op.pem" "$T/index2.cbor" "$ID_SAFE")
v2=$(echo "$out" | sed -n 's/^version=//p')
echo "$out" | grepq "^$ID_SAFE flag=2" && [ "$v2" -gt "$v1" ] &&
	pass "the next index (version $v2, from the check listener) says UNSAFE" ||
	fail "index after revet: $out"

# ---- audit
ctl appvetd audit verify >/dev/null && pass "audit chain verifies" || fail "audit verify"
aud=$(ctl appvetd audit export)
for ev in app_submit app_verdict app_publish app_revoke; do
	echo "$aud" | grepq "$ev" && pass "audit has $ev" || fail "audit lacks $ev"
done

stop_daemon appvetd
[ "$RC" = 0 ] && pass "appvetd stops cleanly" || fail "exit status $RC"
finish
