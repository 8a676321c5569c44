#!/usr/bin/env bash
# Flow D end to end, qualifyd's three roles in one process: a device with
# only its certificate gets its subscription through `stb-client
# bootstrap`; the credentials file (0600) holds the pool row qualifyd
# handed out, the package's signer is checked over OCSP at ca-authd, and
# what qualifyd and the pool say afterwards.  A second run of the same
# device is refused (REPLAY: its nonce is spent) and takes no row; a
# device given another operator CA refuses the package and never confirms.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/qdh_lib.sh"

qdh_ca_start
REG_PORT=$(free_port) CRED_PORT=$(free_port) PROV_PORT=$(free_port)
qdh_qd_conf qualifyd registration,credentialing,provisioning
start_daemon qualifyd

# the pool: two known rows
K1=000102030405060708090a0b0c0d0e0f OPC1=f0e0d0c0b0a090807060504030201000
K2=465b5ce8b199b49faa5f0a2ee238a6bc OPC2=cd63cb71954a9f4e48a5994e37a02baf
printf '001010000000101,%s,%s\n001010000000102,%s,%s\n001010000000103,%s,%s\n' \
	$K1 $OPC1 $K2 $OPC2 $K2 $OPC1 >"$T/pool.csv"
ctl qualifyd qd hss import "$T/pool.csv" >/dev/null || fail "hss import"

qdh_device dev-a
ctl qualifyd qd enrol dev-a >/dev/null || fail "enrol dev-a"

qdh_boot dev-a "127.0.0.1:$REG_PORT" --ocsp "$OCSP_URL"
[ $RC -eq 0 ] && pass "bootstrap: $OUT" || fail "bootstrap rc=$RC: $OUT"
[ "$(stat -c %a "$T/dev-a.cred" 2>/dev/null)" = 600 ] && pass "credentials file is 0600" ||
	fail "credentials file mode $(stat -c %a "$T/dev-a.cred" 2>&1)"
imsi=$(qdh_cred dev-a imsi) k=$(qdh_cred dev-a k) opc=$(qdh_cred dev-a opc)
[ "$(qdh_cred dev-a device_id)" = dev-a ] || fail "credentials name $(qdh_cred dev-a device_id)"
case "$imsi,$k,$opc" in
"001010000000101,$K1,$OPC1" | "001010000000102,$K2,$OPC2")
	pass "the device holds pool row $imsi with its K/OPc" ;;
*) fail "delivered $imsi,$k,$opc is not a pool row" ;;
esac
# the credentials only ever reach the 0600 file: not stdout, not a log
grepq -i "$k" <<<"$OUT" && fail "K on stb-client's output"
grepq -i -r "$k" "$T"/*.log && fail "K in a daemon log"

pool=$(ctl qualifyd -j qd hss pool)
grepq '"delivered":[[:space:]]*1' <<<"$pool" && grepq '"free":[[:space:]]*2' <<<"$pool" &&
	pass "pool: 1 delivered, 2 free" || fail "pool after one bootstrap: $pool"
ctl qualifyd qd show dev-a | grepq -i "delivered" && pass "qd show: dev-a delivered" ||
	fail "qd show: $(ctl qualifyd qd show dev-a 2>&1)"

# a second run of the same device: its nonce is spent, REPLAY, no row taken
qdh_boot dev-a "127.0.0.1:$REG_PORT" --ocsp "$OCSP_URL"
[ $RC -ne 0 ] && grepq "REPLAY" <<<"$OUT" && pass "second bootstrap: ${OUT##*bootstrap: }" ||
	fail "second bootstrap: rc=$RC $OUT"

# the device checks the package itself: a signer outside the operator CA it
# was given is refused, and the package is not confirmed
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/other.key" \
	-subj "/CN=another operator" -days 1 -out "$T/other-ca.pem" 2>/dev/null
qdh_device dev-b
ctl qualifyd qd enrol dev-b >/dev/null || fail "enrol dev-b"
RC=0
OUT=$("$STB_CLIENT" --ca "$PKI/ca.crt" --cert "$T/dev-b.pem" --key "$T/dev-b.key" \
	-a "127.0.0.1:$REG_PORT" bootstrap --operator-ca "$T/other-ca.pem" --ocsp "$OCSP_URL" \
	--out "$T/dev-b.cred" 2>&1) || RC=$?
[ $RC -ne 0 ] && grepq "UNAUTHENTICATED: package check" <<<"$OUT" &&
	pass "foreign package signer refused: ${OUT##*bootstrap: }" || fail "dev-b: rc=$RC $OUT"
[ -e "$T/dev-b.cred" ] && fail "credentials written from an unchecked package"
ctl qualifyd qd show dev-b | grepq -i "delivered" && fail "dev-b's package was confirmed"
pool=$(ctl qualifyd -j qd hss pool)
grepq '"delivered":[[:space:]]*1' <<<"$pool" && grepq '"held":[[:space:]]*1' <<<"$pool" &&
	grepq '"free":[[:space:]]*1' <<<"$pool" &&
	pass "pool: 1 delivered, 1 held (unconfirmed), 1 free" || fail "pool: $pool"

finish
