#!/usr/bin/env bash
# qualifyd's osmo-hlr backend (hss_osmo.c) against Debian's osmo-hlr: the
# subscriber it provisions exists with its K/OPc, the network's vector for
# it over GSUP carries the XRES the device computes with milenage.c, a
# refused update leaves no subscriber, and remove deletes it.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/hlr_lib.sh"

K=0396eb317b6d1c36f19c1c84cd6ffd16
OPC=53c15671c60a4b731c55b4a441c0bde2
IMSI=001010000000042

hlr_start

"$STB_HSS_OSMO_CLI" provision "$HLR_VTY" $IMSI $K $OPC && pass "provision" || fail "provision"
got=$(hlr_aud3g $IMSI)
[ "$got" = "$K $OPC" ] && pass "osmo-hlr holds the K/OPc" || fail "osmo-hlr aud3g: '$got'"
# idempotent: a second provision of the same subscriber is fine
"$STB_HSS_OSMO_CLI" provision "$HLR_VTY" $IMSI $K $OPC && pass "provision again" ||
	fail "provision again"

vec=$("$STB_GSUP_PEER" sai "$HLR_ADDR" "$HLR_GSUP_PORT" $IMSI) || fail "SendAuthInfo"
log "HLR: $vec"
rand=$(sed -n 's/.*rand=\([0-9a-f]*\).*/\1/p' <<<"$vec")
xres=$(sed -n 's/.*xres=\([0-9a-f]*\).*/\1/p' <<<"$vec")
autn=$(sed -n 's/.*autn=\([0-9a-f]*\).*/\1/p' <<<"$vec")
dev=$("$STB_GSUP_PEER" res $K $OPC "$rand" "$autn") || fail "the device refuses AUTN"
res=$(sed -n 's/.*res=\([0-9a-f]*\).*/\1/p' <<<"$dev")
[ -n "$xres" ] && [ "$res" = "$xres" ] && pass "XRES (HLR) = RES (device)" ||
	fail "XRES $xres, RES $res"
# a device with another key does not get in
if "$STB_GSUP_PEER" res 465b5ce8b199b49faa5f0a2ee238a6bc $OPC "$rand" "$autn" >/dev/null 2>&1; then
	fail "another K accepted AUTN"
else
	pass "another K refuses AUTN"
fi

# remove, twice (the second finds none: still success)
"$STB_HSS_OSMO_CLI" remove "$HLR_VTY" $IMSI && pass "remove" || fail "remove"
[ -z "$(hlr_aud3g $IMSI)" ] && pass "subscriber gone" || fail "subscriber still there"
"$STB_HSS_OSMO_CLI" remove "$HLR_VTY" $IMSI && pass "remove a missing one" ||
	fail "remove a missing one"
out=$("$STB_GSUP_PEER" sai "$HLR_ADDR" "$HLR_GSUP_PORT" $IMSI) && rc=0 || rc=$?
[ $rc -eq 2 ] && pass "SendAuthInfo for the removed IMSI: $out" || fail "sai rc=$rc $out"

# osmo-hlr down: UNAVAILABLE (10), no hang
kill -KILL "${PID[osmo-hlr]}"
wait "${PID[osmo-hlr]}" 2>/dev/null || true
unset "PID[osmo-hlr]"
"$STB_HSS_OSMO_CLI" provision "$HLR_VTY" $IMSI $K $OPC 2>"$T/down.err" && rc=0 || rc=$?
[ $rc -eq 10 ] && pass "osmo-hlr down: UNAVAILABLE" || fail "down: rc=$rc $(cat "$T/down.err")"
grepq -i "$K" "$T/down.err" && fail "K in an error message" || true

finish
