#!/usr/bin/env bash
# Flow D with qualifyd's three roles in one process, each on its own
# listener: ca-authd is the manufacturer CA and the OCSP responder; devices
# are qd_client runs with ca-authd-issued device certificates.  A full
# bootstrap (the package checked and opened with `openssl cms`), then every
# refusal a device can meet, each with the status it sees and no HSS row
# consumed; then what an expired package leaves (its row held until the
# operator releases it).
. "$(dirname "$0")/lib.sh"

pki_init
write_config ca-authd
"$STB_BIN_ca_authd" init -c "$T/ca-authd.json" >>"$T/ca-authd.log" 2>&1 ||
	{ echo "ca-authd init failed"; tail "$T/ca-authd.log"; exit 1; }
start_daemon ca-authd
MCA=$T/state-ca-authd/root.pem # the manufacturer CA
OCSP_URL=http://127.0.0.1:${HPORT[ca-authd]}/ocsp

field() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }
newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# device DEV: a key and a ca-authd device certificate (with its chain)
device() {
	newkey "$T/$1.key"
	openssl req -new -key "$T/$1.key" -subj "/CN=$1" -out "$T/$1.csr" 2>/dev/null
	ctl ca-authd ca issue --csr "$T/$1.csr" --profile device --device "$1" \
		--out "$T/$1.crt" >/dev/null || fail "ca issue $1"
}
for d in dev-1 dev-2 dev-3 dev-4 dev-5 dev-6 dev-7 dev-8 dev-r; do device "$d"; done

# another CA's device certificate, with the right names
newkey "$T/other-ca.key"
openssl req -x509 -new -key "$T/other-ca.key" -subj "/CN=Other maker CA" -days 2 \
	-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign \
	-out "$T/other-ca.crt" 2>/dev/null
newkey "$T/dev-x.key"
openssl req -new -key "$T/dev-x.key" -subj "/CN=dev-x" 2>/dev/null |
	openssl x509 -req -CA "$T/other-ca.crt" -CAkey "$T/other-ca.key" -days 1 -out "$T/dev-x.crt" \
		-extfile <(printf '%s\n' "basicConstraints=CA:FALSE" \
			"keyUsage=digitalSignature,keyAgreement" \
			"subjectAltName=URI:urn:stbcred:device:dev-x,URI:urn:stbcred:role:device") \
		2>/dev/null

# the operator: a CA and the certificate that signs packages
newkey "$T/op-ca.key"
openssl req -x509 -new -key "$T/op-ca.key" -subj "/CN=Operator CA" -days 2 \
	-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign \
	-out "$T/op-ca.crt" 2>/dev/null
newkey "$T/op.key"
openssl req -new -key "$T/op.key" -subj "/CN=operator packages" 2>/dev/null |
	openssl x509 -req -CA "$T/op-ca.crt" -CAkey "$T/op-ca.key" -days 1 -out "$T/op.crt" \
		-extfile <(printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=digitalSignature") \
		2>/dev/null

# qualifyd: the device listeners trust both makers at TLS, device_ca only one
cat "$MCA" "$T/other-ca.crt" >"$T/tls-devices.pem"
RP=$(free_port) CP=$(free_port) PP=$(free_port)
lst() {
	printf '{"name": "%s", "listen": "127.0.0.1:%s", "client_auth": "require",
	  "tls": {"ca": "%s"}, "roles": "device", "messages": "PING,%s"}' "$1" "$2" \
		"$T/tls-devices.pem" "$3"
}
start_daemon qualifyd "\"listeners\": [$(lst registration "$RP" QD_REGISTER),
    $(lst credentialing "$CP" QD_CRED_REQ), $(lst provisioning "$PP" QD_PKG_FETCH,QD_PKG_CONFIRM)],
  \"device_ca\": \"$MCA\",
  \"operator\": {\"cert\": \"$T/op.crt\", \"key\": \"$T/op.key\"},
  \"ocsp\": {\"url\": \"$OCSP_URL\", \"timeout_ms\": 3000},
  \"ticket_ttl_s\": 10"
QDB=$T/state-qualifyd/qualifyd.db
dev() { # dev DEVICE STEP ADDR ARGS...
	local d=$1
	shift
	"$STB_QD_CLIENT" "$PKI/ca.crt" "$T/$d.crt" "$T/$d.key" "$@" 2>&1 || true
}
pool() { ctl qualifyd qd hss pool --json | /usr/bin/python3 -c \
	"import json,sys; o=json.load(sys.stdin); print(o['free'], o['held'], o['delivered'], o['retired'])"; }

# --- the operator's side ---
: >"$T/hss.csv"
echo "imsi,k,opc" >>"$T/hss.csv"
for i in 1 2 3 4 5 6; do
	echo "00101000000000$i,$(openssl rand -hex 16),$(openssl rand -hex 16)" >>"$T/hss.csv"
done
ctl qualifyd qd hss import "$T/hss.csv" | grepq "imported 6 HSS row" || fail "hss import"
out=$(ctl qualifyd qd hss import "$T/hss.csv" 2>&1) && fail "import twice: $out"
grepq CONFLICT <<<"$out" || fail "an IMSI imported twice is a CONFLICT: $out"
[ "$(pool)" = "6 0 0 0" ] || fail "pool after import: $(pool)"
printf 'device_id,routing\ndev-1,eu-west\ndev-2\ndev-3\ndev-4\ndev-5\ndev-r\ndev-x\n' >"$T/enrol.csv"
ctl qualifyd qd enrol --csv "$T/enrol.csv" | grepq "enrolled 7 device" || fail "bulk enrol"
ctl qualifyd qd enrol dev-6 --routing lab | grepq "enrolled dev-6, nonce expires 20" ||
	fail "enrol one"
ctl qualifyd qd enrol dev-7 --ttl 1 >/dev/null || fail "enrol with a short nonce"
[ "$(sqlite3 "$QDB" "SELECT count(*) FROM qd_devices WHERE length(nonce) = 62")" = 9 ] ||
	fail "9 enrolled devices, nonces sealed"
ctl qualifyd qd devices | grepq "^dev-1 .*enrolled .*eu-west" || fail "devices table"
ctl qualifyd qd show dev-6 --json | grepq '"nonce_expires":[[:space:]]*"20[0-9-]*T' ||
	fail "show --json with ISO-8601 times"

# --- a full bootstrap ---
r=$(dev dev-1 register "127.0.0.1:$RP")
[[ $r == OK* ]] || fail "register: $r"
nonce=$(field nonce "$r")
[ "$(field cred "$r")" = "127.0.0.1:$CP" ] || fail "registration names the credentialing role: $r"
r2=$(dev dev-2 register "127.0.0.1:$RP")
[ "$(field nonce "$r2")" != "$nonce" ] && [ ${#nonce} = 64 ] || fail "a nonce per device"
c=$(dev dev-1 cred "127.0.0.1:$CP" dev-1 "$nonce" good)
[[ $c == OK* ]] || fail "cred: $c"
[ "$(field prov "$c")" = "127.0.0.1:$PP" ] || fail "the ticket names the provisioning role: $c"
ticket=$(field ticket "$c") session=$(field session "$c")
f=$(dev dev-1 fetch "127.0.0.1:$PP" "$ticket" "$T/dev-1.pkg")
[[ $f == OK* ]] || fail "fetch: $f"
o=$(dev dev-1 open "$T/dev-1.pkg" "$T/op-ca.crt" dev-1 "$session")
[[ $o == OK* ]] || fail "open: $o"
imsi=$(field imsi "$o")
grepq "^$imsi,$(field k "$o"),$(field opc "$o")$" "$T/hss.csv" ||
	fail "the package holds a pool row's IMSI, K and OPc: $o"
# by hand: the signature, then the envelope
if openssl cms -verify -inform DER -in "$T/dev-1.pkg" -CAfile "$T/op-ca.crt" \
	-out "$T/dev-1.env" 2>"$T/verify.err" &&
	openssl cms -decrypt -inform DER -in "$T/dev-1.env" -recip "$T/dev-1.crt" \
		-inkey "$T/dev-1.key" -out "$T/dev-1.plain" 2>/dev/null; then
	/usr/bin/python3 - "$T/dev-1.plain" "$imsi" <<'PY' || fail "the opened package's TLVs"
import struct, sys
b = open(sys.argv[1], 'rb').read()
seen, off = {}, 0
while off < len(b):
    t, n = struct.unpack('>HI', b[off:off + 6])
    seen[t] = b[off + 6:off + 6 + n]
    off += 6 + n
assert seen[0x0006] == b'dev-1' and seen[0x060c] == sys.argv[2].encode()
assert len(seen[0x060d]) == 16 and len(seen[0x060e]) == 16 and len(seen[0x0606]) == 32
PY
	pass "openssl cms -verify and -decrypt open the package"
else
	fail "openssl cms: $(cat "$T/verify.err")"
fi
[ "$(pool)" = "5 1 0 0" ] || fail "the row is held until confirmed: $(pool)"
digest=$(field digest "$f")
bad=$(printf '%064d' 0)
out=$(dev dev-1 confirm "127.0.0.1:$PP" "$ticket" "$bad")
[[ $out == UNAUTHENTICATED* ]] || fail "a wrong digest: $out"
out=$(dev dev-1 confirm "127.0.0.1:$PP" "$ticket" "$digest")
[ "$out" = OK ] || fail "confirm: $out"
[ "$(pool)" = "5 0 1 0" ] || fail "confirmed: the row is delivered: $(pool)"
ctl qualifyd qd show dev-1 | grepq "^dev-1 .*delivered .*$imsi .*delivered" || fail "show delivered"
ctl qualifyd qd packages | grepq "^dev-1 .*confirmed" || fail "packages table"
pass "a full bootstrap"

# --- refusals: the status the device sees, and no HSS row consumed ---
expect() { # expect WHAT STATUS OUTPUT
	[[ $3 == "$2"* ]] && pass "$1: $2" || fail "$1: want $2, got: $3"
	[ "$(pool)" = "5 0 1 0" ] || fail "$1 consumed an HSS row: $(pool)"
}
expect "a replayed ticket (fetch)" REPLAY "$(dev dev-1 fetch "127.0.0.1:$PP" "$ticket" "$T/x.pkg")"
expect "a replayed ticket (confirm)" REPLAY "$(dev dev-1 confirm "127.0.0.1:$PP" "$ticket" "$digest")"
expect "a replayed nonce" REPLAY "$(dev dev-1 cred "127.0.0.1:$CP" dev-1 "$nonce" good)"
n2=$(field nonce "$r2")
expect "a wrong derivation" UNAUTHENTICATED "$(dev dev-2 cred "127.0.0.1:$CP" dev-2 "$n2" wrong)"
expect "another device's nonce" UNAUTHENTICATED "$(dev dev-2 cred "127.0.0.1:$CP" dev-2 "$nonce" good)"
expect "asking as another device" FORBIDDEN "$(dev dev-2 cred "127.0.0.1:$CP" dev-3 "$n2" good)"
expect "registering as another device" FORBIDDEN "$(dev dev-2 register "127.0.0.1:$RP" dev-3)"
expect "a device never enrolled (registration)" NOT_FOUND "$(dev dev-8 register "127.0.0.1:$RP")"
expect "a device never enrolled (credentials)" NOT_FOUND \
	"$(dev dev-8 cred "127.0.0.1:$CP" dev-8 "$nonce" good)"
expect "a certificate from another CA" UNAUTHENTICATED "$(dev dev-x register "127.0.0.1:$RP")"
# dev-x is enrolled: only its CA stops it
expect "another CA's certificate asking for credentials" UNAUTHENTICATED \
	"$(dev dev-x cred "127.0.0.1:$CP" dev-x "$nonce" good)"
sleep 1.1
r7=$(dev dev-7 register "127.0.0.1:$RP")
expect "an expired nonce (registration)" EXPIRED "$r7"
# the registration role no longer tells it, so derive from the nonce it had: the
# credentialing role refuses an expired one before it looks at the derivation
expect "an expired nonce (credentials)" EXPIRED "$(dev dev-7 cred "127.0.0.1:$CP" dev-7 "$n2" good)"
# revoked at ca-authd: OCSP says so
serial=$(openssl x509 -in "$T/dev-r.crt" -noout -serial | cut -d= -f2)
ctl ca-authd ca revoke "$serial" >/dev/null || fail "ca revoke"
rr=$(dev dev-r register "127.0.0.1:$RP")
expect "a revoked device" REVOKED "$(dev dev-r cred "127.0.0.1:$CP" dev-r "$(field nonce "$rr")" good)"
# another device's ticket
r3=$(dev dev-3 register "127.0.0.1:$RP")
c3=$(dev dev-3 cred "127.0.0.1:$CP" dev-3 "$(field nonce "$r3")" good)
[[ $c3 == OK* ]] || fail "dev-3 cred: $c3"
t3=$(field ticket "$c3")
out=$(dev dev-4 fetch "127.0.0.1:$PP" "$t3" "$T/x.pkg")
[[ $out == FORBIDDEN* ]] && pass "another device's ticket: FORBIDDEN" || fail "another's ticket: $out"
out=$(dev dev-4 confirm "127.0.0.1:$PP" "$t3" "$digest")
[[ $out == FORBIDDEN* ]] || fail "another device's ticket (confirm): $out"
out=$(dev dev-3 fetch "127.0.0.1:$PP" "$(printf '%064d' 7)" "$T/x.pkg")
[[ $out == NOT_FOUND* ]] || fail "a made-up ticket: $out"
# the refusals are audited, the anonymous ones summarised
[ "$(sqlite3 "$QDB" "SELECT count(*) FROM audit WHERE event LIKE '%refused'")" -ge 8 ] ||
	fail "refusals of devices are audited"

# --- an expired package: the row stays held until the operator decides ---
# (waits for dev-3's ticket to expire: ticket_ttl_s is short, but long enough
# for the bootstrap above on a loaded machine)
e3=$(field expires "$c3")
while [ "$(date +%s)" -le "$e3" ]; do sleep 0.2; done
out=$(dev dev-3 fetch "127.0.0.1:$PP" "$t3" "$T/x.pkg")
[[ $out == EXPIRED* ]] && pass "an expired ticket: EXPIRED" || fail "expired ticket: $out"
[ "$(pool)" = "4 1 1 0" ] || fail "the expired package's row is held: $(pool)"
ctl qualifyd qd show dev-3 | grepq "package_expired .* held" || fail "show: package_expired, held"
imsi3=$(sqlite3 "$QDB" "SELECT imsi FROM qd_devices WHERE device_id='dev-3'")
out=$(ctl qualifyd qd hss release "$imsi" 2>&1) && fail "a delivered row cannot be released"
ctl qualifyd qd hss release "$imsi3" | grepq released || fail "hss release"
[ "$(pool)" = "5 0 1 0" ] || fail "released: $(pool)"
ctl qualifyd qd hss retire 001010000000006 >/dev/null || fail "hss retire"
[ "$(pool)" = "4 0 1 1" ] || fail "retired: $(pool)"
ctl qualifyd qd enrol dev-3 >/dev/null || fail "enrol again after an expired package"

ctl qualifyd audit verify | grepq intact || fail "audit chain"
if grep -i -e "$nonce" -e "$ticket" "$T/qualifyd.log" >/dev/null; then
	fail "a nonce or ticket in the log"
fi
stop_daemon qualifyd
[ "$RC" = 0 ] || fail "qualifyd stops cleanly on SIGTERM (exit $RC)"
if grep -E "Sanitizer|runtime error" "$T/qualifyd.log" >/dev/null; then
	fail "sanitizer report in qualifyd's log"
fi
finish
