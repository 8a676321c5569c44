#!/usr/bin/env bash
# appvetd end to end (flow E) on apk's fixture APKs: submit through a
# connection that drops mid-upload (stbctl resumes), vetting, publish, the
# QR PNG read back by zbarimg, checks by an anonymous TV on the check
# listener (ALLOW the SAFE app, DENY each UNSAFE fixture with its warning;
# forged, tampered, expired refused), an independent COSE reader (cbor2 +
# cryptography), re-vetting with a newer blocklist (the SAFE payload is then
# REVOKED and the next index says UNSAFE), the rows and the audit chain, and
# no store write per anonymous check.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
AVLIB="$(dirname "$0")/av_lib.py"
FX=${STB_APK_FIXTURES:?STB_APK_FIXTURES: the apk_fixtures test fixture}

pki_init
CHECK_PORT=$(free_port)
VET_PORT=$(free_port)
PROXY_PORT=$(free_port)
: >"$T/blocklist"
# a ClamAV database that knows the EICAR test file
mkdir -p "$T/clamav"
eicar_hex=$(printf '%s%s' 'X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-' \
	'ANTIVIRUS-TEST-FILE!$H+H*' | od -An -tx1 | tr -d ' \n')
echo "Stbcred.Test.EICAR:0:*:$eicar_hex" >"$T/clamav/test.ndb"
write_config appvetd "\"listeners\": [
    {\"name\": \"vetter\", \"listen\": \"127.0.0.1:$VET_PORT\", \"client_auth\": \"require\",
     \"roles\": \"appvetd,admin\",
     \"messages\": \"PING,APP_UPLOAD_BEGIN,APP_UPLOAD_CHUNK,APP_UPLOAD_OFFSET,APP_VET\"},
    {\"name\": \"check\", \"listen\": \"127.0.0.1:$CHECK_PORT\", \"client_auth\": \"none\",
     \"messages\": \"PING,APP_CHECK,APP_INDEX_EXPORT\"}],
  \"vet\": {\"blocklist\": \"$T/blocklist\", \"clamav_db\": \"$T/clamav/test.ndb\"}"
start_daemon appvetd
# cuts the connection once 6000 bytes came from the client: the TLS
# handshake and a few 1 KiB chunks
"$PY" "$AVLIB" proxy "$PROXY_PORT" "${PORT[appvetd]}" 6000 >>"$T/proxy.log" 2>&1 &
PID[proxy]=$!

tv() { "$STB_AV_CLIENT" "127.0.0.1:$CHECK_PORT" "$PKI/ca.crt" "$@"; }
app() { ctl appvetd app "$@"; }
jget() { "$PY" -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
# a "key value" line of stbctl's table output
tget() { awk -v k="$1" '$1 == k { print $2; exit }'; }
# the payload line (base45 has spaces)
tpay() { sed -n 's/^payload  *//p'; }

# waits until no app is still being vetted (one list per poll)
wait_vetted() {
	for _ in $(seq 1 300); do
		app list --json >"$T/list.json"
		"$PY" -c 'import json,sys; sys.exit(any(a["state"]=="submitted" for a in json.load(open(sys.argv[1]))))' \
			"$T/list.json" && return 0
		sleep 0.1
	done
	return 1
}

# ---- submit v1v2.apk (SAFE) in 1 KiB chunks through the dropping relay
for _ in $(seq 1 100); do
	(exec 3<>"/dev/tcp/127.0.0.1/$PROXY_PORT") 2>/dev/null && break
	sleep 0.05
done
if ID_SAFE=$("$STBCTL" -a "127.0.0.1:$PROXY_PORT" --ca "$PKI/ca.crt" --cert "$PKI/admin.crt" \
	--key "$PKI/admin.key" -T 5000 app submit "$FX/v1v2.apk" --name tv.safe --version 1.0 \
	--chunk 1024 2>"$T/submit.err"); then
	pass "submit through a dropped connection: $ID_SAFE"
else
	fail "submit through a dropped connection: $(cat "$T/submit.err")"
fi
grepq "connection lost at .*resuming" "$T/submit.err" && pass "stbctl resumed the upload" ||
	fail "no resume seen: $(cat "$T/submit.err")"
[ "${#ID_SAFE}" = 64 ] && pass "ID1 is 64 hex digits" || fail "ID1 '$ID_SAFE'"
sha=$(sha256sum "$FX/v1v2.apk" | cut -d' ' -f1)
[ "$(app show "$ID_SAFE" | tget sha256)" = "$sha" ] &&
	pass "the stored package has the file's SHA-256" || fail "package digest differs"
cmp -s "$FX/v1v2.apk" "$T/state-appvetd/packages/$ID_SAFE.apk" &&
	pass "the stored package is the file, byte for byte" || fail "stored package differs"
out=$(app submit "$FX/v1v2.apk" --name tv.safe --version 1.0 2>&1) &&
	fail "a second submission of the same app: $out" ||
	{ echo "$out" | grepq CONFLICT && pass "the same app twice is CONFLICT"; }
[ "$(app qr "$ID_SAFE" --submitted)" = "$ID_SAFE" ] && pass "the submission QR holds ID1" ||
	fail "submission QR text"
ID_SHORT=$(app submit "$FX/v2.apk" --name tv.short --version 1)

# each UNSAFE fixture, with the finding code its verdict must carry
declare -A BAD=([unsigned]=sig.unsigned [modified]=sig.v2.digest_mismatch
	[duplicate]=zip.duplicate_entry [bomb]=zip.ratio [traversal]=zip.path_traversal
	[perms]=perm.dangerous [eicar]=clamav.match [nomanifest]=apk.no_manifest)
declare -A ID
for f in "${!BAD[@]}"; do
	ID[$f]=$(app submit "$FX/$f.apk" --name "tv.$f" --version 1)
done

# ---- vetting
wait_vetted || fail "apps still not vetted"
flags=$("$PY" -c 'import json,sys; [print(a["id1"], a["flag"]) for a in json.load(open(sys.argv[1]))]' "$T/list.json")
echo "$flags" | grepq "^$ID_SAFE SAFE$" && pass "v1v2.apk vetted SAFE" || fail "v1v2.apk: $flags"
app findings "$ID_SAFE" --json | grepq '"severity": *"unsafe"' &&
	fail "the SAFE app has an unsafe finding" || pass "the SAFE app has no unsafe finding"
for f in "${!BAD[@]}"; do
	app findings "${ID[$f]}" --json >"$T/findings-$f.json"
	if echo "$flags" | grepq "^${ID[$f]} UNSAFE$" && grepq "\"${BAD[$f]}\"" "$T/findings-$f.json"; then
		pass "$f.apk vetted UNSAFE with ${BAD[$f]}"
	else
		fail "$f.apk: $(echo "$flags" | grep "${ID[$f]}") $(cat "$T/findings-$f.json")"
	fi
done
grepq '"tv.eicar"' "$T/list.json" && pass "app list shows the apps" || fail "app list"

# ---- publish, QR
P_SAFE=$(app publish "$ID_SAFE" | tpay)
P_SHORT=$(app publish "$ID_SHORT" --validity 1 | tpay)
declare -A P
for f in "${!BAD[@]}"; do
	P[$f]=$(app publish "${ID[$f]}" | tpay)
done
app qr "$ID_SAFE" --png "$T/safe.png" --svg "$T/safe.svg" >/dev/null
[ "$(zbarimg --raw -q "$T/safe.png" 2>/dev/null)" = "$P_SAFE" ] &&
	pass "zbarimg decodes the PNG to the exact payload" ||
	fail "zbarimg: '$(zbarimg --raw -q "$T/safe.png" 2>&1)'"
grepq "<svg" "$T/safe.svg" && pass "SVG written" || fail "no SVG"
app pubkey "$T/op.pem"
out=$("$PY" "$AVLIB" verify "$T/op.pem" "$P_SAFE") && echo "$out" | grepq "^flag=1 " &&
	pass "an independent COSE reader verifies the SAFE payload ($out)" || fail "COSE: $out"
out=$("$PY" "$AVLIB" verify "$T/op.pem" "${P[perms]}") && echo "$out" | grepq "^flag=2 " &&
	pass "... and an UNSAFE one" || fail "COSE: $out"

# ---- checks by the TV
out=$(tv check "$P_SAFE")
[ "$out" = "ALLOW SAFE tv.safe 1.0" ] && pass "check ALLOWs the SAFE app" || fail "check: $out"
# every UNSAFE fixture in one TV session, each with the reasons of its
# unsafe findings as the warning
order=("${!BAD[@]}")
pl=()
for f in "${order[@]}"; do pl+=("${P[$f]}"); done
tv check "${pl[@]}" >"$T/checks.txt"
i=0
for f in "${order[@]}"; do
	i=$((i + 1))
	out=$(sed -n "${i}p" "$T/checks.txt")
	want=$("$PY" -c 'import json,sys; print("; ".join(x["reason"] for x in json.load(open(sys.argv[1])) if x["severity"]=="unsafe")[:512])' "$T/findings-$f.json")
	if [ "$out" = "DENY UNSAFE tv.$f 1: $want" ]; then
		pass "check DENYs $f.apk with its warning: ${out#DENY UNSAFE }"
	else
		fail "check of $f.apk: '$out' (wanted the warning '$want')"
	fi
done
out=$(tv check "$("$PY" "$AVLIB" tamper "$P_SAFE")")
echo "$out" | grepq "^UNAUTHENTICATED" && pass "a tampered payload is UNAUTHENTICATED" ||
	fail "tampered: $out"
out=$(tv check "$("$PY" "$AVLIB" forge "${P[eicar]}" 1)")
echo "$out" | grepq "^UNAUTHENTICATED" && pass "a forged SAFE flag is UNAUTHENTICATED" ||
	fail "forged: $out"
out=$(tv check "STB1:NOT-A-PAYLOAD")
echo "$out" | grepq "^BAD_REQUEST" && pass "garbage is BAD_REQUEST" || fail "garbage: $out"
sleep 1.5
out=$(tv check "$P_SHORT")
echo "$out" | grepq "^EXPIRED" && pass "an expired payload is EXPIRED" || fail "expired: $out"
out=$("$STBCTL" -a "127.0.0.1:$CHECK_PORT" --ca "$PKI/ca.crt" --cert "$PKI/admin.crt" \
	--key "$PKI/admin.key" app list 2>&1) && fail "admin list on the check listener: $out" ||
	pass "the check listener serves no admin messages"
out=$("$STBCTL" -a "127.0.0.1:$VET_PORT" --ca "$PKI/ca.crt" --cert "$PKI/admin.crt" \
	--key "$PKI/admin.key" app publish "$ID_SAFE" 2>&1) && fail "publish on the vetter: $out" ||
	pass "the vetter listener serves no operator messages"

# no store write per anonymous check (ADMIN_STATS store_writes)
w0=$(ctl appvetd --json stats | grep -o '"store_writes": *[0-9]*' | grep -o '[0-9]*$')
out=$(tv flood 300 "$P_SAFE")
tv flood 100 "$("$PY" "$AVLIB" tamper "$P_SAFE")" >/dev/null
w1=$(ctl appvetd --json stats | grep -o '"store_writes": *[0-9]*' | grep -o '[0-9]*$')
[ "$out" = "OK 300" ] && pass "300 checks on one connection" || fail "flood: $out"
[ "$w0" = "$w1" ] && pass "anonymous checks wrote nothing ($w0 writes before and after)" ||
	fail "store writes went from $w0 to $w1"

# ---- the index, then re-vetting with a newer blocklist
app index export "$T/index1.cbor" >/dev/null
out=$("$PY" "$AVLIB" index "$T/op.pem" "$T/index1.cbor" "$ID_SAFE" "${ID[perms]}")
v1=$(echo "$out" | sed -n 's/^version=//p')
echo "$out" | grepq "^$ID_SAFE flag=1" && echo "$out" | grepq "^${ID[perms]} flag=2" &&
	pass "the signed index lists the apps (version $v1)" || fail "index: $out"
echo "$sha  v1v2.apk, newly blocked" >"$T/blocklist"
out=$(app revet "$ID_SAFE" | tget flag)
[ "$out" = UNSAFE ] && pass "re-vetting with the newer blocklist: UNSAFE" || fail "revet: $out"
out=$(tv check "$P_SAFE")
echo "$out" | grepq "^REVOKED" && pass "the old SAFE payload is now REVOKED: $out" ||
	fail "after revet: $out"
[ "$(app show "$ID_SAFE" | tget state)" = revoked ] && pass "the row says revoked" ||
	fail "state after revet"
app findings "$ID_SAFE" | grepq "^blocklist" && pass "the blocklist finding is recorded" ||
	fail "findings after revet: $(app findings "$ID_SAFE")"
tv index "$T/index2.cbor" >/dev/null
out=$("$PY" "$AVLIB" index "$T/op.pem" "$T/index2.cbor" "$ID_SAFE")
v2=$(echo "$out" | sed -n 's/^version=//p')
echo "$out" | grepq "^$ID_SAFE flag=2" && [ "${v2:-0}" -gt "${v1:-0}" ] &&
	pass "the next index (version $v2, from the check listener) says UNSAFE" ||
	fail "index after revet: $out"

# ---- audit
ctl appvetd audit verify >/dev/null && pass "audit chain verifies" || fail "audit verify"
aud=$(ctl appvetd audit export --limit 1000)
for ev in app_submit app_verdict app_publish app_revoke; do
	echo "$aud" | grepq "$ev" && pass "audit has $ev" || fail "audit lacks $ev"
done

# ---- metrics: every verdict, publication, revocation and answered check
m=$(http_get "127.0.0.1:${HPORT[appvetd]}" /appvetd/metrics)
for want in 'stbcred_app_verdicts_total{flag="SAFE"} 2' 'stbcred_app_verdicts_total{flag="UNSAFE"} 9' \
	'stbcred_app_publications_total{flag="SAFE"} 2' 'stbcred_app_publications_total{flag="UNSAFE"} 8' \
	'stbcred_app_revocations_total 1' 'stbcred_app_checks_total{result="DENY"} 8' \
	'stbcred_app_published 10'; do
	echo "$m" | grepq -F -x "$want" && pass "metrics: $want" || fail "metrics lack '$want'"
done

stop_daemon appvetd
[ "$RC" = 0 ] && pass "appvetd stops cleanly" || fail "exit status $RC"
finish
