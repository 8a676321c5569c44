#!/usr/bin/env bash
# Flow D with qualifyd's roles in three processes (registration,
# credentialing, provisioning), reaching each other as qualifyd peers, and
# an independent OCSP responder (`openssl ocsp -index ... -port ...`) for an
# openssl-made manufacturer CA.  A full bootstrap across the three; a device
# the responder does not know is refused (NOT_FOUND) and one it revoked
# REVOKED, with no HSS row consumed; the confirmation reaches the
# credentialing process, which marks the row delivered.
. "$(dirname "$0")/lib.sh"

pki_init
field() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }
newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
# ca NAME: a self-signed CA
ca() {
	newkey "$T/$1.key"
	openssl req -x509 -new -key "$T/$1.key" -subj "/CN=$1" -days 2 \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
		-out "$T/$1.crt" 2>/dev/null
}
# leaf NAME CA EXT...: a certificate issued by CA
leaf() {
	local n=$1 ca=$2
	shift 2
	newkey "$T/$n.key"
	openssl req -new -key "$T/$n.key" -subj "/CN=$n" 2>/dev/null |
		openssl x509 -req -CA "$T/$ca.crt" -CAkey "$T/$ca.key" -days 1 -out "$T/$n.crt" \
			-extfile <(printf '%s\n' "$@") 2>/dev/null
}
ca maker
ca op-ca
leaf op op-ca "basicConstraints=CA:FALSE" "keyUsage=digitalSignature"
leaf ocsp-signer maker "basicConstraints=CA:FALSE" "keyUsage=digitalSignature" \
	"extendedKeyUsage=OCSPSigning"
for d in dev-a dev-b dev-u dev-r; do
	leaf "$d" maker "basicConstraints=CA:FALSE" "keyUsage=digitalSignature,keyAgreement" \
		"subjectAltName=URI:urn:stbcred:device:$d,URI:urn:stbcred:role:device"
done

# the responder knows dev-a (good) and dev-r (revoked), not dev-u
idx() { # idx V|R CERT
	local serial end
	serial=$(openssl x509 -in "$T/$2.crt" -noout -serial | cut -d= -f2)
	end=$(date -u -d "$(openssl x509 -in "$T/$2.crt" -noout -enddate | cut -d= -f2)" +%y%m%d%H%M%SZ)
	if [ "$1" = R ]; then
		printf 'R\t%s\t%s,keyCompromise\t%s\tunknown\t/CN=%s\n' "$end" "$(date -u +%y%m%d%H%M%SZ)" \
			"$serial" "$2"
	else
		printf 'V\t%s\t\t%s\tunknown\t/CN=%s\n' "$end" "$serial" "$2"
	fi
}
{ idx V dev-a; idx V dev-b; idx R dev-r; } >"$T/index.txt"
OP=$(free_port)
openssl ocsp -index "$T/index.txt" -port "$OP" -CA "$T/maker.crt" \
	-rsigner "$T/ocsp-signer.crt" -rkey "$T/ocsp-signer.key" >"$T/ocsp.log" 2>&1 &
PID[ocsp]=$!

# three qualifyd processes, one role each
for n in qd-reg qd-cred qd-prov; do
	for x in crt key kek; do cp -p "$PKI/qualifyd.$x" "$PKI/$n.$x"; done
	export "STB_BIN_${n//-/_}=$STB_BIN_qualifyd"
	PORT[$n]=$(free_port)
done
RP=$(free_port) CP=$(free_port) PP=$(free_port)
lst() {
	printf '"listeners": [{"name": "%s", "listen": "127.0.0.1:%s", "client_auth": "require",
	  "tls": {"ca": "%s"}, "roles": "device", "messages": "PING,%s"}]' "$1" "$2" "$T/maker.crt" "$3"
}
start_daemon qd-reg "\"roles\": \"registration\", \"device_ca\": \"$T/maker.crt\",
  $(lst registration "$RP" QD_REGISTER)"
start_daemon qd-prov "\"roles\": \"provisioning\", \"device_ca\": \"$T/maker.crt\",
  \"peers\": {\"credentialing\": \"127.0.0.1:${PORT[qd-cred]}\"},
  $(lst provisioning "$PP" QD_PKG_FETCH,QD_PKG_CONFIRM)"
start_daemon qd-cred "\"roles\": \"credentialing\", \"device_ca\": \"$T/maker.crt\",
  \"peers\": {\"registration\": \"127.0.0.1:${PORT[qd-reg]}\",
             \"provisioning\": \"127.0.0.1:${PORT[qd-prov]}\"},
  \"prov_address\": \"127.0.0.1:$PP\",
  \"operator\": {\"cert\": \"$T/op.crt\", \"key\": \"$T/op.key\"},
  \"ocsp\": {\"url\": \"http://127.0.0.1:$OP/\", \"timeout_ms\": 3000},
  $(lst credentialing "$CP" QD_CRED_REQ)"
# (not by connecting: openssl ocsp serves one connection at a time, a silent one for ever)
for _ in $(seq 1 100); do grepq "waiting for OCSP client" "$T/ocsp.log" && break; sleep 0.05; done

dev() {
	local d=$1
	shift
	"$STB_QD_CLIENT" "$PKI/ca.crt" "$T/$d.crt" "$T/$d.key" "$@" 2>&1 || true
}
pool() { ctl qd-cred qd hss pool --json | /usr/bin/python3 -c \
	"import json,sys; o=json.load(sys.stdin); print(o['free'], o['held'], o['delivered'], o['retired'])"; }

# the operator: a generated range (OPc from the OP by Milenage), enrolment
openssl rand -hex 16 >"$T/op.hex"
chmod 0600 "$T/op.hex"
ctl qd-cred qd hss generate 001019990000000 3 --op-file "$T/op.hex" |
	grepq "generated 3 HSS row" || fail "hss generate"
[ "$(pool)" = "3 0 0 0" ] || fail "generated pool: $(pool)"
for d in dev-a dev-b dev-u dev-r; do
	ctl qd-cred qd enrol "$d" >/dev/null || fail "enrol $d (the registration process must have it)"
done
out=$(ctl qd-reg qd hss pool 2>&1) && fail "the registration process has no HSS"
grepq UNSUPPORTED <<<"$out" || fail "hss pool at the registration process: $out"

# a full bootstrap across the three processes
r=$(dev dev-a register "127.0.0.1:$RP")
[ "$(field cred "$r")" = "127.0.0.1:$CP" ] || fail "registration process: $r"
c=$(dev dev-a cred "127.0.0.1:$CP" dev-a "$(field nonce "$r")" good)
[ "$(field prov "$c")" = "127.0.0.1:$PP" ] || fail "credentialing process: $c"
f=$(dev dev-a fetch "127.0.0.1:$PP" "$(field ticket "$c")" "$T/a.pkg")
[[ $f == OK* ]] || fail "provisioning process: $f"
o=$(dev dev-a open "$T/a.pkg" "$T/op-ca.crt" dev-a "$(field session "$c")")
[[ $o == OK\ imsi=001019990000000* ]] || fail "open: $o"
/usr/bin/python3 - "$(cat "$T/op.hex")" "$(field k "$o")" "$(field opc "$o")" <<'PY' ||
import sys
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
op, k, opc = (bytes.fromhex(x) for x in sys.argv[1:4])
e = Cipher(algorithms.AES(k), modes.ECB()).encryptor()
assert bytes(a ^ b for a, b in zip(e.update(op) + e.finalize(), op)) == opc
PY
	fail "OPc = AES_K(OP) xor OP for the delivered K"
openssl cms -verify -inform DER -in "$T/a.pkg" -CAfile "$T/op-ca.crt" 2>/dev/null |
	openssl cms -decrypt -inform DER -recip "$T/dev-a.crt" -inkey "$T/dev-a.key" \
		-out "$T/a.plain" 2>/dev/null && grepq -a dev-a "$T/a.plain" ||
	fail "openssl cms opens the split package"
[ "$(dev dev-a confirm "127.0.0.1:$PP" "$(field ticket "$c")" "$(field digest "$f")")" = OK ] ||
	fail "confirm"
for _ in $(seq 1 100); do [ "$(pool)" = "2 0 1 0" ] && break; sleep 0.05; done
[ "$(pool)" = "2 0 1 0" ] && pass "a bootstrap across three processes" ||
	fail "the credentialing process hears of the confirmation: $(pool)"
ctl qd-prov qd packages | grepq "^dev-a .*confirmed" || fail "packages at the provisioning process"

# a confirmation while the credentialing process is down arrives when it is back
r=$(dev dev-b register "127.0.0.1:$RP")
c=$(dev dev-b cred "127.0.0.1:$CP" dev-b "$(field nonce "$r")" good)
f=$(dev dev-b fetch "127.0.0.1:$PP" "$(field ticket "$c")" "$T/b.pkg")
stop_daemon qd-cred
[ "$(dev dev-b confirm "127.0.0.1:$PP" "$(field ticket "$c")" "$(field digest "$f")")" = OK ] ||
	fail "confirm with the credentialing process down"
start_daemon qd-cred
for _ in $(seq 1 200); do [ "$(pool)" = "1 0 2 0" ] && break; sleep 0.05; done
[ "$(pool)" = "1 0 2 0" ] && pass "the confirmation waits in the outbox for the credentialing process" ||
	fail "the outbox delivers the confirmation: $(pool)"

# the independent responder's answers
ru=$(dev dev-u register "127.0.0.1:$RP")
out=$(dev dev-u cred "127.0.0.1:$CP" dev-u "$(field nonce "$ru")" good)
[[ $out == NOT_FOUND* ]] && pass "a device unknown to the responder: NOT_FOUND" ||
	fail "unknown to OCSP: $out"
rr=$(dev dev-r register "127.0.0.1:$RP")
out=$(dev dev-r cred "127.0.0.1:$CP" dev-r "$(field nonce "$rr")" good)
[[ $out == REVOKED* ]] && pass "revoked at the responder: REVOKED" || fail "revoked: $out"
[ "$(pool)" = "1 0 2 0" ] || fail "refusals consumed no row: $(pool)"
# the responder down: refused with the reason, no row consumed
kill "${PID[ocsp]}"
wait "${PID[ocsp]}" 2>/dev/null || true
unset "PID[ocsp]"
out=$(dev dev-u cred "127.0.0.1:$CP" dev-u "$(field nonce "$ru")" good)
[[ $out == UNAVAILABLE* || $out == TIMEOUT* ]] && pass "responder down: ${out%% *}" ||
	fail "responder down: $out"
[ "$(pool)" = "1 0 2 0" ] || fail "responder down consumed a row: $(pool)"
finish
