#!/usr/bin/env bash
# ca-authd: the CA pki-bootstrap made with `ca-authd init` is the one the
# daemon runs; issuing over mutual TLS (admin through stbctl, cert-proxyd
# through ca_client), revocation with CRL and OCSP checked by openssl,
# refused requests that leave no row, and CA_VERIFY_KEYINFO's verdicts.
. "$(dirname "$0")/lib.sh"

[ -n "${STB_BIN_ca_authd:-}" ] || { echo "needs STB_BIN_ca_authd"; exit 1; }
pki_init
STATE=$PKI/ca-authd-state
[ -f "$PKI/ca-authd-pki.json" ] && [ -f "$STATE/root.pem" ] ||
	{ echo "pki-bootstrap did not use ca-authd"; exit 1; }
CA=$(bin_of ca-authd)

# The daemon runs on the CA state pki-bootstrap made.
PORT[ca-authd]=$(free_port)
HPORT[ca-authd]=$(free_port)
H=127.0.0.1:${HPORT[ca-authd]}
ADDR=127.0.0.1:${PORT[ca-authd]}
store_json ca-authd-pki
cat > "$T/ca-authd.json" <<JSON
{
  "listen": "$ADDR",
  "http_listen": "$H",
  "state_dir": "$STATE", $STORE_JSON
  "kek_file": "$PKI/ca-authd.kek",
  "tls": { "cert": "$PKI/ca-authd.crt", "key": "$PKI/ca-authd.key", "ca": "$PKI/ca.crt" },
  "keyinfo": { "freshness_s": 300 },
  "crl": { "validity_s": 7200, "refresh_s": 3600 }
}
JSON

# --- init: idempotent, refuses part of a CA ---
before=$(sha256sum "$STATE/root.pem" "$STATE/issuing.key.sealed")
out=$("$CA" init -c "$T/ca-authd.json") || fail "second init exits 0: $out"
grepq "already holds a CA" <<<"$out" || fail "second init says so: $out"
[ "$before" = "$(sha256sum "$STATE/root.pem" "$STATE/issuing.key.sealed")" ] &&
	pass "init run twice changes nothing" || fail "init overwrote the CA"
mkdir -m 0700 -p "$T/partial" # a state_dir others may enter is refused first
cp "$STATE/root.pem" "$T/partial/"
sed "s|\"$STATE\"|\"$T/partial\"|" "$T/ca-authd.json" > "$T/partial.json"
if out=$("$CA" init -c "$T/partial.json" 2>&1); then
	fail "init over part of a CA succeeded: $out"
else
	grepq "part of a CA" <<<"$out" && pass "init refuses a half-made CA" || fail "partial: $out"
fi
[ "$(stat -c %a "$STATE/issuing.key.sealed")" = 600 ] || fail "sealed key is 0600"
if grepq -a "BEGIN" "$STATE/issuing.key.sealed"; then fail "issuing key stored in the clear"; fi
"$CA" -t -c "$T/ca-authd.json" | grepq "configuration OK" || fail "-t accepts the config"
echo '{"profiles": {"stb-media": {"key_usage": "digitalSignature,keyCertSign"}}}' > "$T/badprof.json"
out=$("$CA" -t -c "$T/badprof.json" 2>&1) && fail "-t accepted keyCertSign on a leaf"
grepq "profiles.stb-media.key_usage" <<<"$out" && pass "-t checks profiles" || fail "-t: $out"

start_daemon ca-authd
# the service certificates come from this CA
for n in media-gw cert-proxyd admin; do
	openssl verify -CAfile "$STATE/root.pem" -untrusted "$STATE/chain-issuing.pem" \
		"$PKI/$n.crt" >/dev/null || fail "$n.crt chains to ca-authd's root"
	openssl x509 -in "$PKI/$n.crt" -noout -ext subjectAltName |
		grepq "URI:urn:stbcred:role:$n" || fail "$n.crt has its role URI"
done
ctl ca-authd ca list --limit 100 | grepq " service .* media-gw$" && pass "service certificates recorded" ||
	fail "ca list lacks the service certificates: $(ctl ca-authd ca list)"

rows() { ctl ca-authd -j ca list --limit 1000 | grep -c '"serial"' || true; }
csr() { # csr NAME: a P-256 key and request
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/$1.key" 2>/dev/null
	openssl req -new -key "$T/$1.key" -subj "/CN=ignored" -out "$T/$1.csr"
}
cac() { # cac CERTNAME ARGS: ca_client with a PKI certificate
	local n=$1
	shift
	"$STB_CA_CLIENT" "$ADDR" "$PKI/ca.crt" "$PKI/$n.crt" "$PKI/$n.key" "$@" || true
}

# --- issue: admin through stbctl ---
csr a
ctl ca-authd ca issue --csr "$T/a.csr" --profile stb-media --device stb-0001 \
	--cert-id cert-0001 --out "$T/a.pem" >/dev/null || fail "admin issue"
openssl verify -CAfile "$STATE/root.pem" -untrusted "$STATE/chain-issuing.pem" "$T/a.pem" |
	grepq ": OK" && pass "issued certificate verifies against root + issuing" || fail "verify a.pem"
openssl x509 -in "$T/a.pem" -out "$T/a.crt"
text=$(openssl x509 -in "$T/a.crt" -noout -text)
for want in "CN = stb-0001" "URI:urn:stbcred:device:stb-0001" "URI:urn:stbcred:cert:cert-0001" \
	"TLS Web Client Authentication" "Digital Signature" "CA:FALSE" \
	"OCSP - URI:http://$H/ocsp" "URI:http://$H/crl"; do
	grepq -F "$want" <<<"$text" || fail "a.pem lacks '$want'"
done
serial_a=$(openssl x509 -in "$T/a.crt" -noout -serial | cut -d= -f2)
[ ${#serial_a} -eq 32 ] && pass "16-byte serial $serial_a" || fail "serial length: $serial_a"
cmp -s <(openssl x509 -in "$T/a.pem" -pubkey -noout) <(openssl pkey -in "$T/a.key" -pubout) ||
	fail "certificate holds the CSR's key"

# --- issue: cert-proxyd role, as cert-proxyd will ---
out=$(cac cert-proxyd issue good stb-media stb-0002 cert-0002 0 "$T/b")
[[ $out == OK* ]] && pass "cert-proxyd issues: $out" || fail "cert-proxyd issue: $out"
serial_b=$(openssl x509 -in "$T/b.crt" -noout -serial | cut -d= -f2)
out=$(cac cert-proxyd issue good stb-media stb-0003 cert-0003 2 "$T/short")
[[ $out == OK* ]] || fail "short-lived issue: $out"
na=$(sed -n 's/.*not_after=\([0-9]*\).*/\1/p' <<<"$out")
[ -n "$na" ] && [ "$na" -le $(($(date +%s) + 3)) ] && pass "VALIDITY_S 2 shortens the validity" ||
	fail "validity not shortened: $out"
out=$(cac cert-proxyd issue good stb-media stb-0004 cert-0004 999999999 "$T/long")
na=$(sed -n 's/.*not_after=\([0-9]*\).*/\1/p' <<<"$out")
[ -n "$na" ] && [ "$na" -le $(($(date +%s) + 2592000 + 5)) ] &&
	pass "validity capped by the profile" || fail "validity cap: $out"

# --- refused requests leave no row ---
n0=$(rows)
for mode in garbage badsig p384 trailing; do
	out=$(cac cert-proxyd issue $mode stb-media stb-bad cert-bad 0 "$T/bad")
	[[ $out == BAD_REQUEST* ]] && pass "$mode CSR: $out" || fail "$mode CSR: $out"
done
out=$(cac cert-proxyd issue good stb-media "" cert-bad 0 "$T/bad")
[[ $out == BAD_REQUEST*DEVICE_ID* ]] || fail "stb-media without DEVICE_ID: $out"
out=$(cac cert-proxyd issue good no-such-profile stb-bad cert-bad 0 "$T/bad")
[[ $out == NOT_FOUND* ]] || fail "unknown profile: $out"
out=$(cac cert-proxyd issue good service evil admin 0 "$T/bad")
[[ $out == FORBIDDEN* ]] && pass "cert-proxyd may not use the service profile" || fail "service: $out"
out=$(cac media-gw issue good stb-media stb-bad cert-bad 0 "$T/bad")
[[ $out == FORBIDDEN* ]] && pass "media-gw sending CA_ISSUE is FORBIDDEN" || fail "media-gw: $out"
# a device-role certificate of this CA
csr dev
ctl ca-authd ca issue --csr "$T/dev.csr" --profile device --device term-1 --out "$T/dev.pem" \
	>/dev/null || fail "device profile issue"
openssl x509 -in "$T/dev.pem" -noout -ext subjectAltName | grepq "urn:stbcred:role:device" ||
	fail "device certificate has the device role"
out=$("$STB_CA_CLIENT" "$ADDR" "$PKI/ca.crt" "$T/dev.pem" "$T/dev.key" issue good stb-media x y 0 "$T/bad" || true)
[[ $out == FORBIDDEN* ]] && pass "device role sending CA_ISSUE is FORBIDDEN" || fail "device: $out"
n1=$(rows)
[ "$n0" = "$((n1 - 1))" ] && pass "refused requests added no row ($n0 + the device one)" ||
	fail "rows before $n0, after $n1"
ls "$T"/bad.* >/dev/null 2>&1 && fail "a refused request left files"

# --- CA_STATUS ---
ctl ca-authd ca status "$serial_a" | grepq "^state *good" || fail "status good"
ctl ca-authd ca status 0102030405 | grepq "^state *unknown" || fail "status unknown"

# --- revoke, CRL, OCSP ---
ctl ca-authd ca revoke "$serial_a" --reason keyCompromise >/dev/null || fail "revoke"
out=$(ctl ca-authd ca revoke "$serial_a" 2>&1) && fail "second revoke succeeded"
grepq CONFLICT <<<"$out" || fail "second revoke CONFLICT: $out"
out=$(ctl ca-authd ca revoke 0102030405 2>&1) && fail "revoke of an unknown serial"
grepq NOT_FOUND <<<"$out" || fail "revoke unknown NOT_FOUND: $out"
out=$(ctl ca-authd ca revoke "$serial_b" --reason certificateHold 2>&1) && fail "hold accepted"
ctl ca-authd -j ca status "$serial_a" | grepq '"reason":[[:space:]]*"keyCompromise"' ||
	fail "status shows the reason"
ctl ca-authd ca status "$serial_a" | grepq "^state *revoked" && pass "status revoked" ||
	fail "status revoked"

http_get "$H" /crl > "$T/crl.http"
# the body after the blank line is DER
python3 - "$T/crl.http" "$T/crl.der" <<'PY'
import sys
d = open(sys.argv[1], 'rb').read()
open(sys.argv[2], 'wb').write(d.split(b'\r\n\r\n', 1)[1])
PY
cmp -s "$T/crl.der" "$STATE/crl.der" && pass "/crl serves state_dir/crl.der" || fail "/crl differs"
openssl crl -inform DER -in "$T/crl.der" -out "$T/crl.pem" || fail "CRL parses"
openssl crl -in "$T/crl.pem" -noout -text > "$T/crl.txt"
grepq "Serial Number: $serial_a" "$T/crl.txt" || fail "CRL lists the revoked serial"
grepq "Key Compromise" "$T/crl.txt" || fail "CRL entry has the reason"
grepq "Next Update" "$T/crl.txt" && grepq "CRL Number" "$T/crl.txt" || fail "CRL number, nextUpdate"
openssl crl -in "$T/crl.pem" -noout -CAfile "$STATE/chain.pem" 2>&1 | grepq "verify OK" ||
	fail "CRL signed by the issuing CA"
cat "$STATE/root.pem" "$STATE/chain-issuing.pem" "$T/crl.pem" > "$T/crlchain.pem"
if openssl verify -crl_check -CAfile "$T/crlchain.pem" "$T/a.crt" >"$T/v" 2>&1; then
	fail "verify -crl_check passes a revoked certificate"
else
	grepq "certificate revoked" "$T/v" && pass "verify -crl_check: a.pem revoked" || fail "$(cat "$T/v")"
fi
openssl verify -crl_check -CAfile "$T/crlchain.pem" "$T/b.crt" | grepq ": OK" &&
	pass "verify -crl_check: b.pem OK" || fail "crl_check of a good certificate"

ocsp() { openssl ocsp -issuer "$STATE/chain-issuing.pem" -url "http://$H/ocsp" \
	-CAfile "$STATE/root.pem" "$@" 2>&1; }
out=$(ocsp -cert "$T/b.crt")
grepq "Response verify OK" <<<"$out" && grepq "b.crt: good" <<<"$out" &&
	pass "openssl ocsp: good" || fail "ocsp good: $out"
out=$(ocsp -cert "$T/a.crt")
grepq "Response verify OK" <<<"$out" && grepq "a.crt: revoked" <<<"$out" &&
	grepq "Reason: keyCompromise" <<<"$out" && pass "openssl ocsp: revoked" ||
	fail "ocsp revoked: $out"
out=$(ocsp -serial 0x0102030405)
grepq "Response verify OK" <<<"$out" && grepq "0x0102030405: unknown" <<<"$out" &&
	pass "openssl ocsp: unknown" || fail "ocsp unknown: $out"
grepq "WARNING: no nonce" <<<"$out" && fail "nonce not echoed: $out"
# GET with the request in the URL
openssl ocsp -issuer "$STATE/chain-issuing.pem" -cert "$T/a.crt" -reqout "$T/req.der" \
	-no_nonce >/dev/null 2>&1
path=$(base64 -w0 "$T/req.der" | python3 -c 'import sys,urllib.parse;print(urllib.parse.quote(sys.stdin.read(),safe=""))')
python3 - "$H" "/ocsp/$path" "$T/rsp.der" <<'PY'
import sys, urllib.request
open(sys.argv[3], 'wb').write(urllib.request.urlopen('http://' + sys.argv[1] + sys.argv[2]).read())
PY
out=$(openssl ocsp -respin "$T/rsp.der" -issuer "$STATE/chain-issuing.pem" -cert "$T/a.crt" \
	-CAfile "$STATE/root.pem" -no_nonce 2>&1)
grepq "a.crt: revoked" <<<"$out" && pass "OCSP over GET" || fail "ocsp GET: $out"
echo "not an ocsp request" > "$T/junk"
python3 - "$H" "$T/junk" "$T/rsp2.der" <<'PY'
import sys, urllib.request
r = urllib.request.Request('http://' + sys.argv[1] + '/ocsp', data=open(sys.argv[2], 'rb').read(),
                           headers={'Content-Type': 'application/ocsp-request'})
open(sys.argv[3], 'wb').write(urllib.request.urlopen(r).read())
PY
out=$(openssl ocsp -respin "$T/rsp2.der" -resp_text -noverify 2>&1 || true)
grepq "malformedrequest" <<<"$out" && pass "junk to /ocsp: malformedRequest" || fail "junk ocsp: $out"

# --- CA_VERIFY_KEYINFO, as media-gw ---
verify() { cac media-gw verify "$@"; }
out=$(verify good stb-0002 cert-0002 "$T/b.crt" "$T/b.key")
[[ $out == "OK serial=$serial_b "* ]] && pass "good key info: $out" || fail "good key info: $out"
out=$(verify good stb-0002 cert-0002 "$T/b.crt" "$T/b.key")
[[ $out == OK* ]] || fail "second login (cached certificate): $out"
out=$(verify forged stb-0002 cert-0002 "$T/b.crt" "$T/b.key")
[[ $out == UNAUTHENTICATED*"bad proof"* ]] && pass "forged proof: $out" || fail "forged: $out"
out=$(verify other-session stb-0002 cert-0002 "$T/b.crt" "$T/b.key")
[[ $out == UNAUTHENTICATED*"bad proof"* ]] && pass "proof for another session: $out" ||
	fail "other session: $out"
out=$(verify garbage stb-0002 cert-0002 "$T/b.crt" "$T/b.key")
[[ $out == UNAUTHENTICATED*"bad proof"* ]] || fail "garbage proof: $out"
out=$(verify good stb-0002 cert-0002 "$T/b.crt" "$T/long.key")
[[ $out == UNAUTHENTICATED*"bad proof"* ]] && pass "another key's proof: $out" || fail "key: $out"
out=$(verify stale stb-0002 cert-0002 "$T/b.crt" "$T/b.key")
[[ $out == EXPIRED*"stale key info"* ]] && pass "stale key info: $out" || fail "stale: $out"
out=$(verify future stb-0002 cert-0002 "$T/b.crt" "$T/b.key")
[[ $out == EXPIRED*"stale key info"* ]] || fail "key info from the future: $out"
out=$(verify good stb-9999 cert-0002 "$T/b.crt" "$T/b.key")
[[ $out == UNAUTHENTICATED*"for device stb-0002, not stb-9999"* ]] &&
	pass "another device's certificate: $out" || fail "device mismatch: $out"
out=$(verify good stb-0002 cert-9999 "$T/b.crt" "$T/b.key")
[[ $out == UNAUTHENTICATED*"cert-0002, not cert-9999"* ]] && pass "another cert ID: $out" ||
	fail "cert mismatch: $out"
out=$(verify good stb-0001 cert-0001 "$T/a.crt" "$T/a.key")
[[ $out == REVOKED* ]] && pass "revoked certificate: $out" || fail "revoked: $out"
sleep 3 # the 2 s certificate runs out
out=$(verify good stb-0003 cert-0003 "$T/short.crt" "$T/short.key")
[[ $out == EXPIRED*"expired at"* ]] && pass "expired certificate: $out" || fail "expired: $out"
out=$(ctl ca-authd ca status "$(openssl x509 -in "$T/short.crt" -noout -serial | cut -d= -f2)")
grepq "^state *expired" <<<"$out" || fail "status expired: $out"
# a certificate with the right names from another CA
mkdir -p "$T/other"
"$STB_SRC/scripts/pki-bootstrap.sh" --openssl "$T/other" >/dev/null
printf 'subjectAltName=URI:urn:stbcred:device:stb-0002,URI:urn:stbcred:cert:cert-0002\n' > "$T/ext"
openssl req -new -key "$T/b.key" -subj "/CN=stb-0002" -out "$T/o.csr"
openssl x509 -req -in "$T/o.csr" -CA "$T/other/ca-issuing.crt" -CAkey "$T/other/ca-issuing.key" \
	-CAcreateserial -days 1 -extfile "$T/ext" -out "$T/o.crt" 2>/dev/null
out=$(verify good stb-0002 cert-0002 "$T/o.crt" "$T/b.key")
[[ $out == UNAUTHENTICATED*"not issued by this CA"* ]] && pass "another CA's certificate: $out" ||
	fail "other CA: $out"
# our issuing CA's name on a certificate it never signed
openssl req -x509 -new -key "$T/b.key" -subj "/O=stbcred/CN=stbcred issuing CA" -days 1 \
	-addext "subjectAltName=URI:urn:stbcred:device:stb-0002,URI:urn:stbcred:cert:cert-0002" \
	-out "$T/self.crt" 2>/dev/null
out=$(verify good stb-0002 cert-0002 "$T/self.crt" "$T/b.key")
[[ $out == UNAUTHENTICATED* ]] || fail "self-signed lookalike: $out"
# a certificate of this CA that is not a media-access one
out=$(verify good term-1 x "$T/dev.pem" "$T/dev.key")
[[ $out == UNAUTHENTICATED* ]] || fail "device-profile certificate used for login: $out"
out=$(cac cert-proxyd verify good stb-0002 cert-0002 "$T/b.crt" "$T/b.key")
[[ $out == FORBIDDEN* ]] && pass "cert-proxyd sending CA_VERIFY_KEYINFO is FORBIDDEN" ||
	fail "verify role: $out"

# --- audit and restart ---
ctl ca-authd audit verify | grepq "intact" || fail "audit chain intact"
audit=$(ctl ca-authd -j audit export)
grepq "\"event\":\"revoke\".*serial=$serial_a reason=keyCompromise" <<<"$audit" || fail "revoke audited"
grepq "\"event\":\"issue\".*serial=$serial_b profile=stb-media" <<<"$audit" || fail "issue audited"
grepq "\"event\":\"ca-init\"" <<<"$audit" || fail "init audited"
grepq "\"event\":\"issue-service\".*subject=media-gw" <<<"$audit" || fail "service issue audited"
grepq -i "BEGIN\|PRIVATE" "$T/ca-authd.log" && fail "key material in the log"
num1=$(openssl crl -in "$T/crl.pem" -noout -crlnumber | sed 's/.*=0x//')
stop_daemon ca-authd TERM
[ "$RC" = 0 ] || fail "clean exit (got $RC)"
# a new responder certificate, used after the restart
r1=$(openssl x509 -in "$STATE/ocsp.pem" -noout -serial)
"$CA" init --renew-ocsp -c "$T/ca-authd.json" | grepq "new OCSP responder" || fail "renew-ocsp"
r2=$(openssl x509 -in "$STATE/ocsp.pem" -noout -serial)
[ "$r1" != "$r2" ] || fail "renew-ocsp kept the responder ($r1)"
start_daemon ca-authd
out=$(verify good stb-0001 cert-0001 "$T/a.crt" "$T/a.key")
[[ $out == REVOKED* ]] && pass "revocation survives a restart" || fail "after restart: $out"
out=$(ocsp -cert "$T/a.crt")
grepq "Response verify OK" <<<"$out" && grepq "a.crt: revoked" <<<"$out" &&
	pass "OCSP after a restart, by the renewed responder" || fail "ocsp after restart: $out"
ocsp -cert "$T/a.crt" -respout "$T/rsp3.der" >/dev/null
openssl ocsp -respin "$T/rsp3.der" -resp_text -noverify 2>/dev/null | tr -d ' :\n' |
	grepq -i "SerialNumber$(sed 's/serial=//' <<<"$r2")" &&
	pass "the answer carries the new responder certificate" || fail "responder $r2 not in the answer"
num2=$(openssl crl -inform DER -in "$STATE/crl.der" -noout -crlnumber | sed 's/.*=0x//')
[ -n "$num1" ] && [ $((16#$num2)) -gt $((16#$num1)) ] && pass "CRL number grows ($num1 -> $num2)" ||
	fail "CRL number $num1 -> $num2"
out=$(ctl ca-authd -j ca list --device stb-0002)
grepq "\"serial\":[[:space:]]*\"$serial_b\"" <<<"$out" && [ "$(grep -c '"serial"' <<<"$out")" = 1 ] ||
	fail "list --device: $out"
stop_daemon ca-authd TERM

# --- a daemon without a CA refuses CA work with UNAVAILABLE ---
write_config ca-authd
start_daemon ca-authd
out=$(cac cert-proxyd issue good stb-media s c 0 "$T/bad")
[[ $out == UNAVAILABLE*"ca-authd init"* ]] && pass "no CA: UNAVAILABLE" || fail "no CA: $out"
grepq "no CA in" "$T/ca-authd.log" || fail "no CA logged"
finish
