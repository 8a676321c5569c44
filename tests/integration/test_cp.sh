#!/usr/bin/env bash
# cert-proxyd (flow A) against a real ca-authd: STB import, HMAC
# authentication with guessing limits, key info with a verified proof, fetch on
# missing / revoked / expired certificates, one issuance for concurrent
# fetches, the validity scanner's pushes and renewal on acknowledgement,
# ca-authd down, wrong roles, and the audit chain.  STBs are cp_client
# processes; the state left behind is read with stbctl and sqlite3.
. "$(dirname "$0")/lib.sh"

for tool in sqlite3 openssl; do
	command -v $tool >/dev/null || { echo "SKIP: $tool not installed"; exit 77; }
done

# --- ca-authd with its own CA (its service certificate is the test PKI's) ---
pki_init
write_config ca-authd
"$(bin_of ca-authd)" init -c "$T/ca-authd.json" >"$T/ca-init.log" 2>&1 ||
	{ cat "$T/ca-init.log"; exit 1; }
start_daemon ca-authd
CADIR=$T/state-ca-authd
CADB=$CADIR/ca-authd.db

# cp_extra RENEW_BEFORE VALIDITY ADDR_MAX: cert-proxyd's own keys
cp_extra() {
	cat <<JSON
"ca": { "addr": "127.0.0.1:${PORT[ca-authd]}", "timeout_ms": 5000 },
  "issue": { "profile": "stb-media", "validity_s": $2, "max_per_device": 4 },
  "auth": { "max_failures": 3, "lockout_s": 60, "addr_max_failures": $3 },
  "scan": { "interval_s": 3600, "renew_before_s": $1, "check_revocation": true }
JSON
}
# A day of validity and a two-day renewal window: every scan finds every
# certificate due, and only `cp scan` scans (the timer waits an hour).
out=$("$(bin_of cert-proxyd)" -t -c <(echo '{"ca": {"addr": "nowhere"}}') 2>&1 || true)
[[ $out == *ca.addr* ]] && pass "-t names a bad ca.addr" || fail "-t: $out"
start_daemon cert-proxyd "$(cp_extra 172800 86400 1000)"
ADDR=127.0.0.1:${PORT[cert-proxyd]}
cpctl() { ctl cert-proxyd "$@"; }

SA=000102030405060708090a0b0c0d0e0f
SB=101112131415161718191a1b1c1d1e1f
SC=202122232425262728292a2b2c2d2e2f3031323334353637
SD=303132333435363738393a3b3c3d3e3f
stb() { local id=$1 sec=$2; shift 2; "$STB_CP_CLIENT" "$ADDR" "$PKI/ca.crt" "$id" "$sec" "$@"; }
# wait_for FILE PATTERN: until a line matches (10 s)
wait_for() {
	for _ in $(seq 1 200); do
		grepq -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}
field() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2" | head -n1; }
# issued CERT_ID: how many certificates ca-authd issued for it
issued() { sqlite3 "$CADB" "SELECT count(*) FROM certs WHERE cert_id='$1'"; }
CPDB=$T/state-cert-proxyd/cert-proxyd.db
# cert_field CERT_ID KEY: a field of `cp show` (serial upper-case, as openssl prints it)
cert_field() {
	cpctl cp show "$1" | awk -v k="$2" '$1 == k { print $2 }'
}
cert_show() { cpctl cp show "$1" | tr '\n' ' '; }
# not_after CERT_ID: from the store itself
not_after() { sqlite3 "$CPDB" "SELECT not_after FROM certs WHERE cert_id='$1'"; }
# rows: the lines of a stbctl table without its header
rows() { tail -n +2 | grep -c . || true; }

# --- import: CSV and JSON, no secrets in lists ---
# each STB with the cert_ids it may hold
printf 'device_id,secret_hex,enabled,cert_ids\nstb-a,%s,1,c-a1 c-a2  c-a3 c-a4 c-a5\nstb-b,%s,0\n# a comment\nstb-d,%s,yes,c-d1\n' \
	"$SA" "$SB" "$SD" >"$T/stbs.csv"
printf '[{"device_id": "stb-c", "secret_hex": "%s", "enabled": true, "cert_ids": ["c-c1", "c-c9"]}]\n' \
	"$SC" >"$T/stbs.json"
out=$(cpctl cp import "$T/stbs.csv") && [[ $out == "imported 3 STB(s)" ]] &&
	pass "CSV import" || fail "CSV import: $out"
out=$(cpctl cp import "$T/stbs.json" --json) && [[ $out == '{"imported": 1, "failed": 0}' ]] &&
	pass "JSON import" || fail "JSON import: $out"
printf 'stb-e,abc\n' >"$T/bad.csv"
if cpctl cp import "$T/bad.csv" 2>"$T/err"; then
	fail "a bad secret was imported"
else
	grepq "bad.csv:1" "$T/err" && pass "a bad CSV line is refused with its line" ||
		fail "bad CSV: $(cat "$T/err")"
fi
list=$(cpctl cp stbs --json)
table=$(cpctl cp stbs)
[ "$(rows <<<"$table")" = 4 ] && [ "$(grep -c '"device_id"' <<<"$list")" = 4 ] &&
	[ "$(awk '$1 == "stb-b" { print $2 }' <<<"$table")" = no ] &&
	[ "$(awk '$1 == "stb-a" { print $2 }' <<<"$table")" = yes ] &&
	pass "cp stbs lists four STBs, stb-b disabled" || fail "cp stbs: $list"
[ "$(awk '$1 == "stb-a" { print $(NF-4), $(NF-3), $(NF-2), $(NF-1), $NF }' <<<"$table")" = \
	"c-a1 c-a2 c-a3 c-a4 c-a5" ] && grepq '"c-c9"' <<<"$list" &&
	pass "cp stbs shows each STB's cert_ids (table and --json)" || fail "cert_ids: $table $list"
grepq -i -e "$SA" -e "$SC" <<<"$list$table" && fail "a secret in cp stbs"

# --- authentication ---
out=$(stb stb-a $SA auth) && [ "$out" = "auth OK" ] && pass "right secret: auth OK" ||
	fail "auth: $out"
wrong=$(stb stb-a $SB auth || true)
unknown=$(stb stb-zz $SA auth || true)
disabled=$(stb stb-b $SB auth || true)
[[ $wrong == "auth UNAUTHENTICATED "* ]] && pass "wrong secret UNAUTHENTICATED" ||
	fail "wrong secret: $wrong"
[ "${unknown//stb-zz/X}" = "${wrong//stb-a/X}" ] &&
	pass "unknown device answered exactly like a wrong MAC" ||
	fail "unknown device: '$unknown' vs '$wrong'"
[ "${disabled//stb-b/X}" = "${wrong//stb-a/X}" ] &&
	pass "disabled device answered exactly like a wrong MAC" ||
	fail "disabled device: '$disabled' vs '$wrong'"
out=$(stb stb-a $SA keyinfo c-a1 fetch c-a1 ack c-a1 || true)
[ "$(grep -c ' UNAUTHENTICATED ' <<<"$out")" = 3 ] &&
	pass "KEYINFO_REQ, CERT_FETCH, CERT_UPDATE_ACK before auth UNAUTHENTICATED" ||
	fail "before auth: $out"
out=$(stb stb-d $SA badmac badmac badmac || true)
[ "$(grep -c 'UNAUTHENTICATED' <<<"$out")" = 3 ] && pass "three wrong MACs for stb-d UNAUTHENTICATED" ||
	fail "stb-d's failures: $out"
grepq 'throttled for device stb-d' "$T/cert-proxyd.log" && pass "stb-d's guess budget is spent" ||
	fail "stb-d not guarded"
# guessing never locks the box out: the right MAC still gets in
out=$(stb stb-d $SD auth || true)
[ "$out" = "auth OK" ] && pass "a guarded device authenticates with the right MAC" ||
	fail "guarded: $out"
out=$(stb stb-a $SA auth) && pass "other devices from the same address still authenticate" ||
	fail "stb-a after stb-d's failures: $out"
# only trust is persisted: a restart keeps it, and no failure was written
stop_daemon cert-proxyd
start_daemon cert-proxyd "$(cp_extra 172800 86400 1000)"
out=$(stb stb-d $SD auth || true)
[ "$out" = "auth OK" ] && pass "stb-d authenticates after a restart" ||
	fail "stb-d after a restart: $out"
[ "$(sqlite3 "$CPDB" "SELECT count(*) FROM lockouts WHERE key = 'stb-d 127.0.0.1'")" = 1 ] &&
	[ "$(sqlite3 "$CPDB" "SELECT count(*) FROM lockouts WHERE key NOT LIKE '% %' OR key LIKE 'stb-zz %'")" = 0 ] &&
	pass "lockouts holds stb-d's trust from 127.0.0.1, no failure, no unknown device ID" ||
	fail "rows: $(sqlite3 "$CPDB" 'SELECT key FROM lockouts')"

# --- first login: missing, fetched, then served ---
out=$(stb stb-a $SA auth keyinfo c-a1 fetch c-a1 keyinfo c-a1 fetch c-a1 save c-a1 "$T/c-a1.der" || true)
[[ $(grep '^keyinfo' <<<"$out" | head -n1) == "keyinfo NOT_FOUND"* ]] &&
	pass "missing certificate NOT_FOUND" || fail "missing: $out"
f1=$(grep '^fetch' <<<"$out" | head -n1)
k1=$(grep '^keyinfo' <<<"$out" | sed -n 2p)
f2=$(grep '^fetch' <<<"$out" | sed -n 2p)
serial_a1=$(field serial "$f1")
[[ $f1 == "fetch OK "* ]] && [ "$(field verified "$f1")" = yes ] &&
	[ "$(field fresh "$f1")" = yes ] && pass "CERT_FETCH OK with a proof that verifies" ||
	fail "fetch: $out"
[[ $k1 == "keyinfo OK "* ]] && [ "$(field serial "$k1")" = "$serial_a1" ] &&
	[ "$(field verified "$k1")" = yes ] && pass "KEYINFO_REQ OK afterwards, same certificate" ||
	fail "keyinfo after fetch: $out"
[ "$(field serial "$f2")" = "$serial_a1" ] && [ "$(issued c-a1)" = 1 ] &&
	pass "fetching a valid certificate issues nothing new" ||
	fail "second fetch: $f2, issued $(issued c-a1)"
j=$(cert_show c-a1)
[ "$(cert_field c-a1 device_id)" = stb-a ] && [ "$(cert_field c-a1 state)" = good ] &&
	[ "$(cert_field c-a1 serial)" = "$serial_a1" ] &&
	[ "$(sqlite3 "$CPDB" "SELECT upper(hex(serial)), state FROM certs WHERE cert_id='c-a1'")" = "$serial_a1|0" ] &&
	pass "store: c-a1 valid, owned by stb-a, the issued serial" || fail "store: $j"
openssl verify -CAfile "$CADIR/root.pem" -untrusted "$CADIR/chain-issuing.pem" \
	<(openssl x509 -inform DER -in "$T/c-a1.der") >"$T/verify.out" 2>&1 &&
	pass "openssl verify: c-a1 chains to ca-authd's root" || fail "verify: $(cat "$T/verify.out")"
pem_serial=$(cpctl cp show c-a1 --pem | openssl x509 -noout -serial | sed 's/^serial=//')
[ "$pem_serial" = "$serial_a1" ] && pass "cp show --pem gives the stored certificate" ||
	fail "cp show --pem: $pem_serial"

# --- another device's certificate ---
out=$(stb stb-c $SC auth keyinfo c-a1 fetch c-a1 || true)
[ "$(grep -c ' FORBIDDEN ' <<<"$out")" = 2 ] && [ "$(issued c-a1)" = 1 ] &&
	[ "$(cert_field c-a1 device_id)" = stb-a ] &&
	pass "stb-c: KEYINFO_REQ and CERT_FETCH of stb-a's certificate FORBIDDEN, nothing issued" ||
	fail "foreign cert: $out"

# --- concurrent fetches: one issuance ---
out=$(stb stb-a $SA auth fetch-pair c-a2) || fail "fetch-pair: $out"
mapfile -t pair < <(grep '^fetch-pair OK' <<<"$out")
[ ${#pair[@]} -eq 2 ] && [ "$(field serial "${pair[0]}")" = "$(field serial "${pair[1]}")" ] &&
	[ "$(issued c-a2)" = 1 ] &&
	pass "two concurrent fetches on two connections: one issuance, one certificate" ||
	fail "fetch-pair: $out; issued $(issued c-a2)"

# --- per-device limit ---
out=$(stb stb-a $SA auth fetch c-a3 fetch c-a4 fetch c-a5 || true)
[[ $(grep '^fetch' <<<"$out" | sed -n 3p) == "fetch CONFLICT"* ]] && [ "$(issued c-a5)" = 0 ] &&
	pass "a fifth certificate for one STB is a CONFLICT (issue.max_per_device 4)" ||
	fail "max_per_device: $out"

[ "$(cpctl cp certs --device stb-a | rows)" = 4 ] &&
	[ "$(cpctl cp certs --device stb-c | rows)" = 0 ] &&
	[ "$(cpctl cp certs --device stb-a --json | grep -c '"cert_id"')" = 4 ] &&
	pass "cp certs --device lists one STB's certificates" ||
	fail "cp certs --device: $(cpctl cp certs)"

# --- revocation by the operator ---
out=$(cpctl cp revoke c-a1 --reason 1) && pass "cp revoke c-a1" || fail "revoke: $out"
[ "$(cert_field c-a1 state)" = revoked ] && [ "$(cert_field c-a1 pending)" = revoked ] &&
	pass "store: c-a1 revoked with an update pending" || fail "after revoke: $(cert_show c-a1)"
[ "$(sqlite3 "$CADB" "SELECT state FROM certs WHERE cert_id='c-a1'")" = revoked ] &&
	pass "ca-authd has the serial revoked" || fail "ca-authd state"
out=$(cpctl cp revoke c-a1 2>&1 || true)
[[ $out == *CONFLICT* ]] && pass "revoking twice CONFLICT" || fail "revoke twice: $out"
out=$(cpctl cp revoke c-none 2>&1 || true)
[[ $out == *NOT_FOUND* ]] && pass "revoking an unknown certificate NOT_FOUND" ||
	fail "revoke unknown: $out"
# stb-a was not connected: the update waits for its next connection
out=$(stb stb-a $SA auth pushes 1 keyinfo c-a1 fetch c-a1 || true)
grepq '^push update_needed cert=c-a1 reason=3' <<<"$out" &&
	pass "the queued update reaches stb-a when it next authenticates" ||
	fail "queued push: $out"
[[ $(grep '^keyinfo' <<<"$out") == "keyinfo REVOKED"* ]] && pass "revoked certificate REVOKED" ||
	fail "revoked keyinfo: $out"
f=$(grep '^fetch' <<<"$out")
[[ $f == "fetch OK "* ]] && [ "$(field serial "$f")" != "$serial_a1" ] &&
	[ "$(field verified "$f")" = yes ] && [ "$(issued c-a1)" = 2 ] &&
	pass "fetch renews the revoked certificate" || fail "fetch after revoke: $out"
j=$(cert_show c-a1)
[ "$(cert_field c-a1 state)" = good ] && [ "$(cert_field c-a1 pending)" = - ] &&
	pass "store: c-a1 valid again, no update pending" || fail "after renewal: $j"

# --- the scanner: push to a connected STB, renewal on ACK ---
out=$(stb stb-c $SC auth fetch c-c1) || fail "stb-c fetch: $out"
serial_c1=$(field serial "$(grep '^fetch' <<<"$out")")
stb stb-c $SC auth watch 20 >"$T/watch-c.out" 2>&1 &
PID[watch_c]=$!
wait_for "$T/watch-c.out" '^auth OK' || fail "stb-c watcher did not authenticate"
cpctl cp scan >/dev/null || fail "cp scan"
pending=$(cpctl cp pending --json)
[ "$(awk '$1 == "c-a1" { print $2, $3 }' <<<"$(cpctl cp pending)")" = "stb-a expiring" ] &&
	grepq '"cert_id":.*"c-a1"' <<<"$pending" && pass "scan: pending update for stb-a's c-a1 (not connected)" ||
	fail "pending: $pending"
wait "${PID[watch_c]}" && rc=0 || rc=$?
unset 'PID[watch_c]'
w=$(cat "$T/watch-c.out")
grepq '^push update_needed cert=c-c1 reason=1' <<<"$w" &&
	pass "scan pushed CERT_UPDATE_NEEDED to the connected STB" || fail "no push: $w"
grepq '^ack OK cert=c-c1' <<<"$w" && pass "CERT_UPDATE_ACK OK" || fail "ack: $w"
u=$(grep '^push updated cert=c-c1' <<<"$w" || true)
new_c1=$(cert_field c-c1 serial)
[ $rc -eq 0 ] && [ -n "$u" ] && [ "$new_c1" != "$serial_c1" ] &&
	[ "$(field not_after "$u")" = "$(not_after c-c1)" ] &&
	[ "$(issued c-c1)" = 2 ] &&
	pass "renewed on ACK: CERT_UPDATED with the new certificate's not_after, new serial" ||
	fail "renewal: rc=$rc $w; serial $new_c1 was $serial_c1; issued $(issued c-c1)"
[ "$(cert_field c-c1 pending)" = - ] && pass "store: c-c1's pending update cleared" ||
	fail "c-c1 still pending: $(cert_show c-c1)"
out=$(stb stb-c $SC auth ack c-c1 || true)
[[ $out == *"ack CONFLICT"* ]] && pass "ACK with nothing pending CONFLICT" || fail "ack: $out"

# --- disabling an STB closes its connections ---
stb stb-c $SC auth pushes 20 >"$T/kick.out" 2>&1 &
PID[kick]=$!
wait_for "$T/kick.out" '^auth OK' || fail "stb-c did not authenticate"
printf 'stb-c,%s,0\n' "$SC" >"$T/off.csv"
cpctl cp import "$T/off.csv" >/dev/null || fail "disable stb-c"
wait "${PID[kick]}" && rc=0 || rc=$?
unset 'PID[kick]'
[ $rc -ne 0 ] && grepq '^pushes ' "$T/kick.out" &&
	pass "disabling stb-c closed its open connection" || fail "kick: $(cat "$T/kick.out")"
out=$(stb stb-c $SC auth || true)
[[ $out == "auth UNAUTHENTICATED"* ]] && pass "disabled stb-c cannot authenticate" ||
	fail "disabled: $out"
printf 'stb-c,%s,1\n' "$SC" >"$T/on.csv"
cpctl cp import "$T/on.csv" >/dev/null && out=$(stb stb-c $SC auth) &&
	pass "re-enabled stb-c authenticates" || fail "re-enable: $out"
# the same without the secret: cp disable / enable / delete
stb stb-c $SC auth pushes 20 >"$T/kick2.out" 2>&1 &
PID[kick]=$!
wait_for "$T/kick2.out" '^auth OK' || fail "stb-c did not authenticate"
[ "$(cpctl cp disable stb-c)" = "stb-c disabled" ] || fail "cp disable"
wait "${PID[kick]}" && rc=0 || rc=$?
unset 'PID[kick]'
out=$(stb stb-c $SC auth || true)
[ $rc -ne 0 ] && [[ $out == "auth UNAUTHENTICATED"* ]] &&
	[ "$(sqlite3 "$CPDB" "SELECT enabled FROM stbs WHERE device_id='stb-c'")" = 0 ] &&
	pass "cp disable: stb-c cut off and refused" || fail "cp disable: rc $rc, $out"
cpctl cp enable stb-c >/dev/null && out=$(stb stb-c $SC auth) && [ "$out" = "auth OK" ] &&
	pass "cp enable: stb-c authenticates" || fail "cp enable: $out"
printf 'stb-gone,%s,1,c-gone1\n' "$SD" >"$T/gone.csv"
cpctl cp import "$T/gone.csv" >/dev/null || fail "import stb-gone"
out=$(cpctl -j cp delete stb-gone)
grepq '"status":[[:space:]]*"OK"' <<<"$out" &&
	[ "$(sqlite3 "$CPDB" "SELECT count(*) FROM stbs WHERE device_id='stb-gone'")" = 0 ] &&
	[ "$(sqlite3 "$CPDB" "SELECT count(*) FROM stb_certs WHERE device_id='stb-gone'")" = 0 ] &&
	pass "cp delete: the STB and its certificate IDs are gone" || fail "cp delete: $out"
rc=0
out=$(cpctl cp delete stb-gone 2>&1) || rc=$?
[ $rc = 1 ] && [[ $out == *NOT_FOUND* ]] && pass "cp delete of an unknown STB: NOT_FOUND" ||
	fail "delete again: rc $rc $out"
out=$(stb stb-gone $SD auth || true)
[[ $out == "auth UNAUTHENTICATED"* ]] && pass "a deleted STB cannot authenticate" || fail "deleted: $out"
# the same secret again keeps the session; a new one ends it
stb stb-c $SC auth pushes 3 >"$T/same.out" 2>&1 &
PID[same]=$!
wait_for "$T/same.out" '^auth OK' || fail "stb-c did not authenticate"
cpctl cp import "$T/on.csv" >/dev/null || fail "re-import stb-c"
wait "${PID[same]}" && rc=0 || rc=$?
unset 'PID[same]'
[ $rc -eq 0 ] && pass "re-importing the same secret keeps stb-c's session" ||
	fail "same secret: $(cat "$T/same.out")"
stb stb-c $SC auth pushes 20 >"$T/new.out" 2>&1 &
PID[new]=$!
wait_for "$T/new.out" '^auth OK' || fail "stb-c did not authenticate"
printf 'stb-c,%s,1\n' "$SB" >"$T/new.csv"
cpctl cp import "$T/new.csv" >/dev/null || fail "new secret for stb-c"
wait "${PID[new]}" && rc=0 || rc=$?
unset 'PID[new]'
[ $rc -ne 0 ] && out=$(stb stb-c $SB auth) && ! stb stb-c $SC auth >/dev/null &&
	pass "a new secret ends stb-c's session; only the new secret authenticates" ||
	fail "new secret: rc=$rc $(cat "$T/new.out") $out"
cpctl cp import "$T/on.csv" >/dev/null || fail "restore stb-c's secret"

# --- wrong roles for admin messages ---
out=$(stb stb-a $SA admin auth admin || true)
[ "$(grep -c '^admin FORBIDDEN' <<<"$out")" = 2 ] &&
	pass "admin message from an STB connection FORBIDDEN, before and after auth" ||
	fail "STB admin: $out"
state_a2=$(cert_field c-a2 state)
out=$("$STBCTL" -a "$ADDR" --ca "$PKI/ca.crt" --cert "$PKI/media-gw.crt" \
	--key "$PKI/media-gw.key" -T 5000 cp revoke c-a2 2>&1 || true)
[[ $out == *FORBIDDEN* ]] && [ "$(cert_field c-a2 state)" = "$state_a2" ] &&
	pass "admin message from a media-gw certificate FORBIDDEN, nothing revoked" ||
	fail "media-gw admin: $out"

# --- restart: the store and the sealed keys survive; short validity ---
serial_a2=$(cert_field c-a2 serial)
stop_daemon cert-proxyd
[ "$RC" = 0 ] && pass "cert-proxyd stops cleanly on SIGTERM" || fail "exit status $RC"
start_daemon cert-proxyd "$(cp_extra 0 3 1000)"
out=$(stb stb-a $SA auth keyinfo c-a2) && [ "$(field serial "$out")" = "$serial_a2" ] &&
	[ "$(field verified "$out")" = yes ] &&
	pass "after a restart c-a2 signs with its unsealed key" || fail "after restart: $out"

# --- expiry: EXPIRED, then a fetch renews ---
out=$(stb stb-d $SD auth 2>&1 || true)
[ "$out" = "auth OK" ] || fail "stb-d after restart: $out"
out=$(stb stb-d $SD auth fetch c-d1) || fail "short-lived fetch: $out"
serial_d1=$(field serial "$out")
na=$(not_after c-d1)
while [ "$(date +%s)" -le "$na" ]; do sleep 0.2; done
out=$(stb stb-d $SD auth keyinfo c-d1 fetch c-d1 || true)
[[ $(grep '^keyinfo' <<<"$out") == "keyinfo EXPIRED"* ]] && pass "expired certificate EXPIRED" ||
	fail "expired keyinfo: $out"
f=$(grep '^fetch' <<<"$out")
[[ $f == "fetch OK "* ]] && [ "$(field serial "$f")" != "$serial_d1" ] && [ "$(issued c-d1)" = 2 ] &&
	pass "fetch renews the expired certificate" || fail "fetch after expiry: $out"

# --- revocation at ca-authd, found by the scanner (CA_STATUS) ---
ctl ca-authd ca revoke "$(cert_field c-a2 serial)" --reason 1 >/dev/null ||
	fail "ca revoke of c-a2's serial"
cpctl cp scan >/dev/null || fail "cp scan"
[ "$(cert_field c-a2 state)" = revoked ] && [ "$(cert_field c-a2 pending)" = revoked ] &&
	pass "scan: c-a2 revoked at ca-authd is marked revoked, update pending" ||
	fail "CA_STATUS scan: $(cert_show c-a2)"
out=$(stb stb-a $SA auth pushes 1 keyinfo c-a2 || true)
grepq '^push update_needed cert=c-a2 reason=3' <<<"$out" &&
	[[ $(grep '^keyinfo' <<<"$out") == "keyinfo REVOKED"* ]] &&
	pass "stb-a is told, and c-a2 is REVOKED" || fail "after CA revocation: $out"

# --- ca-authd down: UNAVAILABLE, nothing stored ---
stop_daemon ca-authd
out=$(stb stb-c $SC auth fetch c-c9 || true)
[[ $(grep '^fetch' <<<"$out") == "fetch UNAVAILABLE"* ]] && pass "ca-authd down: fetch UNAVAILABLE" ||
	fail "ca down: $out"
out=$(cpctl cp show c-c9 2>&1 || true)
[[ $out == *NOT_FOUND* ]] && ! cpctl cp certs --json | grepq c-c9 &&
	pass "ca-authd down: no row for c-c9" || fail "c-c9 stored: $out"
state_a3=$(cert_field c-a3 state)
out=$(cpctl cp revoke c-a3 2>&1 || true)
[[ $out == *UNAVAILABLE* ]] && [ "$(cert_field c-a3 state)" = "$state_a3" ] &&
	[ "$state_a3" != revoked ] &&
	pass "ca-authd down: revoke UNAVAILABLE, c-a3 unchanged" || fail "revoke, ca down: $out"
out=$(cpctl cp scan 2>&1) && out=$(stb stb-a $SA auth keyinfo c-a3) &&
	pass "a scan without ca-authd leaves valid certificates serving" || fail "scan, ca down: $out"

# --- throttling by source address ---
stop_daemon cert-proxyd
start_daemon cert-proxyd "$(cp_extra 0 86400 2)"
stb stb-x $SA badmac >/dev/null 2>&1 || true
out=$(stb stb-y $SA badmac || true)
[[ $out == *throttled* ]] || fail "address penalty not announced: $out"
out=$(stb stb-zz $SA auth || true)
[[ $out == "auth RATE_LIMITED"* ]] && pass "failures from one address throttle its guessing" ||
	fail "address penalty: $out"
out=$(stb stb-a $SA auth || true)
[ "$out" = "auth OK" ] &&
	pass "a box that logged in from that address before still gets in (trust kept across restarts)" ||
	fail "stb-a from a throttled address: $out"

# --- audit ---
audit=$(cpctl -j audit export)
for ev in stb_import auth_lockout cert_issue cert_revoke cert_update_needed cert_renew stb_enable stb_delete; do
	grepq "\"event\":\"$ev\"" <<<"$audit" && pass "audit has $ev" || fail "audit lacks $ev"
done
cpctl audit verify >/dev/null && pass "audit chain intact" || fail "audit chain broken"
for s in $SA $SB $SC $SD; do
	grepq -i "$s" <<<"$audit" "$T/cert-proxyd.log" && fail "a device secret reached a log"
done
finish
