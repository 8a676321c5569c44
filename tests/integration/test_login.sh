#!/usr/bin/env bash
# Flow A end to end: ca-authd, cert-proxyd and media-gw as real processes,
# the STB is libstbclient through `stb-client login` / `stb-client watch`.
# First login (certificate missing -> fetched), later login (valid, no
# fetch), an expired and a revoked certificate renewed on login, the
# scanner pushing an update to a watching STB that acknowledges and hears
# CERT_UPDATED, and each refusal an STB can meet; after each, the status the
# STB printed and the state left in the three stores.  `openssl verify`
# checks a fetched certificate against ca-authd's chain.
. "$(dirname "$0")/lib.sh"

pki_init
write_config ca-authd
"$STB_BIN_ca_authd" init -c "$T/ca-authd.json" >>"$T/ca-authd.log" 2>&1 ||
	{ echo "ca-authd init failed"; tail "$T/ca-authd.log"; exit 1; }
start_daemon ca-authd
CA=127.0.0.1:${PORT[ca-authd]}
CPCONF="\"ca\": { \"addr\": \"$CA\" }, \"scan\": { \"interval_s\": 3600 }"
start_daemon cert-proxyd "$CPCONF"
CP=127.0.0.1:${PORT[cert-proxyd]}
start_daemon media-gw "\"ca\": { \"addr\": \"$CA\", \"timeout_ms\": 3000 },
  \"refusals\": { \"interval_s\": 1 }"
GW=127.0.0.1:${PORT[media-gw]}
CADB=$T/state-ca-authd/ca-authd.db
CPDB=$T/state-cert-proxyd/cert-proxyd.db
GWDB=$T/state-media-gw/media-gw.db

field() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }
# stb DEVICE ARGS...: stb-client with that device's secret in the environment
declare -A SECRET
stb() {
	local dev=$1
	shift
	STB_DEVICE_SECRET=${SECRET[$dev]:-00} "$STB_CLIENT" --ca "$PKI/ca.crt" -T 8000 "$@"
}
login() { stb "$1" -a "$GW" login --cp "$CP" "$1" 2>&1; }
cp_cert() { sqlite3 "$CPDB" "SELECT lower(hex(serial)), state FROM certs WHERE cert_id='$1'"; }
ca_state() { sqlite3 "$CADB" "SELECT state FROM certs WHERE lower(hex(serial))='$1'"; }
# wait_for FILE PATTERN: until a line matches (10 s)
wait_for() {
	for _ in $(seq 1 200); do
		grepq -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

# --- the operator's side: STBs with secrets at cert-proxyd, subscribers at media-gw ---
: >"$T/stbs.csv"
for d in stb-1 stb-2 stb-3 stb-4 stb-w stb-s stb-x; do
	SECRET[$d]=$(openssl rand -hex 32)
	echo "$d,${SECRET[$d]},1,cert-${d#stb-}" >>"$T/stbs.csv" # the cert_id it may hold
done
ctl cert-proxyd cp import "$T/stbs.csv" >/dev/null || fail "cp import"
cat >"$T/subs.csv" <<'CSV'
stb-1,cert-1
stb-2,cert-2
stb-3,cert-3
stb-4,cert-4
stb-w,cert-w
stb-s,cert-s,suspended
CSV
ctl media-gw gw import "$T/subs.csv" >/dev/null || fail "gw import"

# --- first login: no certificate yet, fetched from ca-authd ---
out=$(login stb-1)
tok1=$(field token "$out")
[[ $out == "login ok device=stb-1 cert_id=cert-1 cert=NOT_FOUND fetched=1 "* ]] && [ ${#tok1} = 64 ] &&
	pass "first login fetches the missing certificate" || fail "first login: $out"
read -r serial1 state1 < <(cp_cert cert-1 | tr '|' ' ')
[ -n "$serial1" ] && [ "$state1" = 0 ] && [ "$(ca_state "$serial1")" = good ] &&
	pass "cert-proxyd stores cert-1 ($serial1), ca-authd has it good" ||
	fail "stores after first login: cp='$(cp_cert cert-1)' ca='$(ca_state "$serial1")'"
[[ $(ctl media-gw gw introspect "$tok1") == "active device=stb-1 cert=cert-1 "* ]] &&
	pass "the token is active at media-gw" || fail "introspect: $(ctl media-gw gw introspect "$tok1")"
[ "$(sqlite3 "$GWDB" "SELECT lower(hex(serial)) FROM tokens WHERE device_id='stb-1'")" = "$serial1" ] &&
	pass "media-gw recorded the certificate serial ca-authd verified" ||
	fail "token serial: $(sqlite3 "$GWDB" 'SELECT device_id, lower(hex(serial)) FROM tokens')"

# --- openssl verify of the fetched certificate against ca-authd's chain ---
sqlite3 "$CPDB" "SELECT hex(cert_der) FROM certs WHERE cert_id='cert-1'" | xxd -r -p |
	openssl x509 -inform DER -out "$T/cert-1.pem"
CADIR=$T/state-ca-authd
if openssl verify -CAfile "$CADIR/root.pem" -untrusted "$CADIR/chain-issuing.pem" \
	"$T/cert-1.pem" >"$T/verify.out" 2>&1; then
	pass "openssl verify: $(cat "$T/verify.out")"
else
	fail "openssl verify: $(cat "$T/verify.out")"
fi
openssl x509 -in "$T/cert-1.pem" -noout -text | grepq 'stb-1' &&
	pass "the certificate names the device" || fail "certificate names"

# --- later login: the stored certificate is valid, no fetch ---
out=$(login stb-1)
[[ $out == "login ok device=stb-1 cert_id=cert-1 cert=OK fetched=0 "* ]] &&
	pass "later login uses the valid certificate" || fail "later login: $out"
[ "$(cp_cert cert-1)" = "$serial1|0" ] && pass "no new certificate was issued" ||
	fail "cert-1 changed: $(cp_cert cert-1)"
[ "$(sqlite3 "$CADB" "SELECT count(*) FROM certs WHERE cert_id='cert-1'")" = 1 ] &&
	pass "ca-authd issued cert-1 once" || fail "ca-authd cert-1 count"
tok2=$(field token "$out")
[ "$tok2" != "$tok1" ] && [[ $(ctl media-gw gw introspect "$tok1") == active* ]] &&
	pass "each login gets its own token; the first stays active" || fail "tokens"

# --- revoked certificate: renewed on the next login ---
ctl cert-proxyd cp revoke cert-1 >/dev/null || fail "cp revoke"
[ "$(ca_state "$serial1")" = revoked ] && [ "$(cp_cert cert-1)" = "$serial1|1" ] &&
	pass "cp revoke: revoked at ca-authd and in cert-proxyd" ||
	fail "after revoke: ca=$(ca_state "$serial1") cp=$(cp_cert cert-1)"
out=$(login stb-1)
[[ $out == "login ok device=stb-1 cert_id=cert-1 cert=REVOKED fetched=1 "* ]] &&
	pass "revoked certificate renewed on login" || fail "revoked login: $out"
read -r serial1b state1b < <(cp_cert cert-1 | tr '|' ' ')
[ "$serial1b" != "$serial1" ] && [ "$state1b" = 0 ] && [ "$(ca_state "$serial1b")" = good ] &&
	[ "$(ca_state "$serial1")" = revoked ] &&
	pass "cert-1 replaced by $serial1b; the old one stays revoked" ||
	fail "after renewal: cp=$(cp_cert cert-1) old=$(ca_state "$serial1")"

# --- expired certificate: renewed on the next login ---
stop_daemon cert-proxyd
start_daemon cert-proxyd "$CPCONF, \"issue\": { \"validity_s\": 3 }"
out=$(login stb-2)
[[ $out == *"cert=NOT_FOUND fetched=1 "* ]] && pass "stb-2 gets a 3-second certificate" ||
	fail "stb-2 first: $out"
read -r serial2 _ < <(cp_cert cert-2 | tr '|' ' ')
na=$(sqlite3 "$CPDB" "SELECT not_after FROM certs WHERE cert_id='cert-2'")
while [ "$(date +%s)" -le "$na" ]; do sleep 0.5; done
stop_daemon cert-proxyd
start_daemon cert-proxyd "$CPCONF"
out=$(login stb-2)
[[ $out == "login ok device=stb-2 cert_id=cert-2 cert=EXPIRED fetched=1 "* ]] &&
	pass "expired certificate renewed on login" || fail "expired login: $out"
read -r serial2b _ < <(cp_cert cert-2 | tr '|' ' ')
[ "$serial2b" != "$serial2" ] &&
	[ "$(sqlite3 "$CPDB" "SELECT CASE WHEN not_after > $(($(date +%s) + 3600)) THEN 1 ELSE 0 END FROM certs WHERE cert_id='cert-2'")" = 1 ] &&
	pass "cert-2 replaced by a certificate of the profile's validity" ||
	fail "cert-2 after renewal: $(cp_cert cert-2)"

# --- the scanner pushes an update to a watching STB ---
login stb-w >/dev/null || fail "stb-w first login"
read -r serialw _ < <(cp_cert cert-w | tr '|' ' ')
stb stb-w -a "$CP" watch --count 1 --seconds 60 stb-w >"$T/watch.out" 2>&1 &
PID[watch]=$!
wait_for "$T/watch.out" '^watching' || fail "the watcher did not authenticate: $(cat "$T/watch.out")"
ctl cert-proxyd cp revoke cert-w >/dev/null || fail "revoke cert-w"
ctl cert-proxyd cp scan >/dev/null || fail "cp scan"
rc=0
wait "${PID[watch]}" || rc=$?
unset "PID[watch]"
out=$(cat "$T/watch.out")
[ $rc = 0 ] && grepq '^update-needed cert_id=cert-w reason=3 acked' <<<"$out" &&
	grepq '^updated cert_id=cert-w not_after=[0-9]' <<<"$out" &&
	pass "watching STB: UPDATE_NEEDED (revoked), acknowledged, CERT_UPDATED" ||
	fail "watch (rc $rc): $out"
read -r serialw2 statew2 < <(cp_cert cert-w | tr '|' ' ')
[ "$serialw2" != "$serialw" ] && [ "$statew2" = 0 ] && [ "$(ca_state "$serialw2")" = good ] &&
	[ "$(sqlite3 "$CPDB" "SELECT count(*) FROM pending WHERE cert_id='cert-w'")" = 0 ] &&
	pass "cert-w renewed, nothing left pending" ||
	fail "after the watch: cp=$(cp_cert cert-w) pending=$(sqlite3 "$CPDB" 'SELECT * FROM pending')"
nw=$(field not_after "$(grep '^updated' <<<"$out")")
[ "$nw" = "$(sqlite3 "$CPDB" "SELECT not_after FROM certs WHERE cert_id='cert-w'")" ] &&
	pass "CERT_UPDATED carries the new notAfter" || fail "not_after $nw"
out=$(login stb-w)
[[ $out == *"cert=OK fetched=0 "* ]] && pass "the renewed certificate logs in as is" ||
	fail "stb-w after renewal: $out"

# --- revoked at ca-authd behind cert-proxyd's back: refused, then renewed ---
ctl ca-authd ca revoke "$serial1b" >/dev/null || fail "ca revoke"
out=$(login stb-1 || true)
[[ $out == *"login: REVOKED: login finish at media-gw: certificate revoked"* ]] &&
	pass "certificate revoked at the CA: REVOKED at login finish" || fail "revoked at CA: $out"
[ "$(cp_cert cert-1)" = "$serial1b|0" ] && pass "cert-proxyd does not know yet" ||
	fail "cp after CA revoke: $(cp_cert cert-1)"
ctl cert-proxyd cp scan >/dev/null || fail "cp scan"
out=$(login stb-1)
[[ $out == "login ok device=stb-1 cert_id=cert-1 cert=REVOKED fetched=1 "* ]] &&
	pass "after the scan the next login renews it" || fail "after scan: $out"
read -r serial1c _ < <(cp_cert cert-1 | tr '|' ' ')
[ "$serial1c" != "$serial1b" ] && [ "$(ca_state "$serial1c")" = good ] &&
	pass "cert-1 renewed again ($serial1c)" || fail "cert-1: $(cp_cert cert-1)"

# --- refusals an STB meets ---
out=$(login stb-x || true)
[[ $out == *"login: NOT_FOUND: login start at media-gw: device stb-x is not a subscriber"* ]] &&
	pass "not a subscriber: NOT_FOUND at login start" || fail "not a subscriber: $out"
out=$(login stb-s || true)
[[ $out == *"login: FORBIDDEN: login start at media-gw: subscriber stb-s is suspended"* ]] &&
	pass "suspended: FORBIDDEN at login start" || fail "suspended: $out"
good=${SECRET[stb-3]}
SECRET[stb-3]=$(openssl rand -hex 32)
out=$(login stb-3 || true)
[[ $out == *"login: UNAUTHENTICATED: authentication at cert-proxyd"* ]] &&
	pass "wrong device secret: UNAUTHENTICATED at cert-proxyd" || fail "wrong secret: $out"
SECRET[stb-3]=$good
[ -z "$(cp_cert cert-3)" ] && [ "$(sqlite3 "$GWDB" "SELECT count(*) FROM tokens WHERE device_id='stb-3'")" = 0 ] &&
	pass "a refused login leaves no certificate and no token" || fail "stb-3 state"
printf '%s\n' "${SECRET[stb-4]}" >"$T/stb-4.secret"
out=$(env -u STB_DEVICE_SECRET "$STB_CLIENT" --ca "$PKI/ca.crt" -a "$GW" login --cp "$CP" \
	--secret-file "$T/stb-4.secret" stb-4 2>&1)
[[ $out == "login ok device=stb-4 cert_id=cert-4 cert=NOT_FOUND fetched=1 "* ]] &&
	pass "the device secret can come from a file" || fail "secret file: $out"
out=$(env -u STB_DEVICE_SECRET "$STB_CLIENT" --ca "$PKI/ca.crt" -a "$GW" login --cp "$CP" stb-4 2>&1 || true)
[[ $out == *"set STB_DEVICE_SECRET"* ]] && pass "no secret, no login attempt" || fail "no secret: $out"
printf '%sxyz\n' "${SECRET[stb-4]}" >"$T/bad.secret"
rc=0
out=$("$STB_CLIENT" --ca "$PKI/ca.crt" -a "$GW" login --cp "$CP" --secret-file "$T/bad.secret" \
	stb-4 2>&1) || rc=$?
[ $rc = 2 ] && [[ $out == *"must be 16..64 bytes of hex"* ]] &&
	pass "a secret file with trailing junk is refused, not truncated" || fail "bad secret: $rc $out"
stop_daemon ca-authd
out=$(login stb-4 || true)
[[ $out == *"login: UNAVAILABLE: login finish at media-gw: CA unavailable"* ]] &&
	pass "ca-authd down: UNAVAILABLE 'CA unavailable' at login finish" || fail "CA down: $out"
[ "$(sqlite3 "$GWDB" "SELECT count(*) FROM tokens WHERE device_id='stb-4'")" = 1 ] &&
	pass "no token for the refused login" || fail "stb-4 tokens"
out=$(login stb-3 || true)
[[ $out == *"UNAVAILABLE: certificate fetch at cert-proxyd"* ]] &&
	pass "no certificate and ca-authd down: UNAVAILABLE at the fetch" || fail "fetch, CA down: $out"

# --- audit on media-gw: the grants, and the refusals summarised each second ---
for _ in $(seq 1 100); do
	audit=$(ctl media-gw -j audit export | jq -c ".[]")
	jq -r 'select(.event=="refusals") | .detail' <<<"$audit" | grepq 'login_start .*FORBIDDEN' && break
	sleep 0.1
done
[ "$(jq -r 'select(.event=="login_granted") | .event' <<<"$audit" | wc -l)" = 9 ] &&
	jq -r 'select(.event=="refusals") | .detail' <<<"$audit" | grepq 'login_start from 127.0.0.1 .*FORBIDDEN' &&
	pass "media-gw audited 9 grants and summarised the refusals" || fail "audit: $audit"
for t in "$tok1" "$tok2"; do
	{ cat "$T"/*.log; echo "$audit"; } | grepq -i "$t" && fail "a token leaked into a log"
done
ctl media-gw audit verify | grepq intact && pass "media-gw audit chain intact" || fail "audit verify"

# --- the operator's changes: suspend, revoke, delete ---
[ "$(ctl media-gw gw suspend stb-1)" = "stb-1 suspended" ] &&
	[ "$(ctl media-gw gw introspect "$tok2")" = inactive ] &&
	pass "gw suspend: stb-1's token is inactive" || fail "suspend: $(ctl media-gw gw introspect "$tok2")"
ctl media-gw gw activate stb-1 >/dev/null &&
	[[ $(ctl media-gw gw introspect "$tok2") == "active device=stb-1 "*"Z" ]] &&
	pass "gw activate: active again (expiry in ISO-8601)" || fail "activate: $(ctl media-gw gw introspect "$tok2")"
[ "$(ctl media-gw gw revoke "$tok1")" = "1 token(s) revoked" ] &&
	[ "$(ctl media-gw gw introspect "$tok1")" = inactive ] &&
	[[ $(ctl media-gw gw introspect "$tok2") == active* ]] &&
	pass "gw revoke TOKEN: that token only" || fail "revoke one"
rc=0
out=$(ctl media-gw gw revoke "$tok1" 2>&1) || rc=$?
[ $rc = 1 ] && [[ $out == *NOT_FOUND* ]] && pass "revoking it again: NOT_FOUND" || fail "again: $rc $out"
out=$(ctl media-gw -j gw revoke --device stb-1)
grepq '"tokens_revoked":[[:space:]]*[1-9]' <<<"$out" &&
	[ "$(ctl media-gw gw introspect "$tok2")" = inactive ] &&
	[ "$(sqlite3 "$GWDB" "SELECT count(*) FROM tokens WHERE device_id='stb-1'")" = 0 ] &&
	pass "gw revoke --device: every token of stb-1" || fail "revoke device: $out"
out=$(ctl media-gw gw delete stb-2)
[[ $out == "stb-2 deleted, "* ]] && ! ctl media-gw gw subs | grepq '^stb-2 ' &&
	[ "$(sqlite3 "$GWDB" "SELECT count(*) FROM tokens WHERE device_id='stb-2'")" = 0 ] &&
	pass "gw delete: the subscriber and its tokens" || fail "delete: $out"
audit=$(ctl media-gw -j audit export | jq -c ".[]")
for ev in subscriber_enable token_revoke subscriber_delete; do
	jq -r .event <<<"$audit" | grepq "^$ev$" || fail "audit lacks $ev"
done
grepq -i "$tok1" <<<"$audit" && fail "a revoked token reached the audit"

finish
