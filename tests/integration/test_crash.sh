#!/usr/bin/env bash
# A daemon killed with SIGKILL during a burst of writes reopens its store
# cleanly and holds every write it had acknowledged.
. "$(dirname "$0")/lib.sh"

pki_init
start_daemon keymgmtd
burst() {
	"$STB_BURST" 127.0.0.1 "${PORT[keymgmtd]}" "$PKI/ca.crt" "$PKI/admin.crt" "$PKI/admin.key" "$@"
}
for round in 1 2 3; do
	burst 16 100000 > "$T/acks.$round" 2>/dev/null &
	bpid=$!
	# let the burst get going, then pull the plug mid-write
	for _ in $(seq 1 100); do
		[ "$(wc -l < "$T/acks.$round")" -ge 300 ] && break
		sleep 0.02
	done
	stop_daemon keymgmtd KILL
	wait "$bpid" || true
	acked=$(wc -l < "$T/acks.$round")
	[ "$acked" -ge 300 ] || fail "round $round: burst too small ($acked acks)"
	log "round $round: $acked writes acknowledged before SIGKILL"

	if [ "${STB_TEST_STORE:-sqlite}" = sqlite ] && command -v sqlite3 >/dev/null; then
		ic=$(sqlite3 "$T/state-keymgmtd/keymgmtd.db" "PRAGMA integrity_check" 2>&1)
		[ "$ic" = ok ] || fail "round $round: integrity_check after SIGKILL: $ic"
	fi
	start_daemon keymgmtd
	ctl keymgmtd -j audit export > "$T/export.$round"
	missing=0
	while read -r _ seq note; do
		grepq "\"seq\":$seq,.*\"detail\":\"$note\"" "$T/export.$round" || missing=$((missing + 1))
	done < "$T/acks.$round"
	[ $missing -eq 0 ] || fail "round $round: $missing acknowledged writes lost"
	ctl keymgmtd audit verify | grepq "intact" || fail "round $round: audit chain broken"
	# numbers stay dense after recovery: the next write follows the last
	last=$(ctl keymgmtd -j audit verify | sed -n 's/.*"records":[[:space:]]*\([0-9]*\).*/\1/p')
	next=$(ctl keymgmtd audit note "after round $round")
	[ "$next" = "audit record $((last + 1))" ] || fail "round $round: next record $next after $last"
done
pass "acknowledged writes survive SIGKILL (3 rounds)"
stop_daemon keymgmtd TERM
finish
