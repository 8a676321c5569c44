#!/usr/bin/env bash
# The fetch race (issue 9, point 9): one authenticated box pipelines 64
# CERT_FETCHes of 64 cert_ids it was imported with, past its limit of 16
# (issue.max_per_device).  The limit must hold before ca-authd is asked:
# 16 issued and kept, 48 CONFLICT, no certificate issued only to be
# revoked again, no CRL entry.  Then 64 pipelined fetches of one new
# cert_id: one issuance.  Another box fetches its certificate during the
# attack.
. "$STB_SRC/tests/hostile/cp_lib.sh"
start_daemon cert-proxyd "\"ca\": { \"addr\": \"$CA\" }, \"issue\": { \"max_per_device\": 16 }"
CP=127.0.0.1:${PORT[cert-proxyd]}
CPDB=$T/state-cert-proxyd/cert-proxyd.db
SR=$(openssl rand -hex 32)
SG=$(openssl rand -hex 32)
SS=$(openssl rand -hex 32)
ids=()
for i in $(seq 1 64); do ids+=("race-$i"); done

# secrets first, then the cert_ids (a build without cert_ids still runs the race)
printf 'stb-race,%s\nstb-good,%s\nstb-same,%s\n' "$SR" "$SG" "$SS" >"$T/stbs.csv"
ctl cert-proxyd cp import "$T/stbs.csv" >/dev/null || fail "cp import"
printf 'stb-race,%s,1,%s\nstb-good,%s,1,good.media\nstb-same,%s,1,same.media\n' \
	"$SR" "${ids[*]}" "$SG" "$SS" >"$T/ids.csv"
ctl cert-proxyd cp import "$T/ids.csv" >/dev/null || fail "cp import with cert_ids"

issued() { sqlite3 "$CADB" "SELECT count(*) FROM certs WHERE device_id='$1'"; }
revoked() { sqlite3 "$CADB" "SELECT count(*) FROM certs WHERE state='revoked'"; }
stored() { sqlite3 "$CPDB" "SELECT count(*) FROM certs WHERE device_id='$1'"; }
crl_entries() {
	[ -f "$CADIR/crl.der" ] || { echo 0; return; }
	openssl crl -inform DER -in "$CADIR/crl.der" -noout -text | grep -c 'Serial Number' || true
}
crl0=$(crl_entries)

# --- 64 pipelined fetches of 64 cert_ids, a good box fetching meanwhile ---
"$STB_CP_HOSTILE" "$CP" "$PKI/ca.crt" stb-race "$SR" 64 "${ids[@]}" >"$T/race.out" 2>&1 &
hostile=$!
good=$("$STB_CP_CLIENT" "$CP" "$PKI/ca.crt" stb-good "$SG" auth fetch good.media 2>&1 || true)
wait $hostile || true
sleep 1 # a certificate revoked again would be revoked by now
log "race: $(tr '\n' ' ' <"$T/race.out")"
log "ca-authd issued $(issued stb-race) for stb-race, $(revoked) revoked; CRL $crl0 -> $(crl_entries)"
[ "$(cat "$T/race.out")" = "$(printf 'OK 16\nCONFLICT 48\nanswers 64')" ] &&
	pass "64 pipelined fetches: 16 OK, 48 CONFLICT" || fail "answers: $(tr "\n" " " <"$T/race.out")"
[ "$(issued stb-race)" = 16 ] && [ "$(stored stb-race)" = 16 ] &&
	pass "ca-authd issued 16 certificates for stb-race, cert-proxyd keeps all 16" ||
	fail "issued $(issued stb-race), stored $(stored stb-race)"
[ "$(revoked)" = 0 ] && [ "$(crl_entries)" = "$crl0" ] &&
	pass "nothing revoked, the CRL did not grow" ||
	fail "revoked $(revoked), CRL $crl0 -> $(crl_entries)"
[[ $good == *"fetch OK "* ]] && [ "$(issued stb-good)" = 1 ] &&
	pass "stb-good fetched its certificate during the race" || fail "stb-good: $good"
out=$("$STB_CP_CLIENT" "$CP" "$PKI/ca.crt" stb-race "$SR" auth fetch race-64 2>&1 || true)
[[ $out == *"fetch CONFLICT "* ]] && [ "$(issued stb-race)" = 16 ] &&
	pass "a 17th certificate stays a CONFLICT afterwards" || fail "17th: $out"

# --- 64 pipelined fetches of one new cert_id: one issuance ---
"$STB_CP_HOSTILE" "$CP" "$PKI/ca.crt" stb-same "$SS" 64 same.media >"$T/same.out" 2>&1 || true
[ "$(cat "$T/same.out")" = "$(printf 'OK 64\nanswers 64')" ] && [ "$(issued stb-same)" = 1 ] &&
	[ "$(revoked)" = 0 ] &&
	pass "64 pipelined fetches of one cert_id: 64 OK, one certificate issued" ||
	fail "same: $(tr "\n" " " <"$T/same.out"); issued $(issued stb-same)"
ctl cert-proxyd ping >/dev/null && pass "cert-proxyd still answers" || fail "ping"
finish
