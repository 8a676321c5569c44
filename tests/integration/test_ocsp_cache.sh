#!/usr/bin/env bash
# ca-authd's OCSP cache (RFC 5019): a nonce-less request is answered from a
# pre-signed answer, byte for byte the same on the next ask, over POST and
# GET (with Cache-Control, ETag, Last-Modified, Expires and a 304 for
# If-None-Match); openssl verifies it; a revocation flips the very next
# answer; old answers are re-signed in the background; the configured cap
# holds; nonce requests are signed fresh; unknown serials take no entry.
. "$(dirname "$0")/lib.sh"

[ -n "${STB_BIN_ca_authd:-}" ] || { echo "needs STB_BIN_ca_authd"; exit 1; }
pki_init
STATE=$PKI/ca-authd-state
PORT[ca-authd]=$(free_port)
HPORT[ca-authd]=$(free_port)
H=127.0.0.1:${HPORT[ca-authd]}
store_json ca-authd-pki
cat > "$T/ca-authd.json" <<JSON
{
  "listen": "127.0.0.1:${PORT[ca-authd]}",
  "http_listen": "$H",
  "state_dir": "$STATE", $STORE_JSON
  "kek_file": "$PKI/ca-authd.kek",
  "tls": { "cert": "$PKI/ca-authd.crt", "key": "$PKI/ca-authd.key", "ca": "$PKI/ca.crt" },
  "ocsp": { "validity_s": 600, "cache_size": 3 }
}
JSON
start_daemon ca-authd

for i in 1 2 3 4 5; do
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/c$i.key" 2>/dev/null
	openssl req -new -key "$T/c$i.key" -subj "/CN=ignored" -out "$T/c$i.csr"
	ctl ca-authd ca issue --csr "$T/c$i.csr" --profile stb-media --device "stb-oc$i" \
		--cert-id "oc-$i" --out "$T/c$i.pem" >/dev/null || fail "issue c$i"
	openssl ocsp -issuer "$STATE/chain-issuing.pem" -cert "$T/c$i.pem" -no_nonce \
		-reqout "$T/req$i.der" >/dev/null 2>&1 || fail "request for c$i"
done

# fetch METHOD REQ.DER OUT [IF-NONE-MATCH]: prints the status and headers
fetch() {
	python3 - "$H" "$@" <<'PY'
import base64, sys, urllib.parse, urllib.request, urllib.error
host, method, req, out = sys.argv[1:5]
der = open(req, 'rb').read()
if method == 'GET':
    r = urllib.request.Request('http://%s/ocsp/%s' % (host, urllib.parse.quote(
        base64.b64encode(der).decode(), safe='')))
else:
    r = urllib.request.Request('http://%s/ocsp' % host, data=der,
                               headers={'Content-Type': 'application/ocsp-request'})
if len(sys.argv) > 5:
    r.add_header('If-None-Match', sys.argv[5])
try:
    resp = urllib.request.urlopen(r)
    code, hdrs, body = resp.status, resp.headers, resp.read()
except urllib.error.HTTPError as e:
    code, hdrs, body = e.code, e.headers, e.read()
open(out, 'wb').write(body)
print('status', code)
for k in ('Cache-Control', 'ETag', 'Last-Modified', 'Expires'):
    if hdrs.get(k) is not None:
        print(k + ':', hdrs.get(k))
PY
}
check() { # check RSP.DER CERT: openssl's verdict on a stored answer
	openssl ocsp -respin "$1" -issuer "$STATE/chain-issuing.pem" -cert "$2" \
		-CAfile "$STATE/root.pem" -no_nonce 2>&1
}
metric() { http_get "$H" /metrics | sed -n "s/^stbcred_ca_ocsp_cache_$1 //p"; }
signed() { http_get "$H" /metrics | sed -n "s/^stbcred_ca_ocsp_signatures_total //p"; }

# --- cached: byte-identical on the second ask, POST and GET, verified ---
fetch POST "$T/req1.der" "$T/p1.der" >/dev/null
fetch POST "$T/req1.der" "$T/p2.der" >/dev/null
cmp -s "$T/p1.der" "$T/p2.der" && pass "a cached answer is byte-identical on the second POST" ||
	fail "second POST differs"
out=$(check "$T/p1.der" "$T/c1.pem")
grepq "Response verify OK" <<<"$out" && grepq "c1.pem: good" <<<"$out" &&
	pass "openssl ocsp verifies the cached answer: good" || fail "cached answer: $out"
hdr=$(fetch GET "$T/req1.der" "$T/g1.der")
cmp -s "$T/p1.der" "$T/g1.der" && pass "GET gets the same cached answer" || fail "GET differs"
grepq "^status 200" <<<"$hdr" || fail "GET status: $hdr"
grepq -E "^Cache-Control: max-age=[0-9]+, public, no-transform, must-revalidate$" <<<"$hdr" &&
	grepq -E '^ETag: "[0-9a-f]{16}"$' <<<"$hdr" && grepq -E "^Last-Modified: .* GMT$" <<<"$hdr" &&
	grepq -E "^Expires: .* GMT$" <<<"$hdr" && pass "GET carries RFC 5019 caching headers" ||
	fail "GET headers: $hdr"
age=$(sed -n 's/^Cache-Control: max-age=\([0-9]*\).*/\1/p' <<<"$hdr")
[ "$age" -gt 0 ] && [ "$age" -le 600 ] || fail "max-age $age not within validity"
etag=$(sed -n 's/^ETag: //p' <<<"$hdr")
hdr2=$(fetch GET "$T/req1.der" "$T/g2.der" "$etag")
grepq "^status 304" <<<"$hdr2" && pass "If-None-Match with the ETag: 304" || fail "304: $hdr2"
hdr3=$(fetch GET "$T/req1.der" "$T/g3.der" '"0000000000000000"')
grepq "^status 200" <<<"$hdr3" || fail "another ETag: $hdr3"
fetch POST "$T/req1.der" "$T/p3.der" | grepq ETag && fail "POST carries caching headers"

# --- nonce requests are signed fresh ---
nonced() { openssl ocsp -issuer "$STATE/chain-issuing.pem" -cert "$T/c1.pem" \
	-url "http://$H/ocsp" -CAfile "$STATE/root.pem" -respout "$1" 2>&1; }
o1=$(nonced "$T/n1.der")
o2=$(nonced "$T/n2.der")
grepq "Response verify OK" <<<"$o1$o2" && ! grepq "WARNING: no nonce" <<<"$o1$o2" &&
	grepq "c1.pem: good" <<<"$o2" || fail "nonce answers: $o1 $o2"
sig() { openssl ocsp -respin "$1" -resp_text -noverify 2>/dev/null |
	sed -n '/Signature Value/,/Certificate:/p' | head -n 6; }
[ "$(sig "$T/n1.der")" != "$(sig "$T/n2.der")" ] && ! cmp -s "$T/n1.der" "$T/p1.der" &&
	pass "nonce requests get fresh signatures" || fail "nonce answers share a signature"

# --- revocation: the next answer after the admin's OK is revoked ---
fetch POST "$T/req2.der" "$T/v1.der" >/dev/null
fetch GET "$T/req2.der" "$T/v2.der" >/dev/null
grepq "c2.pem: good" <<<"$(check "$T/v2.der" "$T/c2.pem")" || fail "c2 good before revoke"
s2=$(openssl x509 -in "$T/c2.pem" -noout -serial | cut -d= -f2)
ctl ca-authd ca revoke "$s2" --reason keyCompromise >/dev/null || fail "revoke c2"
fetch GET "$T/req2.der" "$T/v3.der" >/dev/null
fetch POST "$T/req2.der" "$T/v4.der" >/dev/null
out=$(check "$T/v3.der" "$T/c2.pem")$(check "$T/v4.der" "$T/c2.pem")
grepq "Response verify OK" <<<"$out" && ! grepq "c2.pem: good" <<<"$out" &&
	[ "$(grep -c "c2.pem: revoked" <<<"$out")" = 2 ] &&
	pass "the first GET and POST after the revoke's OK say revoked" || fail "after revoke: $out"

# --- the cap holds; unknown serials take no entry and no log line ---
for i in 1 2 3 4 5; do fetch POST "$T/req$i.der" "$T/cap$i.der" >/dev/null; done
[ "$(metric entries)" -le 3 ] && [ "$(metric evictions_total)" -ge 2 ] &&
	pass "cache_size 3 holds ($(metric entries) entries, $(metric evictions_total) evicted)" ||
	fail "cap: $(metric entries) entries, $(metric evictions_total) evictions"
lines=$(wc -l <"$T/ca-authd.log")
openssl ocsp -issuer "$STATE/chain-issuing.pem" -serial 0x0A0B0C0D -no_nonce \
	-reqout "$T/unk.der" >/dev/null 2>&1
h0=$(metric hits_total)
s0=$(signed)
for _ in $(seq 1 20); do fetch POST "$T/unk.der" "$T/unk.rsp" >/dev/null; done
# an anonymous flood of unknown serials: one signature each, not the
# cache's (discarded) one and then the fresh path's
[ -n "$s0" ] && [ "$(($(signed) - s0))" = 20 ] &&
	pass "unknown serials: one signature per request" ||
	fail "unknown serials: $(($(signed) - s0)) signatures for 20 requests"
out=$(openssl ocsp -respin "$T/unk.rsp" -issuer "$STATE/chain-issuing.pem" -serial 0x0A0B0C0D \
	-CAfile "$STATE/root.pem" -no_nonce 2>&1)
grepq "Response verify OK" <<<"$out" && grepq "0x0A0B0C0D: unknown" <<<"$out" &&
	[ "$(metric hits_total)" = "$h0" ] && [ "$(wc -l <"$T/ca-authd.log")" = "$lines" ] &&
	pass "unknown serials: signed unknown, no cache hit, no log line" || fail "unknown: $out"
# --- refreshed before nextUpdate, off the request path (a restart with
# cache_refresh_s 1) ---
stop_daemon ca-authd
sed -i 's/"cache_size": 3 }/"cache_size": 3, "cache_refresh_s": 1 }/' "$T/ca-authd.json"
start_daemon ca-authd
fetch POST "$T/req1.der" "$T/p1.der" >/dev/null
# --- refreshed before nextUpdate, off the request path ---
ref0=$(metric refreshes_total)
sleep 1.5 # older than cache_refresh_s: the next hit queues a refresh
fetch POST "$T/req1.der" "$T/r0.der" >/dev/null
cmp -s "$T/r0.der" "$T/p1.der" || fail "the hit that queues a refresh still has the old answer"
for _ in $(seq 1 100); do
	fetch POST "$T/req1.der" "$T/r1.der" >/dev/null
	cmp -s "$T/r1.der" "$T/p1.der" || break
	sleep 0.1
done
tu() { openssl ocsp -respin "$1" -resp_text -noverify 2>/dev/null | sed -n 's/.*This Update: //p'; }
if ! cmp -s "$T/r1.der" "$T/p1.der" && [ "$(metric refreshes_total)" -gt "$ref0" ]; then
	[ "$(date -d "$(tu "$T/r1.der")" +%s)" -gt "$(date -d "$(tu "$T/p1.der")" +%s)" ] &&
		grepq "c1.pem: good" <<<"$(check "$T/r1.der" "$T/c1.pem")" &&
		pass "an old answer is re-signed in the background (later thisUpdate)" ||
		fail "refreshed answer: $(tu "$T/r1.der") vs $(tu "$T/p1.der")"
else
	fail "no refresh of an answer older than cache_refresh_s"
fi

finish
