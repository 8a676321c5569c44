#!/usr/bin/env bash
# Certificate-ID squatting (issue 9, point 8): an authenticated box asks
# cert-proxyd for cert_ids that are not its own: the victim's (imported
# with the victim, not fetched yet) and unassigned ones, once each and 16
# pipelined.  Every one is FORBIDDEN before ca-authd is asked: nothing is
# issued, stored or audited for them, and the victim's own login (media-gw,
# cert-proxyd, ca-authd, through libstbclient) works during and after the
# attack.  The import side: a cert_id is one box's, and a box keeps the
# cert_ids of the certificates it holds.
. "$STB_SRC/tests/hostile/cp_lib.sh"
start_daemon cert-proxyd "\"ca\": { \"addr\": \"$CA\" }"
CP=127.0.0.1:${PORT[cert-proxyd]}
start_daemon media-gw "\"ca\": { \"addr\": \"$CA\", \"timeout_ms\": 5000 }"
GW=127.0.0.1:${PORT[media-gw]}
CPDB=$T/state-cert-proxyd/cert-proxyd.db
SV=$(openssl rand -hex 32)
SE=$(openssl rand -hex 32)

# the operator: both boxes with their cert_ids, both subscribers
# (secrets first, then the cert_ids: a build without cert_ids still runs the attack)
printf 'victim,%s\nevil,%s\n' "$SV" "$SE" >"$T/stbs.csv"
ctl cert-proxyd cp import "$T/stbs.csv" >/dev/null || fail "cp import"
printf 'victim,%s,1,victim.media\nevil,%s,1,evil.media\n' "$SV" "$SE" >"$T/ids.csv"
ctl cert-proxyd cp import "$T/ids.csv" >/dev/null || fail "cp import with cert_ids"
printf 'victim,victim.media\nevil,evil.media\n' >"$T/subs.csv"
ctl media-gw gw import "$T/subs.csv" >/dev/null || fail "gw import"

issued() { sqlite3 "$CADB" "SELECT count(*) FROM certs WHERE $1"; }
stored() { sqlite3 "$CPDB" "SELECT count(*) FROM certs WHERE $1"; }
audit_seq() { sqlite3 "$CPDB" "SELECT coalesce(max(seq), 0) FROM audit"; }
evil() { "$STB_CP_CLIENT" "$CP" "$PKI/ca.crt" evil "$SE" auth "$@" 2>&1 || true; }
login_victim() {
	STB_DEVICE_SECRET=$SV "$STB_CLIENT" --ca "$PKI/ca.crt" -T 8000 -a "$GW" login --cp "$CP" \
		victim 2>&1 || true
}

# --- the attack: the victim's cert_id, then unassigned ones ---
a0=$(audit_seq)
out=$(evil fetch victim.media keyinfo victim.media fetch free.media)
[ "$(grep -c '^fetch FORBIDDEN ' <<<"$out")" = 2 ] &&
	pass "evil: CERT_FETCH of victim.media and of an unassigned ID FORBIDDEN" ||
	fail "single fetches: $out"
# 16 distinct unassigned IDs pipelined, the victim logging in meanwhile
ids=()
for i in $(seq 1 16); do ids+=("squat-$i.media"); done
"$STB_CP_HOSTILE" "$CP" "$PKI/ca.crt" evil "$SE" 32 victim.media "${ids[@]}" \
	>"$T/pipe.out" 2>&1 &
hostile=$!
vout=$(login_victim)
wait $hostile || true
[ "$(cat "$T/pipe.out")" = "$(printf 'FORBIDDEN 32\nanswers 32')" ] &&
	pass "32 pipelined fetches of foreign IDs: 32 FORBIDDEN" ||
	fail "pipelined: $(cat "$T/pipe.out")"
[[ $vout == "login ok device=victim cert_id=victim.media cert=NOT_FOUND fetched=1 "* ]] &&
	pass "the victim's first login during the attack fetches victim.media" ||
	fail "victim during the attack: $vout"
[ "$(issued "device_id='evil'")" = 0 ] && [ "$(stored "device_id='evil'")" = 0 ] &&
	[ "$(issued "cert_id LIKE 'squat-%' OR cert_id='free.media'")" = 0 ] &&
	pass "nothing issued or stored for evil" ||
	fail "issued for evil: $(issued "device_id='evil'"), stored $(stored "device_id='evil'")"
[ "$(sqlite3 "$CPDB" "SELECT device_id FROM certs WHERE cert_id='victim.media'")" = victim ] &&
	[ "$(issued "cert_id='victim.media'")" = 1 ] &&
	pass "victim.media is the victim's, issued once" ||
	fail "victim.media: $(sqlite3 "$CPDB" "SELECT device_id FROM certs WHERE cert_id='victim.media'")"
# the refusals wrote nothing: after the attack the only audit row is the
# victim's issuance
[ "$(sqlite3 "$CPDB" "SELECT group_concat(event || ' ' || detail, ';') FROM audit WHERE seq > $a0")" = \
	"$(sqlite3 "$CPDB" "SELECT 'cert_issue ' || detail FROM audit WHERE seq > $a0 AND event='cert_issue' AND detail LIKE 'cert=victim.media device=victim %'")" ] &&
	[ "$(sqlite3 "$CPDB" "SELECT count(*) FROM audit WHERE seq > $a0")" = 1 ] &&
	pass "no audit row for any refusal" ||
	fail "audit rows: $(sqlite3 "$CPDB" "SELECT event, detail FROM audit WHERE seq > $a0")"
out=$(evil fetch victim.media)
[[ $out == *"fetch FORBIDDEN "* ]] && pass "victim.media stays FORBIDDEN to evil once issued" ||
	fail "after issue: $out"
vout=$(login_victim)
[[ $vout == "login ok device=victim cert_id=victim.media cert=OK fetched=0 "* ]] &&
	pass "the victim logs in again with its stored certificate" || fail "victim again: $vout"
out=$(evil fetch evil.media)
[[ $out == *"fetch OK "* ]] && pass "evil still gets its own evil.media" || fail "own fetch: $out"

# --- import: one box per cert_id; a box keeps what it holds ---
printf 'evil,%s,1,evil.media victim.media\n' "$SE" >"$T/grab.csv"
out=$(ctl cert-proxyd cp import "$T/grab.csv" 2>&1 || true)
[[ $out == *CONFLICT*"victim.media is assigned to victim"* ]] &&
	pass "importing another box's cert_id is a CONFLICT" || fail "grab: $out"
printf 'victim,%s,1,other.media\n' "$SV" >"$T/drop.csv"
out=$(ctl cert-proxyd cp import "$T/drop.csv" 2>&1 || true)
[[ $out == *CONFLICT*"holds certificate victim.media"* ]] &&
	pass "dropping a held cert_id is a CONFLICT" || fail "drop: $out"
printf 'victim,%s,1,victim.media  victim.backup\n' "$SV" >"$T/add.csv"
ctl cert-proxyd cp import "$T/add.csv" >/dev/null &&
	[ "$(ctl cert-proxyd cp stbs | awk '$1 == "victim" { print $(NF-1), $NF }')" = \
		"victim.backup victim.media" ] &&
	pass "cp stbs lists the victim's two cert_ids" || fail "cp stbs: $(ctl cert-proxyd cp stbs)"
printf 'victim,%s,1,bad*id\n' "$SV" >"$T/bad.csv"
out=$(ctl cert-proxyd cp import "$T/bad.csv" 2>&1 || true)
[[ $out == *BAD_REQUEST*"not an identifier"* ]] && pass "a bad cert_id is BAD_REQUEST" ||
	fail "bad id: $out"
finish
