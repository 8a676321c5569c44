#!/usr/bin/env bash
# A CSR whose P-256 key is given by explicit curve parameters (openssl
# ecparam -param_enc explicit): ca-authd must refuse it with BAD_REQUEST
# and issue nothing (a certificate carrying that key fails `openssl verify`,
# error 94).  The same request with the named curve is issued, and that
# certificate verifies.
. "$STB_SRC/tests/hostile/cp_lib.sh"
issued() { sqlite3 "$CADIR/ca-authd.db" "SELECT count(*) FROM certs WHERE cert_id='$1'"; }

openssl ecparam -name prime256v1 -param_enc explicit -genkey -noout -out "$T/ex.key"
openssl req -new -key "$T/ex.key" -subj /CN=c-ex -outform DER -out "$T/ex.csr"
openssl ecparam -name prime256v1 -genkey -noout -out "$T/named.key"
openssl req -new -key "$T/named.key" -subj /CN=c-named -outform DER -out "$T/named.csr"
grepq "prime-field" < <(openssl req -inform DER -in "$T/ex.csr" -noout -text) ||
	fail "the explicit CSR does not carry explicit parameters"

out=$(ctl ca-authd ca issue --csr "$T/ex.csr" --profile stb-media --device stb-ex \
	--cert-id c-ex --out "$T/ex.pem" 2>&1 || true)
[[ $out == *BAD_REQUEST*explicit* ]] && [ "$(issued c-ex)" = 0 ] &&
	pass "explicit-parameter CSR refused with BAD_REQUEST, nothing issued" ||
	fail "explicit CSR: $out; issued $(issued c-ex)"
if [ -s "$T/ex.pem" ]; then # what such a certificate is worth
	log "openssl verify of it: $(openssl verify -CAfile "$CADIR/root.pem" \
		-untrusted "$CADIR/chain-issuing.pem" "$T/ex.pem" 2>&1 | tr '\n' ' ')"
fi

out=$(ctl ca-authd ca issue --csr "$T/named.csr" --profile stb-media --device stb-named \
	--cert-id c-named --out "$T/named.pem" 2>&1) && [ "$(issued c-named)" = 1 ] &&
	pass "the named-curve CSR is issued" || fail "named CSR: $out"
openssl verify -CAfile "$CADIR/root.pem" -untrusted "$CADIR/chain-issuing.pem" \
	"$T/named.pem" >"$T/verify.out" 2>&1 &&
	pass "openssl verify accepts the named-curve certificate" ||
	fail "verify: $(cat "$T/verify.out")"
ctl ca-authd ping >/dev/null && pass "ca-authd still answers" || fail "ca-authd ping"
finish
