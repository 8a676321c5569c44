#!/usr/bin/env bash
# ADMIN_AUDIT_VERIFY off the worker loops (issue 9, point 4): media-gw with
# one worker loop and an audit chain of many rows; a PING sent right after
# a verify on the same connection is answered while the walk runs, not
# after it.  The verify's answer is still right, and a daemon with verifies
# in flight stops cleanly.
. "$STB_SRC/tests/integration/lib.sh"

ROWS=${ROWS:-20000}

start_daemon media-gw '"workers": 1'
GW=127.0.0.1:${PORT[media-gw]}
admin() { "$STB_GW_FLOOD" "$PKI/ca.crt" "$PKI/admin.crt" "$PKI/admin.key" - "$GW" "$@"; }

out=$(admin notes "$ROWS")
[ "$out" = "sent=$ROWS OK=$ROWS" ] && pass "$ROWS audit notes written" || fail "notes: $out"

out=$(admin verify-ping 5000)
log "$out"
first=$(sed -n 's/.*first=\([a-z]*\).*/\1/p' <<<"$out")
before=$(sed -n 's/.*before_verify=\([0-9]*\).*/\1/p' <<<"$out")
[ "$first" = ping ] && [ "${before:-0}" -ge 1 ] &&
	pass "PINGs answered while the verify walked $ROWS rows ($before before it finished)" ||
	fail "verify blocked the loop: $out"
out=$(ctl media-gw audit verify)
[[ $out == *intact* ]] && [[ $out == *"$ROWS"* ]] && pass "the verify's answer: $out" ||
	fail "audit verify: $out"

# verifies in flight when the daemon is told to stop: answered, clean exit
for _ in 1 2 3; do ctl media-gw audit verify >/dev/null 2>&1 & done
sleep 0.1
stop_daemon media-gw
[ "$RC" = 0 ] && pass "clean stop with verifies in flight" || fail "exit status $RC"
wait

finish
