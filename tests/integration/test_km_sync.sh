#!/usr/bin/env bash
# keymgmtd key sync end to end with the reference app platform: services
# (portal), KEY_SYNC over TLS and every refusal with the status the terminal
# sees and no row left behind, the idempotent repeat, the bind and its push
# in one write, delivery (the key opens at the platform), SMS through the
# HTTPS Kannel callback (client certificate, role sms-gw), cancel and unbind
# queueing KEY_REVOKE, a failed push and redeliver, admin lists, metrics.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/kmt_lib.sh"
. "$(dirname "$0")/km_lib.sh"

kmt_pki
K1=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
K2=ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100
K3=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff
M1=8613800000001 M2=8613800000002 M3=8613800000003
echo accept >"$T/control"
start_platform ap "\"control_file\": \"$T/control\""
cat >"$T/platforms.json" <<JSON
{"tv.app": {"address": "127.0.0.1:${PORT[ap]}", "ca": "$PKI/ca.crt", "cert": "$PKI/app-platform.crt"},
 "music.app": {"address": "127.0.0.1:${PORT[ap]}", "ca": "$PKI/ca.crt", "cert": "$PKI/app-platform.crt"}}
JSON
KM_MAX_TRIES=3 km_start
printf 'k1,%s\nk2,%s\nk3,%s\nk4,%s\n' "$K1" "$K2" "$K3" "$K1" >"$T/keys.csv"
ctl_as manufacturer keys import "$T/keys.csv" >/dev/null || fail "import"

# --- -t checks the platforms file ---
echo '{"tv.app": {"address": "127.0.0.1:1", "ca": "/x", "cert": "/nope.crt"}}' >"$T/badplat.json"
echo "{\"platforms_file\": \"$T/badplat.json\"}" >"$T/bad.json"
out=$("$STB_BIN_keymgmtd" -t -c "$T/bad.json" 2>&1) && fail "-t accepted a missing cert" ||
	{ [[ $out == *"/nope.crt"* ]] && pass "-t checks the platforms' certificates" || fail "-t: $out"; }
echo '{"tv.app": {"address": "127.0.0.1:1", "ca": "/x", "cert": "/x", "port": 1}}' >"$T/badplat.json"
out=$("$STB_BIN_keymgmtd" -t -c "$T/bad.json" 2>&1) && fail "-t accepted an unknown key" ||
	{ [[ $out == *"badplat.json: tv.app: unknown key 'port'"* ]] && pass "-t names an unknown platform key" ||
		fail "-t unknown key: $out"; }

# --- services ---
out=$(ctl_as portal keys register "$M1" tv.app) && pass "portal registers $M1 tv.app" || fail "register: $out"
ctl_as portal keys register "$M1" tv.app >/dev/null && pass "registering again is OK" || fail "register again"
ctl_as portal keys register "$M3" tv.app >/dev/null && ctl_as portal keys register "$M3" music.app >/dev/null ||
	fail "register M3"
out=$(ctl_as portal keys register "$M2" nope.app 2>&1) && fail "unknown app registered" ||
	{ [[ $out == *NOT_FOUND* ]] && pass "an app that is no platform is NOT_FOUND" || fail "nope.app: $out"; }
out=$(ctl_as portal keys register 12345 tv.app 2>&1) && fail "short MDN registered" ||
	{ [[ $out == *BAD_REQUEST* ]] && pass "a malformed MDN is BAD_REQUEST" || fail "mdn: $out"; }
out=$(ctl_as manufacturer keys register "$M2" tv.app 2>&1) && fail "manufacturer registered" ||
	{ [[ $out == *FORBIDDEN* ]] && pass "only a portal (or admin) registers" || fail "role: $out"; }
[ "$(km_sql "SELECT count(*) FROM services")" = 3 ] && pass "three services" || fail "services"

state() { km_sql "SELECT (SELECT count(*) FROM bindings) || ' ' || (SELECT count(*) FROM outbox) || ' ' || (SELECT count(*) FROM sync_macs)"; }
# refused CASE STATUS ARGS...: the sync is refused with STATUS and leaves nothing
refused() {
	local what=$1 want=$2 before out
	shift 2
	before=$(state)
	if out=$(sync "$@"); then
		fail "$what: accepted: $out"
	elif [[ $out == *"keysync: $want:"* ]] && [ "$(state)" = "$before" ]; then
		pass "$what: $want, no row"
	else
		fail "$what: want $want, got '$out', rows '$before' -> '$(state)'"
	fi
}

# --- the sync and its delivery ---
out=$(sync "$K1" k1 "$M1") && [[ $out == "keysync ok key_id=k1 mdn=$M1 app_id=tv.app push_id="* ]] &&
	pass "KEY_SYNC binds k1 to $M1 tv.app" || fail "sync k1: $out"
P1=${out##*push_id=}
[ "$(km_sql "SELECT push_id FROM bindings WHERE key_id='k1' AND app_id='tv.app' AND mdn='$M1'")" = "$P1" ] &&
	[ "$(km_sql "SELECT dest || ' ' || msg_type FROM outbox WHERE id=$P1")" = "tv.app 1296" ] &&
	pass "the binding and its KEY_PUSH row are there together" || fail "binding/outbox rows"
delivered() { [ "$(platform_sql ap "SELECT count(*) FROM keys WHERE key_id='$1' AND push_id=${2:-0}")" = 1 ]; }
wait_for delivered k1 "$P1" && pass "the key arrives at the platform with its push_id" || fail "k1 not delivered"
want=$(printf '%s' "$K1" | xxd -r -p | sha256sum | cut -d' ' -f1)
[ "$(platform_sql ap "SELECT key_sha256 FROM keys WHERE push_id=$P1")" = "$want" ] &&
	pass "the platform opened the very key" || fail "key digest at the platform"
pushed() { [ "$(km_sql "SELECT state FROM outbox WHERE id=$1")" = delivered ]; }
wait_for pushed "$P1" &&
	pass "the push is marked delivered" || fail "push state: $(km_sql "SELECT state FROM outbox WHERE id=$P1")"
km_sql "SELECT event FROM audit" | grepq '^bind$' && pass "bind audited" || fail "bind audit"

now=$(date +%s)
out=$(sync "$K1" --timestamp $((now + 1)) k1 "$M1") && [[ $out == *"push_id=$P1" ]] &&
	[ "$(km_sql "SELECT count(*) FROM outbox")" = 1 ] &&
	pass "the same sync again: OK with the first push, no second push" || fail "repeat: $out"
sleep 0.3
[ "$(platform_sql ap "SELECT count(*) FROM keys")" = 1 ] && pass "the platform holds the key once" ||
	fail "platform rows: $(platform_sql ap "SELECT count(*) FROM keys")"

# --- refusals: the status the terminal sees, and no row ---
refused "wrong key" UNAUTHENTICATED "$K1" k2 "$M1"
refused "unknown key_id" UNAUTHENTICATED "$K2" nokey "$M1"
refused "stale timestamp" EXPIRED "$K2" --timestamp $((now - 3600)) k2 "$M1"
refused "future timestamp" EXPIRED "$K2" --timestamp $((now + 3600)) k2 "$M1"
refused "MDN not registered" NOT_FOUND "$K2" k2 "$M2"
refused "app not opened for the MDN" NOT_FOUND "$K2" --app music.app k2 "$M1"
refused "several apps, none named" BAD_REQUEST "$K2" k2 "$M3"
out=$(sync "$K2" k2 "$M3") || true
[[ $out == *"name one of: music.app tv.app" ]] && pass "the refusal lists the apps" || fail "apps list: $out"
refused "key bound to another MDN" CONFLICT "$K1" --app tv.app k1 "$M3"
# a reused proof: the very same request twice
out=$(sync "$K2" --timestamp "$now" --app tv.app k2 "$M3") && pass "k2 binds to $M3 tv.app" || fail "k2: $out"
refused "the same MAC again" REPLAY "$K2" --timestamp "$now" --app tv.app k2 "$M3"
# a malformed MDN never leaves the client library; the wire check is in the SMS tests below
refused "malformed MDN" BAD_REQUEST "$K2" k2 12345
km_sql "SELECT detail FROM audit" | grepq 'k2' && [ "$(km_sql "SELECT count(*) FROM audit WHERE event='bind'")" = 2 ] &&
	pass "refusals wrote no audit row" || fail "audit rows: $(km_sql "SELECT count(*) FROM audit WHERE event='bind'")"


# --- SMS through the HTTPS callback (Kannel's get-url) ---
HTTPS=https://127.0.0.1:${HPORT[keymgmtd]}
sms() { # sms CERT FROM TEXT
	curl -sS --cacert "$PKI/ca.crt" ${1:+--cert "$PKI/$1.crt" --key "$PKI/$1.key"} -G \
		--data-urlencode "from=$2" --data-urlencode "text=$3" "$HTTPS/kannel/sms" 2>&1
}
text=$(STB_KEYSYNC_KEY=$K3 "$STB_CLIENT" --ca "$PKI/ca.crt" keysync --sms --app music.app k3 "$M3")
[[ $text == "KS1 k3 "*" music.app" ]] && [ ${#text} -le 160 ] && pass "the SMS text fits one SMS: $text" ||
	fail "sms text: $text"
out=$(sms sms-gw "+$M3" "$text") && [ "$out" = "KS1 OK music.app" ] &&
	pass "the Kannel callback binds k3 and answers the reply SMS" || fail "sms: $out"
[ "$(km_sql "SELECT mdn FROM bindings WHERE key_id='k3'")" = "$M3" ] && pass "bound to the sender's MDN" ||
	fail "sms binding"
out=$(sms sms-gw "$M3" "$text") && [ "$out" = "KS1 ERR REPLAY" ] && pass "the same SMS again: KS1 ERR REPLAY" ||
	fail "sms replay: $out"
out=$(sms sms-gw "$M2" "$text") && [ "$out" = "KS1 ERR UNAUTHENTICATED" ] &&
	pass "the text from another sender does not prove the key" || fail "sms other sender: $out"
out=$(sms sms-gw "1234" "$text") && [ "$out" = "KS1 ERR BAD_REQUEST" ] &&
	pass "a malformed sender MDN is BAD_REQUEST" || fail "sms bad mdn: $out"
out=$(sms sms-gw "$M3" "KS1 k3 12 zz") && [ "$out" = "KS1 ERR BAD_REQUEST" ] &&
	pass "a malformed SMS is BAD_REQUEST" || fail "sms malformed: $out"
out=$(sms admin "$M3" "$text") && [[ $out == *"role sms-gw required"* ]] &&
	pass "another role gets 403" || fail "sms as admin: $out"
out=$(sms "" "$M3" "$text") && fail "no client certificate answered: $out" ||
	pass "without a client certificate there is no HTTPS session"
# the same path as KM_SMS_INBOUND from role sms-gw
smsin() { "$STB_KM_CLIENT" "127.0.0.1:${PORT[keymgmtd]}" "$PKI/ca.crt" "$PKI/$1.crt" "$PKI/$1.key" "$2" "$3" 2>&1; }
text2=$(STB_KEYSYNC_KEY=$K2 "$STB_CLIENT" --ca "$PKI/ca.crt" keysync --sms --app music.app k2 "$M3")
out=$(smsin sms-gw "$M3" "$text2") && [ "$out" = "REPLY KS1 OK music.app" ] &&
	[ "$(km_sql "SELECT count(*) FROM bindings WHERE key_id='k2'")" = 2 ] &&
	pass "KM_SMS_INBOUND binds and answers the reply text" || fail "sms inbound: $out"
out=$(smsin sms-gw "$M3" "$text2") && [ "$out" = "REPLY KS1 ERR REPLAY" ] &&
	pass "KM_SMS_INBOUND again: the refusal is in the reply text" || fail "sms inbound replay: $out"
out=$(smsin sms-gw 12345678 "KS1 k2 1") && [ "$out" = "REPLY KS1 ERR BAD_REQUEST" ] &&
	pass "KM_SMS_INBOUND with a malformed text" || fail "sms inbound malformed: $out"
out=$(smsin portal "$M3" "$text2") || true
[[ $out == "ERR FORBIDDEN"* ]] && pass "KM_SMS_INBOUND is for role sms-gw" || fail "sms inbound role: $out"
curl -sS --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" "$HTTPS/metrics" >"$T/metrics"
grepq 'stbcred_keymgmtd_pushes{state="delivered"}' "$T/metrics" &&
	grepq 'stbcred_keymgmtd_push_delivery_seconds' "$T/metrics" &&
	grepq 'stbcred_keymgmtd_oldest_pending_push_seconds' "$T/metrics" &&
	pass "metrics: pushes by state, delivery latency, oldest pending" || fail "metrics: $(grep keymgmtd "$T/metrics")"

# --- admin views ---
b=$(ctl keymgmtd keys bindings --json)
[ "$(jq length <<<"$b")" = 4 ] && [[ $(jq -r '.[0].bound_at' <<<"$b") =~ ^20.*Z$ ]] &&
	pass "keys bindings --json" || fail "bindings: $b"
wait_for bash -c "[ \"\$('$STBCTL' -a 127.0.0.1:${PORT[keymgmtd]} --ca '$PKI/ca.crt' --cert '$PKI/admin.crt' --key '$PKI/admin.key' keys bindings --state pending --json | jq length)\" = 0 ]" &&
	pass "no push pending" || fail "pending: $(ctl keymgmtd keys bindings --state pending)"
[ "$(ctl keymgmtd keys bindings --mdn "$M3" --json | jq length)" = 3 ] && pass "bindings --mdn" || fail "bindings --mdn"
ctl keymgmtd keys bindings | grepq "k1 *tv.app *$M1 *delivered" && pass "bindings table" ||
	fail "bindings table: $(ctl keymgmtd keys bindings)"
ctl keymgmtd keys platforms | grepq "^tv.app" && pass "keys platforms" || fail "platforms: $(ctl keymgmtd keys platforms)"
ctl keymgmtd keys show k3 | grepq "music.app" && pass "keys show lists the bindings" || fail "show k3"

# --- cancel and unbind queue KEY_REVOKE ---
out=$(ctl_as portal keys cancel "$M1" tv.app) && [[ $out == *"1 KEY_REVOKE"* ]] &&
	[ "$(km_sql "SELECT count(*) FROM bindings WHERE mdn='$M1'")" = 0 ] &&
	pass "SERVICE_CANCEL removes the binding and queues a revoke" || fail "cancel: $out"
revoked() { [ "$(platform_sql ap "SELECT count(*) FROM keys WHERE key_id='$1' AND revoked_at IS NOT NULL")" -ge 1 ]; }
wait_for revoked k1 && pass "the platform gets KEY_REVOKE for k1" || fail "revoke k1"
out=$(ctl keymgmtd keys unbind k3) && [[ $out == *"1 KEY_REVOKE"* ]] && pass "keys unbind" || fail "unbind: $out"
wait_for revoked k3 && pass "the platform gets KEY_REVOKE for k3" || fail "revoke k3"
out=$(ctl keymgmtd keys unbind k3 2>&1) && fail "unbind twice" || { [[ $out == *NOT_FOUND* ]] && pass "unbind of nothing is NOT_FOUND" || fail "unbind again: $out"; }
km_sql "SELECT event FROM audit" | sort | uniq -c | tr -s ' ' >"$T/events"
grepq "cancel" "$T/events" && grepq "unbind" "$T/events" && grepq "register" "$T/events" &&
	pass "register, cancel and unbind audited" || fail "audit events: $(cat "$T/events")"

# --- a refused push fails after the tries; redeliver ---
echo "refuse 10" >"$T/control"
out=$(sync "$K3" --app tv.app k3 "$M3") || fail "k3 tv.app: $out"
P3=${out##*push_id=}
failed() { [ "$(km_sql "SELECT state FROM outbox WHERE id=$P3")" = failed ]; }
wait_for failed && pass "a push refused push.max_tries times is failed" || fail "push $P3: $(km_sql "SELECT state, tries FROM outbox WHERE id=$P3")"
ctl keymgmtd keys bindings --state failed | grepq "^$P3 " && pass "bindings --state failed" || fail "--state failed"
echo accept >"$T/control"
ctl keymgmtd keys redeliver "$P3" >/dev/null && wait_for delivered k3 "$P3" &&
	pass "redeliver delivers the failed push" || fail "redeliver"
km_sql "SELECT event || ' ' || detail FROM audit" >"$T/events"
grepq "^push_failed push=$P3 kind=key app=tv.app key=k3 tries=3 error=" "$T/events" &&
	grepq "^push_delivered push=$P1 kind=key" "$T/events" &&
	grepq "^push_delivered push=[0-9]* kind=revoke app=tv.app key=k1" "$T/events" &&
	pass "push delivered and failed audited" || fail "push audit: $(grep push_ "$T/events")"

# --- the pushes survive a restart of keymgmtd (tries enough that the push
# stays pending however long the refusals go on) ---
stop_daemon keymgmtd TERM
[ "$RC" = 0 ] && pass "SIGTERM: keymgmtd exits 0" || fail "SIGTERM exit $RC"
KM_MAX_TRIES=1000 km_start
echo "refuse 10" >"$T/control"
ctl_as portal keys register "$M2" tv.app >/dev/null
out=$(sync "$K1" k4 "$M2") || fail "k4: $out"
P4=${out##*push_id=}
stop_daemon keymgmtd KILL
echo accept >"$T/control"
KM_MAX_TRIES=1000 km_start
# a push in flight at the kill waits for its lease (push.timeout_ms * 2 + 1 s)
wait_for delivered k4 "$P4" || wait_for delivered k4 "$P4"
delivered k4 "$P4" && pass "a push queued before SIGKILL is delivered after the restart" || fail "k4 after restart"
# --- last (the source stays penalised): guessing is throttled (lockout per key_id and source) ---
for _ in 1 2 3 4 5 6 7 8 9 10; do sync "$K1" k3 "$M1" >/dev/null || true; done
out=$(sync "$K1" k3 "$M1") || true
[[ $out == *RATE_LIMITED* ]] && pass "a guessing source is RATE_LIMITED" || fail "lockout: $out"
out=$(ctl keymgmtd audit verify 2>&1) && pass "audit chain intact" || fail "audit verify: $out"
finish
