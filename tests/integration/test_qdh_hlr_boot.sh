#!/usr/bin/env bash
# Flow D with osmo-hlr as the HSS: qualifyd (hss.backend osmo-hlr) hands a
# device a generated subscription and provisions it into a real osmo-hlr;
# the IMSI the device got exists there with the K/OPc the device got, and
# osmo-hlr's authentication vector for it over GSUP carries the XRES that
# the device computes with Milenage from its delivered K and OPc.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/hlr_lib.sh"
source "$(dirname "$0")/qdh_lib.sh"

hlr_start
qdh_ca_start
REG_PORT=$(free_port) CRED_PORT=$(free_port) PROV_PORT=$(free_port)
qdh_qd_conf qualifyd registration,credentialing,provisioning \
	"\"hss\": { \"backend\": \"osmo-hlr\", \"osmo_vty\": \"$HLR_VTY\" }"
start_daemon qualifyd

# a generated range: K from RAND_bytes, OPc from the operator's OP
echo 63bfa50ee6523365ff14c1f45f88737d >"$T/op.hex"
ctl qualifyd qd hss generate 001010000000500 2 --op-file "$T/op.hex" >/dev/null ||
	fail "hss generate"
qdh_device dev-h
ctl qualifyd qd enrol dev-h >/dev/null || fail "enrol dev-h"

qdh_boot dev-h "127.0.0.1:$REG_PORT" --ocsp "$OCSP_URL"
[ $RC -eq 0 ] && pass "bootstrap with osmo-hlr: $OUT" || fail "bootstrap rc=$RC: $OUT"
imsi=$(qdh_cred dev-h imsi) k=$(qdh_cred dev-h k) opc=$(qdh_cred dev-h opc)
got=$(hlr_aud3g "$imsi")
[ -n "$imsi" ] && [ "$got" = "$k $opc" ] && pass "osmo-hlr holds $imsi with the delivered K/OPc" ||
	fail "osmo-hlr has '$got' for '$imsi' (delivered $k $opc)"
# the row not handed out is not in osmo-hlr
other=001010000000500
[ "$imsi" = $other ] && other=001010000000501
[ -z "$(hlr_aud3g $other)" ] && pass "the undelivered IMSI $other is not in osmo-hlr" ||
	fail "$other is in osmo-hlr"

vec=$("$STB_GSUP_PEER" sai "$HLR_ADDR" "$HLR_GSUP_PORT" "$imsi") || fail "SendAuthInfo: $vec"
rand=$(sed -n 's/.*rand=\([0-9a-f]*\).*/\1/p' <<<"$vec")
xres=$(sed -n 's/.*xres=\([0-9a-f]*\).*/\1/p' <<<"$vec")
autn=$(sed -n 's/.*autn=\([0-9a-f]*\).*/\1/p' <<<"$vec")
dev=$("$STB_GSUP_PEER" res "$k" "$opc" "$rand" "$autn") || fail "the device refuses AUTN: $dev"
res=$(sed -n 's/.*res=\([0-9a-f]*\).*/\1/p' <<<"$dev")
[ -n "$xres" ] && [ "$res" = "$xres" ] &&
	pass "GSUP: osmo-hlr's XRES $xres = the device's RES" || fail "XRES $xres, RES $res"

# osmo-hlr down: the next device is refused UNAVAILABLE and its row stays free
kill -KILL "${PID[osmo-hlr]}"
wait "${PID[osmo-hlr]}" 2>/dev/null || true
unset "PID[osmo-hlr]"
qdh_device dev-i
ctl qualifyd qd enrol dev-i >/dev/null || fail "enrol dev-i"
qdh_boot dev-i "127.0.0.1:$REG_PORT" --ocsp "$OCSP_URL"
[ $RC -ne 0 ] && grepq "UNAVAILABLE" <<<"$OUT" && pass "HLR down: ${OUT##*bootstrap: }" ||
	fail "HLR down: rc=$RC $OUT"
ctl qualifyd -j qd hss pool | grepq '"free":[[:space:]]*1' && pass "the refused device's row is free again" ||
	fail "pool: $(ctl qualifyd -j qd hss pool)"
grepq -i -r "$k" "$T"/*.log && fail "K in a log"

finish
