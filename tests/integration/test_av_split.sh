#!/usr/bin/env bash
# appvetd split in two (flow E): a vetter-only appvetd and an operator-only
# one that reaches it through its vetter listener (mutual TLS, role
# appvetd), uploads each package there, checks the signed verdict against
# the pinned vetter certificate and records it; publish and check on the
# operator. With the vetter gone, a re-vet is UNAVAILABLE and the app keeps
# its verdict.
. "$(dirname "$0")/lib.sh"
FX=${STB_APK_FIXTURES:?STB_APK_FIXTURES: the apk_fixtures test fixture}

pki_init
VPORT=$(free_port)
VHPORT=$(free_port)
CHECK_PORT=$(free_port)
VDPORT=$(free_port)
mkdir -m 0700 "$T/state-vetter"
store_json vetter
cat >"$T/vetter.json" <<JSON
{
  "listen": "127.0.0.1:$VDPORT",
  "http_listen": "127.0.0.1:$VHPORT",
  "client_auth": "require",
  "state_dir": "$T/state-vetter", $STORE_JSON
  "kek_file": "$PKI/appvetd.kek",
  "tls": { "cert": "$PKI/appvetd.crt", "key": "$PKI/appvetd.key", "ca": "$PKI/ca.crt" },
  "listeners": [
    {"name": "vetter", "listen": "127.0.0.1:$VPORT", "client_auth": "require",
     "roles": "appvetd", "messages": "PING,APP_UPLOAD_BEGIN,APP_UPLOAD_CHUNK,APP_UPLOAD_OFFSET,APP_VET"}],
  "roles": "vetter"
}
JSON
start_vetter() {
	"$STB_BIN_appvetd" -c "$T/vetter.json" >>"$T/vetter.log" 2>&1 &
	PID[vetter]=$!
	for _ in $(seq 1 200); do
		"$STBCTL" -a "127.0.0.1:$VDPORT" --ca "$PKI/ca.crt" --cert "$PKI/admin.crt" \
			--key "$PKI/admin.key" ping >/dev/null 2>&1 && break
		kill -0 "${PID[vetter]}" || { cat "$T/vetter.log"; exit 1; }
		sleep 0.05
	done
}
start_vetter
start_daemon appvetd "\"roles\": \"operator\",
  \"vet\": {\"peer\": \"127.0.0.1:$VPORT\", \"cert\": \"$PKI/appvetd.crt\"},
  \"listeners\": [{\"name\": \"check\", \"listen\": \"127.0.0.1:$CHECK_PORT\", \"client_auth\": \"none\",
     \"messages\": \"PING,APP_CHECK\"}]"

app() { ctl appvetd app "$@"; }
tv() { "$STB_AV_CLIENT" "127.0.0.1:$CHECK_PORT" "$PKI/ca.crt" "$@"; }
tget() { awk -v k="$1" '$1 == k { print $2; exit }'; }
tpay() { sed -n 's/^payload  *//p'; }
state_of() { app show "$1" | tget state; }
wait_state() {
	for _ in $(seq 1 300); do
		[ "$(state_of "$1")" = "$2" ] && return 0
		sleep 0.1
	done
	return 1
}

ID_OK=$(app submit "$FX/v1v2.apk" --name tv.ok --version 1)
ID_PERMS=$(app submit "$FX/perms.apk" --name tv.perms --version 1)
wait_state "$ID_OK" vetted && pass "the remote vetter's verdict is recorded" ||
	fail "v1v2.apk: $(state_of "$ID_OK")"
wait_state "$ID_PERMS" vetted || fail "perms.apk: $(state_of "$ID_PERMS")"
[ "$(app show "$ID_OK" | tget flag)" = SAFE ] && pass "v1v2.apk SAFE" || fail "v1v2.apk flag"
[ "$(app show "$ID_PERMS" | tget flag)" = UNSAFE ] && app findings "$ID_PERMS" | grepq "^perm.dangerous" &&
	pass "perms.apk UNSAFE with perm.dangerous, findings carried over" ||
	fail "perms.apk: $(app findings "$ID_PERMS")"
grepq "verdict for $ID_OK from the vetter: SAFE" "$T/appvetd.log" &&
	pass "the operator logged the remote verdict" || fail "no remote verdict in the log"
[ -z "$(ls "$T/state-vetter/spool")" ] && pass "the vetter keeps no package" ||
	fail "vetter spool: $(ls "$T/state-vetter/spool")"
P_OK=$(app publish "$ID_OK" | tpay)
P_PERMS=$(app publish "$ID_PERMS" | tpay)
out=$(tv check "$P_OK" "$P_PERMS")
echo "$out" | sed -n 1p | grepq "^ALLOW SAFE tv.ok 1$" &&
	echo "$out" | sed -n 2p | grepq "^DENY UNSAFE tv.perms 1: asks for android.permission.CAMERA" &&
	pass "checks on the operator: ALLOW and DENY" || fail "checks: $out"
out=$("$STBCTL" -a "127.0.0.1:$VPORT" --ca "$PKI/ca.crt" --cert "$PKI/admin.crt" \
	--key "$PKI/admin.key" app list 2>&1) && fail "admin on the vetter listener: $out" ||
	pass "the vetter listener refuses an admin ($(echo "$out" | cut -c1-60))"

stop_daemon vetter
out=$(app revet "$ID_OK" 2>&1) && fail "revet with the vetter gone: $out" ||
	{ echo "$out" | grepq UNAVAILABLE && pass "revet with the vetter gone: UNAVAILABLE"; } ||
	fail "revet with the vetter gone: $out"
[ "$(app show "$ID_OK" | tget flag)" = SAFE ] && pass "the app keeps its verdict" ||
	fail "flag after a failed revet"
# submitted while the vetter is gone: the app waits in 'submitted', and the
# operator's next start queues it again
ID_LATE=$(app submit "$FX/v1v2.apk" --name tv.late --version 1)
[ "$(state_of "$ID_LATE")" = submitted ] && pass "submitted with the vetter gone: it waits" ||
	fail "tv.late: $(state_of "$ID_LATE")"
stop_daemon appvetd
[ "$RC" = 0 ] && pass "the operator stops cleanly" || fail "exit status $RC"
start_vetter
start_daemon appvetd
wait_state "$ID_LATE" vetted && [ "$(app show "$ID_LATE" | tget flag)" = SAFE ] &&
	pass "restarted, the operator vets what the last run left submitted" ||
	fail "tv.late after the restart: $(state_of "$ID_LATE")"
grepq "1 app(s) left submitted by the last run queued for vetting" "$T/appvetd.log" &&
	pass "the start-up says how many it queued" || fail "no start-up queue line in the log"
stop_daemon appvetd
stop_daemon vetter
finish
