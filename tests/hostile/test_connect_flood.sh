#!/usr/bin/env bash
# Issue 9 point 6: a registered device floods RDV_CONNECT_REQs (2,000, at
# most 1,000/s) at a target while other devices make real links to the
# same target, all at once.  Every real link must work; the flood must be refused
# (RATE_LIMITED) beyond a few offers and must leave a bounded number of
# session and audit rows and log lines behind.
. "$STB_SRC/tests/integration/lib.sh"
. "$STB_SRC/tests/integration/rdv_lib.sh"

command -v sqlite3 >/dev/null || { echo "SKIP: sqlite3 not installed"; exit 77; }

FLOOD=2000 LINKS=5 ROWS_MAX=20 LOG_MAX=5
start_daemon rendezvousd '"overlay_pool": "10.79.0.0/16", "kdf": { "scrypt_n": 1024 }'
ADDR=127.0.0.1:${PORT[rendezvousd]}
DB=$T/state-rendezvousd/rendezvousd.db
EPT=127.0.0.1:$(free_port)
sc() { "$STB_CLIENT" -a "$ADDR" --ca "$PKI/ca.crt" -T 10000 "$@"; }
code_of() { cat "$(enrol_file "$1")" 2>/dev/null || true; }
wait_for() {
	for _ in $(seq 1 200); do
		grepq -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

GOOD=$(seq -f 'dev-good%g' 1 "$LINKS")
# shellcheck disable=SC2086
provision dev-t dev-evil $GOOD || fail "provisioning shows no enrolment code"

# the target echoes every line of every link
STB_RDV_PASSWORD=passwordt STB_RDV_ENROL_CODE=$(code_of dev-t) \
	sc rdv-listen dev-t usert "$EPT" >"$T/t.out" 2>&1 &
PID[target]=$!
wait_for "$T/t.out" '^listening' || fail "target did not come up: $(cat "$T/t.out")"
# the good devices enrol once; their links below register again with the password
for g in $GOOD; do
	out=$(STB_RDV_PASSWORD=password-$g STB_RDV_ENROL_CODE=$(code_of "$g") \
		sc rdv-register "$g" "user-$g" 127.0.0.1:5301 2>&1) || fail "$g: $out"
done
rows0=$(sqlite3 "$DB" "SELECT count(*) FROM sessions")
audit0=$(sqlite3 "$DB" "SELECT count(*) FROM audit")
log0=$(wc -l <"$T/rendezvousd.log")

"$STB_RDV_HOSTILE" "$ADDR" "$PKI/ca.crt" flood dev-evil usere passworde 127.0.0.1:5302 dev-t \
	"$FLOOD" 1000 >"$T/flood.out" 2>&1 &
PID[flood]=$!
wait_for "$T/flood.out" '^started' || fail "the flood did not start: $(cat "$T/flood.out")"

# one link from each good device, all at once
for g in $GOOD; do
	echo "line-$g" | STB_RDV_PASSWORD=password-$g \
		sc rdv-connect "$g" "user-$g" 127.0.0.1:5301 dev-t >"$T/$g.out" 2>"$T/$g.err" &
	PID[$g]=$!
done
for g in $GOOD; do
	wait "${PID[$g]}" || true
	unset "PID[$g]"
done
kill -0 "${PID[flood]}" 2>/dev/null && during=yes || during="no (the flood ended first)"
ok=0
for g in $GOOD; do
	[ "$(cat "$T/$g.out")" = "line-$g" ] && ok=$((ok + 1))
done
rc=0
wait "${PID[flood]}" || rc=$?
unset 'PID[flood]'
log "flood: $(tr '\n' ' ' <"$T/flood.out")"
log "real links during the flood: $ok of $LINKS (flood still running after them: $during)"
log "the target refused: $(sed -n 's/^refused //p' "$T/t.out" | sort | uniq -c | tr '\n' ' ')"
[ "$ok" -eq "$LINKS" ] && pass "every real link worked during the flood ($ok of $LINKS)" ||
	fail "real links: $ok of $LINKS: $(cat "$T"/dev-good*.err | grep -v '^registered' | sort | uniq -c | head -5)"
[ $rc -eq 0 ] && grepq "^flood sent=$FLOOD answered=$FLOOD " "$T/flood.out" &&
	pass "every flood request was answered" || fail "flood: $(cat "$T/flood.out")"
granted=$(sed -n 's/^flood .* OK=\([0-9]*\) .*/\1/p' "$T/flood.out")
limited=$(sed -n 's/^flood .* RATE_LIMITED=\([0-9]*\) .*/\1/p' "$T/flood.out")
[ "${granted:-$FLOOD}" -le 16 ] && [ "${limited:-0}" -ge $((FLOOD - 16)) ] &&
	pass "the flood got $granted offers, $limited RATE_LIMITED" ||
	fail "flood granted ${granted:-?}, RATE_LIMITED ${limited:-?}"

# what the flood left behind
rows=$(($(sqlite3 "$DB" "SELECT count(*) FROM sessions WHERE caller_id='dev-evil'")))
audit=$(($(sqlite3 "$DB" "SELECT count(*) FROM audit") - audit0))
logn=$(grep -c 'dev-evil' "$T/rendezvousd.log" || true)
log "rows written during the flood: sessions by dev-evil $rows, audit $audit (all devices), log lines naming dev-evil $logn"
[ "$rows" -le "$ROWS_MAX" ] && pass "session rows bounded ($rows)" || fail "$rows session rows"
[ "$audit" -le $((ROWS_MAX + 4 * LINKS)) ] && pass "audit rows bounded ($audit)" ||
	fail "$audit audit rows"
[ "$logn" -le "$LOG_MAX" ] && pass "log lines bounded ($logn)" || fail "$logn log lines"
good=$(sqlite3 "$DB" "SELECT count(*) FROM sessions WHERE caller_id LIKE 'dev-good%'")
[ "$good" -eq "$LINKS" ] || fail "the good devices' sessions: $good"
ctl rendezvousd audit verify >/dev/null || fail "audit chain broken"

stop_daemon rendezvousd
[ "$RC" -eq 0 ] && pass "clean stop" || fail "exit status $RC"
finish
