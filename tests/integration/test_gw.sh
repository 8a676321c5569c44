#!/usr/bin/env bash
# media-gw against a real ca-authd: subscriber import, LOGIN_START and
# LOGIN_FINISH refusals (not a subscriber, suspended, unknown session,
# replayed nonce, expired session, forged proof, proof for another session,
# foreign/revoked/expired certificate, CA unavailable), access tokens stored
# hashed, introspection by role, sessions that do not survive a restart, and
# the audit chain.  The STB is gw_client, which makes its own key info with
# certificates ca-authd issues to the admin; cert-proxyd is not involved.
. "$(dirname "$0")/lib.sh"

# --- -t runs media-gw's own checks ---
echo '{"ca": {"addr": "ca.example:7101"}}' >"$T/bad.json"
out=$("$STB_BIN_media_gw" -t -c "$T/bad.json" 2>&1) && fail "-t accepted a name that does not resolve: $out" ||
	{ [[ $out == *"$T/bad.json: ca.addr: 'ca.example:7101': host name does not resolve"* ]] &&
		pass "-t names a ca.addr that does not resolve" || fail "-t ca.addr: $out"; }
echo '{"ca": {"addr": "ca.example"}}' >"$T/bad.json"
out=$("$STB_BIN_media_gw" -t -c "$T/bad.json" 2>&1) && fail "-t accepted an address without a port"
[[ $out == *"'ca.example' is not host:port"* ]] || fail "-t ca.addr without a port: $out"
echo '{"login_ttl_s": 120, "token_ttl_s": 60}' >"$T/bad.json"
out=$("$STB_BIN_media_gw" -t -c "$T/bad.json" 2>&1) && fail "-t accepted token < login TTL" ||
	{ [[ $out == *"token_ttl_s (60) must be at least login_ttl_s (120)"* ]] &&
		pass "-t: a token outlives its login session" || fail "-t TTLs: $out"; }

pki_init
"$STB_SRC/scripts/pki-bootstrap.sh" --reissue "$PKI" media-server >/dev/null
write_config ca-authd
"$STB_BIN_ca_authd" init -c "$T/ca-authd.json" >>"$T/ca-authd.log" 2>&1 ||
	{ echo "ca-authd init failed"; tail "$T/ca-authd.log"; exit 1; }
start_daemon ca-authd
CA=127.0.0.1:${PORT[ca-authd]}
# media-gw reaches ca-authd by a host name where localhost is 127.0.0.1
CANAME=$CA
[ "$(getent ahosts localhost 2>/dev/null | awk 'NR == 1 { print $1 }')" = 127.0.0.1 ] &&
	CANAME=localhost:${PORT[ca-authd]}
log "media-gw's ca.addr: $CANAME"
GWCONF="\"login_ttl_s\": 2, \"token_ttl_s\": 600,
  \"ca\": { \"addr\": \"$CANAME\", \"timeout_ms\": 2000 }"
start_daemon media-gw "$GWCONF"
GW=127.0.0.1:${PORT[media-gw]}
DB=$T/state-media-gw/media-gw.db

gwc() { "$STB_GW_CLIENT" "$PKI" "$GW" "$CA" "$@" 2>&1; }
# ctl_as IDENTITY ARGS...: stbctl against media-gw with another certificate
ctl_as() {
	local who=$1
	shift
	"$STBCTL" -a "$GW" --ca "$PKI/ca.crt" --cert "$PKI/$who.crt" --key "$PKI/$who.key" \
		-T 5000 "$@"
}
field() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }
sql() { sqlite3 "$DB" "$@"; }

# --- subscribers: CSV and JSON, upsert ---
cat >"$T/subs.csv" <<'CSV'
device_id,cert_id,state
# a comment, and a blank line

stb-1,cert-1,active
stb-2, cert-2 ,suspended
stb-3,cert-3
CSV
out=$(ctl media-gw gw import "$T/subs.csv") && [[ $out == "imported 3 subscriber(s), 0 failed" ]] &&
	pass "CSV import" || fail "CSV import: $out"
cat >"$T/subs.json" <<'JSON'
[{"device_id": "stb-4", "cert_id": "cert-4", "state": "active"},
 {"device_id": "stb-5", "cert_id": "cert-5", "active": false}]
JSON
out=$(ctl media-gw gw import "$T/subs.json") && [[ $out == "imported 2 subscriber(s), 0 failed" ]] &&
	pass "JSON import" || fail "JSON import: $out"
printf 'stb-6,cert-6,maybe\nbad id!,cert-7\nstb-8\n' >"$T/bad.csv"
if out=$(ctl media-gw gw import "$T/bad.csv" 2>"$T/err"); then
	fail "a bad CSV imported cleanly: $out"
else
	# file:line, as cp import names them
	[[ $out == "imported 0 subscriber(s), 3 failed" ]] && grepq "bad.csv:1: " "$T/err" &&
		grepq "bad.csv:2: BAD_REQUEST" "$T/err" && grepq "bad.csv:3: " "$T/err" &&
		pass "bad CSV lines refused one by one" || fail "bad CSV: $out / $(cat "$T/err")"
fi
subs=$(ctl media-gw gw subs --json)
[ "$(jq length <<<"$subs")" = 5 ] &&
	[ "$(jq -r '.[] | select(.device_id=="stb-2") | .state + " " + .cert_id' <<<"$subs")" = "suspended cert-2" ] &&
	[ "$(jq -r '.[] | select(.device_id=="stb-5") | .state' <<<"$subs")" = suspended ] &&
	[ "$(jq -r '.[] | select(.device_id=="stb-3") | .state' <<<"$subs")" = active ] &&
	pass "gw subs lists five with their states" || fail "gw subs: $subs"
ctl media-gw gw subs | grepq '^stb-2 *cert-2 *suspended' && pass "gw subs table" ||
	fail "gw subs table: $(ctl media-gw gw subs)"
printf 'stb-3,cert-3b,suspended\n' >"$T/up.csv"
ctl media-gw gw import "$T/up.csv" >/dev/null &&
	[ "$(sql "SELECT cert_id, active FROM subscribers WHERE device_id='stb-3'")" = "cert-3b|0" ] &&
	[ "$(sql "SELECT count(*) FROM subscribers")" = 5 ] &&
	pass "import replaces a subscriber (upsert)" || fail "upsert: $(sql 'SELECT * FROM subscribers')"

# --- LOGIN_START ---
out=$(gwc start nobody)
[[ $out == "start NOT_FOUND"*"not a subscriber"* ]] && pass "not a subscriber: NOT_FOUND" ||
	fail "not a subscriber: $out"
out=$(gwc start stb-2)
[[ $out == "start FORBIDDEN"*suspended* ]] && pass "suspended: FORBIDDEN" || fail "suspended: $out"
out=$(gwc start stb-1)
[[ $out == "start OK cert_id=cert-1" ]] && pass "subscriber gets a challenge for cert-1" ||
	fail "start: $out"

# --- LOGIN_FINISH: success, token stored hashed ---
out=$(gwc ok stb-1 cert-1)
tok=$(field token "$out")
exp=$(field expires "$out")
now=$(date +%s)
[[ $out == *"finish OK"* ]] && [ ${#tok} = 64 ] && [ "$exp" -gt "$now" ] &&
	[ "$exp" -le $((now + 601)) ] && pass "login with a fresh certificate: token, TTL 600" ||
	fail "login: $out"
hash=$(printf '%s' "$tok" | xxd -r -p | openssl dgst -sha256 -r | cut -d' ' -f1)
[ "$(sql "SELECT device_id, cert_id FROM tokens WHERE lower(hex(hash))='$hash'")" = "stb-1|cert-1" ] &&
	[ "$(sql "SELECT count(*) FROM tokens WHERE lower(hex(hash)) LIKE '%$tok%'")" = 0 ] &&
	pass "the store holds SHA-256(token), not the token" ||
	fail "token row: $(sql 'SELECT lower(hex(hash)), device_id FROM tokens')"

# --- token introspection: roles, active / inactive ---
out=$(ctl media-gw gw introspect "$tok")
[ "$out" = "active device=stb-1 cert=cert-1 expires=$(date -u -d "@$exp" +%Y-%m-%dT%H:%M:%SZ)" ] &&
	pass "admin introspects: active" ||
	fail "introspect: $out"
out=$(ctl_as media-server gw introspect --json "$tok")
[ "$(jq -r '.active, .device_id, .cert_id, .expires' <<<"$out" | tr '\n' ' ')" = "true stb-1 cert-1 $exp " ] &&
	pass "media server introspects: active (JSON)" || fail "media-server introspect: $out"
if out=$(ctl_as cert-proxyd gw introspect "$tok" 2>&1); then
	fail "cert-proxyd may introspect: $out"
else
	[[ $out == *FORBIDDEN* ]] && pass "wrong role: FORBIDDEN" || fail "wrong role: $out"
fi
if out=$(ctl_as media-server gw import "$T/up.csv" 2>&1); then
	fail "a media server may import subscribers: $out"
else
	[[ $out == *FORBIDDEN* ]] && pass "media server may not import: FORBIDDEN" ||
		fail "media-server import: $out"
fi
out=$(ctl media-gw gw introspect "$(openssl rand -hex 32)")
[ "$out" = inactive ] && pass "unknown token inactive" || fail "unknown token: $out"
printf 'stb-1,cert-1,suspended\n' >"$T/s1.csv"
ctl media-gw gw import "$T/s1.csv" >/dev/null
out=$(ctl media-gw gw introspect --json "$tok")
[ "$(jq -c . <<<"$out")" = '{"active":false}' ] &&
	pass "suspending the subscriber deactivates its token (and hides whose it was)" ||
	fail "suspended token: $out"
out=$(gwc start stb-1)
[[ $out == "start FORBIDDEN"* ]] && pass "suspended stb-1 cannot start" || fail "$out"
printf 'stb-1,cert-1,active\n' >"$T/s1.csv"
ctl media-gw gw import "$T/s1.csv" >/dev/null
[[ $(ctl media-gw gw introspect "$tok") == active* ]] && pass "reactivated: token active again" ||
	fail "reactivated token"

# --- LOGIN_FINISH refusals ---
out=$(gwc unknown -)
[[ $out == "finish NOT_FOUND"* ]] && pass "unknown session: NOT_FOUND" || fail "unknown: $out"
out=$(gwc replay stb-1 cert-1)
mapfile -t fin < <(grep '^finish' <<<"$out")
[[ ${fin[0]} == "finish OK"* ]] && [[ ${fin[1]} == "finish REPLAY"* ]] &&
	pass "replayed nonce: the first finish wins, the replay gets REPLAY" || fail "replay: $out"
out=$(gwc late stb-1 cert-1 3)
[[ $out == *"finish EXPIRED"*"expired"* ]] && pass "expired session: EXPIRED" ||
	fail "late: $out"
out=$(gwc forged stb-1 cert-1)
[[ $out == *"finish UNAUTHENTICATED"* ]] && pass "forged proof: UNAUTHENTICATED" ||
	fail "forged: $out"
out=$(gwc other stb-1 cert-1)
[[ $out == *"finish UNAUTHENTICATED"* ]] && pass "proof for another session: UNAUTHENTICATED" ||
	fail "other session: $out"
out=$(gwc foreign stb-1 cert-1)
[[ $out == *"finish UNAUTHENTICATED"* ]] && pass "certificate from another CA: UNAUTHENTICATED" ||
	fail "foreign: $out"
out=$(gwc revoked stb-1 cert-1)
[[ $out == *"finish REVOKED certificate revoked"* ]] && pass "revoked certificate: REVOKED" ||
	fail "revoked: $out"
out=$(gwc expired-cert stb-1 cert-1)
[[ $out == *"finish EXPIRED"* ]] && pass "expired certificate: EXPIRED" || fail "expired cert: $out"
tokens=$(sql "SELECT count(*) FROM tokens")
[ "$tokens" = 2 ] && pass "only the two good logins left tokens" || fail "tokens: $tokens"

# --- a session from before a restart: its id carries what the check needs
# (sid.c), its single use is a row (login_used), so it still works once ---
stop_daemon media-gw
start_daemon media-gw "\"login_ttl_s\": 60, \"token_ttl_s\": 600,
  \"ca\": { \"addr\": \"$CA\", \"timeout_ms\": 2000 }"
rm -f "$T/go"
gwc resume stb-1 cert-1 "$T/go" >"$T/resume.out" &
rpid=$!
for _ in $(seq 1 200); do grepq '^start OK' "$T/resume.out" && break; sleep 0.05; done
stop_daemon media-gw
start_daemon media-gw
touch "$T/go"
wait $rpid || true
out=$(cat "$T/resume.out")
[[ $out == *"finish OK"* ]] && pass "a session from before a restart: checked from its id, OK" ||
	fail "resume: $out"
[[ $(ctl media-gw gw introspect "$tok") == active* ]] && pass "tokens survive the restart" ||
	fail "token after restart"

# --- suspended while ca-authd was checking: no token ---
rm -f "$T/go"
gwc resume stb-4 cert-4 "$T/go" >"$T/resume.out" &
rpid=$!
for _ in $(seq 1 200); do grepq '^start OK' "$T/resume.out" && break; sleep 0.05; done
printf 'stb-4,cert-4,suspended\n' >"$T/s4.csv"
ctl media-gw gw import "$T/s4.csv" >/dev/null
touch "$T/go"
wait $rpid || true
out=$(cat "$T/resume.out")
[[ $out == *"finish FORBIDDEN subscriber stb-4 was suspended or changed during the login"* ]] &&
	[ "$(sql "SELECT count(*) FROM tokens WHERE device_id='stb-4'")" = 0 ] &&
	pass "suspended during the login: FORBIDDEN, no token" || fail "suspended meanwhile: $out"

# --- CA unavailable: refused, and the nonce is spent all the same ---
stop_daemon ca-authd
out=$(gwc reuse stb-1)
mapfile -t fin < <(grep '^finish' <<<"$out")
[[ ${fin[0]} == "finish UNAVAILABLE CA unavailable"* ]] && [[ ${fin[1]} == "finish REPLAY"* ]] &&
	pass "ca-authd down: UNAVAILABLE 'CA unavailable', then REPLAY" || fail "CA down: $out"

# --- audit: grants, the late denial, the refusals summarised (each media-gw
# flushed its summaries when it stopped), no secrets, chain intact ---
audit=$(ctl media-gw -j audit export | jq -c ".[]")
[ "$(jq -r 'select(.event=="login_granted") | .event' <<<"$audit" | wc -l)" -ge 2 ] &&
	jq -r 'select(.event=="refusals") | .detail' <<<"$audit" | grepq 'login_finish from 127.0.0.1 .*REPLAY' &&
	jq -r 'select(.event=="refusals") | .detail' <<<"$audit" | grepq 'login_start from 127.0.0.1 .*NOT_FOUND' &&
	[ "$(jq -r 'select(.event=="login_denied") | .detail' <<<"$audit" | grep -c 'step=start')" = 0 ] &&
	jq -r 'select(.event=="login_denied") | .detail' <<<"$audit" | grepq 'device=stb-4 cert=cert-4 .* FORBIDDEN' &&
	jq -r 'select(.event=="subscriber_import") | .detail' <<<"$audit" | grepq 'device=stb-2 cert=cert-2 suspended' &&
	pass "audit has grants, denials and imports" || fail "audit: $audit"
grepq -i "$tok" <<<"$audit" && fail "the token is in the audit log" || pass "no token in the audit log"
grepq -i "$tok" "$T/media-gw.log" && fail "the token is in the log" || pass "no token in the log"
ctl media-gw audit verify | grepq -i 'intact\|ok' && pass "audit chain intact" ||
	fail "audit verify: $(ctl media-gw audit verify)"

finish
