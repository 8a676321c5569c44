#!/usr/bin/env bash
# Flow D with an independent OCSP responder: the manufacturer CA is an
# openssl CA whose `openssl ocsp -index ... -port ...` answers qualifyd's
# question about each device certificate (the device itself still checks
# the operator certificate at ca-authd).  A good device bootstraps; a
# revoked one and one the responder does not know are refused with the
# status the device sees, and neither takes an HSS row.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/qdh_lib.sh"

qdh_ca_start

# --- the manufacturer CA and its index ---
M=$T/mfr
mkdir -p "$M"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$M/ca.key" \
	-subj "/CN=test manufacturer CA" -days 2 -addext "basicConstraints=critical,CA:true" \
	-addext "keyUsage=critical,keyCertSign,cRLSign" -out "$M/ca.crt" 2>/dev/null
cp "$M/ca.crt" "$T/mfr-ca.pem"
: >"$M/index.txt"
serial=4096
# mfr_device NAME STATE: V (valid), R (revoked) or - (not in the index)
mfr_device() {
	local n=$1 state=$2 s
	serial=$((serial + 1))
	s=$(printf '%X' $serial)
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/$n.key" 2>/dev/null
	cat >"$M/$n.ext" <<EXT
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature, keyAgreement
extendedKeyUsage = clientAuth
subjectAltName = URI:urn:stbcred:device:$n, URI:urn:stbcred:role:device
EXT
	openssl req -new -key "$T/$n.key" -subj "/CN=$n" 2>/dev/null |
		openssl x509 -req -CA "$M/ca.crt" -CAkey "$M/ca.key" -set_serial "0x$s" -days 1 \
			-extfile "$M/$n.ext" -out "$T/$n.pem" 2>/dev/null
	local exp
	exp=$(date -u -d '+1 day' +%y%m%d%H%M%SZ)
	case $state in
	V) printf 'V\t%s\t\t%s\tunknown\t/CN=%s\n' "$exp" "$s" "$n" >>"$M/index.txt" ;;
	R) printf 'R\t%s\t%s,keyCompromise\t%s\tunknown\t/CN=%s\n' "$exp" \
		"$(date -u -d '-1 hour' +%y%m%d%H%M%SZ)" "$s" "$n" >>"$M/index.txt" ;;
	esac
}
mfr_device dev-good V
mfr_device dev-revoked R
mfr_device dev-unknown -

OPORT=$(free_port)
openssl ocsp -index "$M/index.txt" -CA "$M/ca.crt" -rsigner "$M/ca.crt" -rkey "$M/ca.key" \
	-port "$OPORT" -ignore_err -nmin 5 >>"$T/openssl-ocsp.log" 2>&1 &
PID[openssl-ocsp]=$!
# ready when it says so (a probe connection would hold the one-at-a-time
# responder)
for _ in $(seq 1 100); do
	grepq "waiting for OCSP client connections" "$T/openssl-ocsp.log" && break
	sleep 0.05
done
# sanity: the responder itself says so
openssl ocsp -issuer "$M/ca.crt" -cert "$T/dev-revoked.pem" -url "http://127.0.0.1:$OPORT" \
	-CAfile "$M/ca.crt" -timeout 5 2>/dev/null | grepq "dev-revoked.pem: revoked" ||
	fail "openssl ocsp does not answer revoked for dev-revoked"

REG_PORT=$(free_port) CRED_PORT=$(free_port) PROV_PORT=$(free_port)
ca_ocsp=$OCSP_URL
OCSP_URL=http://127.0.0.1:$OPORT # qualifyd asks the manufacturer's responder
qdh_qd_conf qualifyd registration,credentialing,provisioning
start_daemon qualifyd
printf '0010100000003%02d,%s,%s\n' 1 00112233445566778899aabbccddeeff \
	ffeeddccbbaa99887766554433221100 2 00112233445566778899aabbccddeef0 \
	ffeeddccbbaa99887766554433221101 >"$T/pool.csv"
ctl qualifyd qd hss import "$T/pool.csv" >/dev/null || fail "hss import"
for n in dev-good dev-revoked dev-unknown; do
	ctl qualifyd qd enrol $n >/dev/null || fail "enrol $n"
done

qdh_boot dev-revoked "127.0.0.1:$REG_PORT" --ocsp "$ca_ocsp"
[ $RC -ne 0 ] && grepq "REVOKED: credential request" <<<"$OUT" &&
	pass "revoked device: ${OUT##*bootstrap: }" || fail "revoked: rc=$RC $OUT"
qdh_boot dev-unknown "127.0.0.1:$REG_PORT" --ocsp "$ca_ocsp"
[ $RC -ne 0 ] && grepq "credential request" <<<"$OUT" && ! grepq "bootstrap ok" <<<"$OUT" &&
	pass "device unknown to the responder: ${OUT##*bootstrap: }" || fail "unknown: rc=$RC $OUT"
pool=$(ctl qualifyd -j qd hss pool)
grepq '"free":[[:space:]]*2' <<<"$pool" && pass "the refusals took no HSS row" || fail "pool: $pool"

qdh_boot dev-good "127.0.0.1:$REG_PORT" --ocsp "$ca_ocsp"
[ $RC -eq 0 ] && pass "good device via openssl ocsp: $OUT" || fail "good: rc=$RC $OUT"
grepq -E "^imsi=00101000000030[12]$" "$T/dev-good.cred" && pass "dev-good holds a pool row" ||
	fail "dev-good credentials: $(cat "$T/dev-good.cred" 2>&1)"
# qualifyd's questions went to the manufacturer's responder
n=$(grep -c "Received request" "$T/openssl-ocsp.log" || true)
[ "$n" -ge 4 ] && pass "openssl ocsp answered $n requests" || fail "openssl ocsp saw $n requests"

finish
