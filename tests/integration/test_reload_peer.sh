#!/usr/bin/env bash
# SIGHUP reloads a daemon's identity towards its peers too, not only its
# listener: cert-proxyd's certificate is swapped for one without the
# cert-proxyd role, then back; after each reload a new connection to
# ca-authd uses the certificate on disk, so issuing fails, then works.
. "$(dirname "$0")/lib.sh"

pki_init
write_config ca-authd
"$STB_BIN_ca_authd" init -c "$T/ca-authd.json" >>"$T/ca-authd.log" 2>&1 || fail "ca-authd init"
start_daemon ca-authd
start_daemon cert-proxyd "\"ca\": { \"addr\": \"127.0.0.1:${PORT[ca-authd]}\" }"
S=000102030405060708090a0b0c0d0e0f
printf 'stb-r,%s,1,c-1 c-2 c-3\n' "$S" >"$T/stbs.csv"
ctl cert-proxyd cp import "$T/stbs.csv" >/dev/null || fail "import"
stb() { "$STB_CP_CLIENT" "127.0.0.1:${PORT[cert-proxyd]}" "$PKI/ca.crt" stb-r "$S" auth "$@"; }
# restart ca-authd so cert-proxyd must open a new connection to it
bounce_ca() { stop_daemon ca-authd; start_daemon ca-authd; }

out=$(stb fetch c-1 2>&1) && pass "fetch with the original identity" || fail "fetch: $out"

cp "$PKI/cert-proxyd.crt" "$T/orig.crt"
cp "$PKI/cert-proxyd.key" "$T/orig.key"
# same CA, same names, but the role of another daemon: ca-authd refuses it CA_ISSUE
"$STB_BIN_ca_authd" issue-service -c "$PKI/ca-authd-pki.json" --name cert-proxyd --role keymgmtd \
	--dns localhost --ip 127.0.0.1 --out-cert "$PKI/cert-proxyd.crt" \
	--out-key "$PKI/cert-proxyd.key" >/dev/null 2>&1 || fail "issue a keymgmtd-role certificate"
kill -HUP "${PID[cert-proxyd]}"
for _ in $(seq 1 100); do grepq "reload: TLS" "$T/cert-proxyd.log" && break; sleep 0.05; done
grepq "new connections to peers" "$T/cert-proxyd.log" && pass "SIGHUP reloaded the peer identity" ||
	fail "reload not logged: $(tail -n 3 "$T/cert-proxyd.log")"
bounce_ca
out=$(stb fetch c-2 2>&1) && fail "issued with a certificate without the role: $out" ||
	pass "after reload, ca-authd sees the new (role-less) identity: ${out##*fetch }"
n=$(sqlite3 "$T/state-ca-authd/ca-authd.db" "SELECT count(*) FROM certs WHERE cert_id='c-2'")
[ "$n" = 0 ] && pass "nothing issued for c-2" || fail "$n certificates for c-2"

cp "$T/orig.crt" "$PKI/cert-proxyd.crt"
cp "$T/orig.key" "$PKI/cert-proxyd.key"
kill -HUP "${PID[cert-proxyd]}"
sleep 0.3
bounce_ca
out=$(stb fetch c-2 2>&1) && pass "after the second reload, issuing works again" ||
	fail "fetch after restore: $out"
stop_daemon cert-proxyd
[ "$RC" = 0 ] && pass "cert-proxyd exits 0" || fail "cert-proxyd exit $RC"
finish
