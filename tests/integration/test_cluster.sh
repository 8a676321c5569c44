#!/usr/bin/env bash
# Flow A over several instances (issue 14): scripts/cluster.sh brings up 2
# instances each of ca-authd, cert-proxyd, media-gw and rendezvousd over the
# pg_server fixture's PostgreSQL, behind HAProxy (tcp, TLS passed through).
# Logins through the frontends are spread over both instances; a login
# session started at media-gw 1 finishes at media-gw 2 and its replay at 1
# is REPLAY; a certificate revoked through ca-authd 1 is refused by ca-authd
# 2 (login and OCSP); instance 1 of every daemon killed with SIGKILL during
# a burst of logins: every token and certificate the STBs were given is in
# the databases, the survivors keep serving, the restarted instances rejoin.
. "$(dirname "$0")/lib.sh"

CL=$STB_SRC/scripts/cluster.sh
C=$T/cluster
cluster_teardown() {
	local rc=$?
	if [ $rc -ne 0 ] || [ $failures -ne 0 ]; then
		for f in "$C"/log/*.log; do
			[ -f "$f" ] || continue
			echo "----- $f (last 15 lines)"
			tail -n 15 "$f"
		done
	fi
	[ ! -f "$C/cluster.env" ] || "$CL" down "$C" >/dev/null 2>&1 || true
	(exit $rc)
	teardown
}
trap cluster_teardown EXIT

CLUSTER_WATCH=$$ "$CL" up "$C" >"$T/up.log" 2>&1 || { cat "$T/up.log"; fail "cluster.sh up"; exit 1; }
eval "$("$CL" env "$C")"
log "cluster up after ${SECONDS} s"
P=$CLUSTER_PKI
status=$("$CL" status "$C" --json)
[ "$(jq '[.instances[] | select(.alive and .haproxy == "UP")] | length' <<<"$status")" = 8 ] &&
	pass "cluster.sh up: 8 instances alive and UP in HAProxy" || fail "status: $status"

actl() { # ADDR ARGS...: stbctl as admin
	local a=$1
	shift
	"$STBCTL" -a "$a" --ca "$P/ca.crt" --cert "$P/admin.crt" --key "$P/admin.key" -T 5000 "$@"
}
db() { # DB SQL: rows of one database
	# shellcheck disable=SC1090
	. "$(pg_env)"
	psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$STB_PG_PORT" -U stbtest -d "$1" -c "$2"
}
metric() { # HOST:PORT TYPE STATUS: that requests_total counter (0 when none)
	local v
	v=$(http_get "$1" /metrics | sed -n "s/^stbcred_requests_total{type=\"$2\",status=\"$3\"} //p")
	echo "${v:-0}"
}
hastate() { "$CL" status "$C" --json | jq -r ".instances[] | select(.daemon == \"$1\" and .instance == $2) | .haproxy"; }
wait_state() { # DAEMON I STATE
	for _ in $(seq 1 100); do [ "$(hastate "$1" "$2")" = "$3" ] && return 0; sleep 0.1; done
	return 1
}

# --- the operator's side, through the frontends (one database per daemon) ---
: >"$T/stbs.csv"
: >"$T/subs.csv"
declare -A SECRET
for i in $(seq 1 60); do
	d=stb-$i
	SECRET[$d]=$(openssl rand -hex 32)
	echo "$d,${SECRET[$d]},1,cert-$i" >>"$T/stbs.csv"
	echo "$d,cert-$i" >>"$T/subs.csv"
done
actl "$CERT_PROXYD" cp import "$T/stbs.csv" >/dev/null || fail "cp import"
actl "$MEDIA_GW" gw import "$T/subs.csv" >/dev/null || fail "gw import"
login() { # DEVICE: one flow A login through the frontends
	STB_DEVICE_SECRET=${SECRET[$1]} "$STB_CLIENT" --ca "$P/ca.crt" -T 8000 -a "$MEDIA_GW" \
		login --cp "$CERT_PROXYD" "$1" 2>&1
}

# --- logins spread over both instances ---
ok=0
for i in $(seq 1 4); do
	[[ $(login "stb-$i") == "login ok device=stb-$i "*" fetched=1 "* ]] && ok=$((ok + 1))
done
[ $ok = 4 ] && pass "4 first logins through HAProxy" || fail "first logins: $ok of 4"
g1=$(metric "$MEDIA_GW_1_HTTP" GW_LOGIN_FINISH OK)
g2=$(metric "$MEDIA_GW_2_HTTP" GW_LOGIN_FINISH OK)
c1=$(metric "$CERT_PROXYD_1_HTTP" CP_CERT_FETCH OK)
c2=$(metric "$CERT_PROXYD_2_HTTP" CP_CERT_FETCH OK)
[ "$g1" -gt 0 ] && [ "$g2" -gt 0 ] && [ $((g1 + g2)) = 4 ] &&
	pass "both media-gw instances served logins ($g1 + $g2)" || fail "media-gw spread: $g1 $g2"
[ "$c1" -gt 0 ] && [ "$c2" -gt 0 ] && pass "both cert-proxyd instances fetched certificates ($c1 + $c2)" ||
	fail "cert-proxyd spread: $c1 $c2"

# --- LOGIN_START at media-gw 1, LOGIN_FINISH at media-gw 2, the replay at 1 ---
gwc() { "$STB_GW_CLIENT" "$P" "$@"; }
out=$(gwc "$MEDIA_GW_1" "$CA_AUTHD_1" split stb-9 cert-9 "$MEDIA_GW_2" 2>&1)
mapfile -t line <<<"$out"
[[ ${line[0]} == "start OK"* ]] && [[ ${line[1]} == "finish OK token="* ]] &&
	pass "LOGIN_START at instance 1, LOGIN_FINISH at instance 2: a token" || fail "split: $out"
[[ ${line[2]} == "finish REPLAY"* ]] && pass "the nonce replayed through the other instance: REPLAY" ||
	fail "cross-instance replay: $out"
[ "$(db "$MEDIA_GW_DB" "SELECT count(*) FROM tokens WHERE device_id='stb-9'")" = 1 ] &&
	pass "one token for the split login" || fail "split tokens"
[ "$(metric "$MEDIA_GW_1_HTTP" GW_LOGIN_FINISH REPLAY)" -ge 1 ] && pass "media-gw 1 answered the replay" ||
	fail "replay metric"

log "spread and split checked after ${SECONDS} s"

# --- revoked through ca-authd 1, refused by ca-authd 2 ---
# ca-authd 1 stopped (SIGSTOP) until HAProxy marks it down: media-gw can
# only reach ca-authd 2, which first checks and caches the certificate.
rm -f "$T/go"
gwc "$MEDIA_GW_2" "$CA_AUTHD_2" twice stb-10 cert-10 "$T/go" >"$T/twice.out" 2>&1 &
tw=$!
caps=$(cat "$C/run/ca-authd-1.pid")
kill -STOP "$caps"
wait_state ca-authd 1 DOWN || fail "ca-authd 1 not marked DOWN"
for _ in $(seq 1 200); do grepq '^serial=' "$T/twice.out" && break; sleep 0.05; done
serial=$(sed -n 's/^serial=//p' "$T/twice.out")
grepq '^finish OK token=' "$T/twice.out" && pass "stb-10 logs in, checked by ca-authd 2" ||
	fail "twice, first login: $(cat "$T/twice.out")"
kill -CONT "$caps"
wait_state ca-authd 1 UP || fail "ca-authd 1 not UP again"
actl "$CA_AUTHD_1" ca revoke "$serial" >/dev/null && pass "revoked through ca-authd 1" ||
	fail "ca revoke $serial at ca-authd 1"
kill -STOP "$caps"
wait_state ca-authd 1 DOWN || fail "ca-authd 1 not marked DOWN"
touch "$T/go"
wait $tw || true
kill -CONT "$caps"
[[ $(tail -n 1 "$T/twice.out") == "finish REVOKED"* ]] &&
	pass "the same certificate through ca-authd 2: REVOKED" || fail "twice: $(cat "$T/twice.out")"
openssl x509 -inform DER -in "$T/go.der" -out "$T/r.crt" || fail "no certificate from gw_client"
out=$(openssl ocsp -issuer "$C/state/ca-authd-2/chain-issuing.pem" -url "http://$CA_AUTHD_2_HTTP/ocsp" \
	-CAfile "$C/state/ca-authd-2/root.pem" -cert "$T/r.crt" 2>&1)
grepq "r.crt: revoked" <<<"$out" && pass "OCSP at ca-authd 2: revoked" || fail "ocsp at 2: $out"
n1=$(db "$CA_AUTHD_DB" "SELECT count(*) FROM revocations")
[ "$n1" = 1 ] && pass "one revocations row" || fail "revocations: $n1"

log "revocation checked after ${SECONDS} s"

# --- instance 1 of every daemon killed during a burst of logins ---
burst() { # FIRST LAST: logins of those devices, one after another
	for i in $(seq "$1" "$2"); do { login "stb-$i" || true; } | sed "s/^/stb-$i /"; done
}
: >"$T/burst.out"
for w in 0 1 2 3; do
	burst $((20 + w * 6)) $((25 + w * 6)) >>"$T/burst.out" &
	BP[$w]=$!
done
for _ in $(seq 1 300); do [ "$(grep -c 'login ok' "$T/burst.out")" -ge 4 ] && break; sleep 0.05; done
for n in ca-authd cert-proxyd media-gw rendezvousd; do "$CL" kill "$C" "$n" 1 KILL; done
for w in 0 1 2 3; do wait "${BP[$w]}" || true; done
acked=$(grep -c ' login ok ' "$T/burst.out" || true)
log "burst: $acked of 24 logins acknowledged"
# a login in flight at a killed instance, or at a peer link to one that has
# not reconnected yet, is refused (UNAVAILABLE), never left hanging
other=$(grep -v ' login ok ' "$T/burst.out" | grep -vc 'UNAVAILABLE' || true)
[ "$(wc -l <"$T/burst.out")" = 24 ] && [ "$other" = 0 ] && [ "$acked" -gt 4 ] &&
	pass "the burst: each login acknowledged or refused UNAVAILABLE ($acked of 24 acknowledged)" ||
	fail "burst: $(cat "$T/burst.out")"
# one query per database: the acknowledged tokens (their SHA-256), then the
# fetched certificates at cert-proxyd and their serials at ca-authd
hashes= cids=
while read -r dev _ _ _ cid _ _ tok _; do
	tok=${tok#token=}
	hashes+="${hashes:+,}'$(printf '%s' "$tok" | xxd -r -p | sha256sum | cut -c1-64)'"
	cids+="${cids:+,}'${cid#cert_id=}'"
done < <(grep ' login ok ' "$T/burst.out")
lost=0
n=$(db "$MEDIA_GW_DB" "SELECT count(*) FROM tokens WHERE encode(hash, 'hex') IN ($hashes)")
[ "$n" = "$acked" ] || { lost=$((lost + acked - n)); echo "# $n of $acked tokens in media-gw's database"; }
serials=$(db "$CERT_PROXYD_DB" "SELECT string_agg(quote_literal(encode(serial, 'hex')), ',') FROM certs WHERE cert_id IN ($cids)")
n=$(db "$CA_AUTHD_DB" "SELECT count(*) FROM certs WHERE encode(serial, 'hex') IN (${serials:-''})")
[ "$n" = "$acked" ] || { lost=$((lost + acked - n)); echo "# $n of $acked certificates in both databases"; }
[ $lost = 0 ] && pass "every acknowledged token and certificate is in the databases" ||
	fail "$lost acknowledged writes missing"
ok=0
for i in 11 12 13 14; do [[ $(login "stb-$i") == "login ok "* ]] && ok=$((ok + 1)); done
[ $ok = 4 ] && pass "the survivors serve through HAProxy" || fail "after the kill: $ok of 4"

log "kill checked after ${SECONDS} s"

# --- the killed instances start again and rejoin ---
for n in ca-authd cert-proxyd media-gw rendezvousd; do
	"$CL" start "$C" "$n" 1 || fail "restart $n-1"
done
for n in ca-authd cert-proxyd media-gw rendezvousd; do
	wait_state "$n" 1 UP || fail "$n-1 not UP again"
done
ok=0
for i in 15 16 1 2; do [[ $(login "stb-$i") == "login ok "* ]] && ok=$((ok + 1)); done
g1=$(metric "$MEDIA_GW_1_HTTP" GW_LOGIN_FINISH OK)
[ $ok = 4 ] && [ "$g1" -gt 0 ] && pass "the restarted media-gw 1 serves again ($g1 logins)" ||
	fail "after the restart: $ok of 4, media-gw 1 served $g1"
c1=$(metric "$CERT_PROXYD_1_HTTP" CP_KEYINFO_REQ OK)
[ "$c1" -gt 0 ] && pass "the restarted cert-proxyd 1 serves again" || fail "cert-proxyd 1: $c1"
[ "$("$CL" status "$C" --json | jq '[.instances[] | select(.alive)] | length')" = 8 ] &&
	pass "8 instances alive" || fail "status after the restart"
log "done after ${SECONDS} s"

finish
