#!/usr/bin/env bash
# TLS session resumption in flow D: the device's first connection (the
# registration role) is a full handshake and qualifyd gives it a session
# ticket; the credentialing and provisioning roles of the same qualifyd
# resume that session instead (one key set per daemon), and qualifyd still
# knows the device from the certificate the ticket carries.  A device
# revoked after its first handshake, whose ticket is still valid, is
# refused at credentialing by the OCSP check (REVOKED) and takes no row.
# With tls.session_tickets off nothing resumes and the bootstrap still works.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/qdh_lib.sh"

# qdh_boot with the library's debug lines (which connections resumed)
boot_v() {
	local n=$1
	shift
	RC=0
	OUT=$("$STB_CLIENT" -v --ca "$PKI/ca.crt" --cert "$T/$n.pem" --key "$T/$n.key" \
		-a "127.0.0.1:$REG_PORT" bootstrap --operator-ca "$PKI/ca.crt" --out "$T/$n.cred" \
		--ocsp "$OCSP_URL" "$@" 2>&1) || RC=$?
}

qdh_ca_start
REG_PORT=$(free_port) CRED_PORT=$(free_port) PROV_PORT=$(free_port)
qdh_qd_conf qualifyd registration,credentialing,provisioning
start_daemon qualifyd
K=000102030405060708090a0b0c0d0e0f OPC=f0e0d0c0b0a090807060504030201000
for i in 1 2 3 4; do printf '00101000000020%d,%s,%s\n' "$i" $K $OPC; done >"$T/pool.csv"
ctl qualifyd qd hss import "$T/pool.csv" >/dev/null || fail "hss import"

qdh_device dev-r
ctl qualifyd qd enrol dev-r >/dev/null || fail "enrol dev-r"
boot_v dev-r
[ $RC -eq 0 ] && pass "bootstrap with resumption" || fail "bootstrap rc=$RC: $OUT"
n=$(grep -c "connected to 127.0.0.1:.* (resumed)" <<<"$OUT" || true)
[ "$n" = 2 ] && pass "credentialing and provisioning resumed the registration's session" ||
	fail "$n resumed connections: $(grep "connected to" <<<"$OUT")"
grepq "connected to 127.0.0.1:$REG_PORT with TLSv1.3\$" <<<"$OUT" &&
	pass "registration was a full handshake" || fail "registration: $(grep "connected to" <<<"$OUT")"
[ "$(qdh_cred dev-r device_id)" = dev-r ] && pass "credentials for dev-r over resumed sessions" ||
	fail "credentials name $(qdh_cred dev-r device_id)"

# a device revoked after its full handshake, while its ticket is valid:
# its session (saved to a file by the first run) resumes, and the OCSP
# check at credentialing still refuses it, taking no row
qdh_device dev-v
ctl qualifyd qd enrol dev-v >/dev/null || fail "enrol dev-v"
qdh_boot dev-v "127.0.0.1:$REG_PORT" --ocsp "$OCSP_URL" --session-file "$T/dev-v.session"
[ $RC -eq 0 ] && [ "$(stat -c %a "$T/dev-v.session" 2>/dev/null)" = 600 ] &&
	pass "first bootstrap of dev-v saved its TLS session (0600)" ||
	fail "dev-v: rc=$RC $OUT $(ls -l "$T/dev-v.session" 2>&1)"
ctl qualifyd qd enrol dev-v >/dev/null || fail "enrol dev-v again"
serial=$(openssl x509 -in "$T/dev-v.pem" -noout -serial | cut -d= -f2)
ctl ca-authd ca revoke "$serial" >/dev/null ||
	fail "revoke dev-v"
before=$(ctl qualifyd -j qd hss pool)
boot_v dev-v --session-file "$T/dev-v.session"
[ $RC -ne 0 ] && grepq "REVOKED" <<<"$OUT" && pass "revoked dev-v refused: $(tail -n 1 <<<"$OUT")" ||
	fail "revoked dev-v: rc=$RC $OUT"
grepq "connected to 127.0.0.1:$CRED_PORT .*(resumed)" <<<"$OUT" &&
	pass "its credential request came over a resumed session" ||
	fail "dev-v did not resume: $(grep "connected to" <<<"$OUT")"
[ "$(ctl qualifyd -j qd hss pool)" = "$before" ] && pass "no row taken for the revoked device" ||
	fail "pool changed: $(ctl qualifyd -j qd hss pool)"

# tickets off: full handshakes only, the bootstrap works the same
stop_daemon qualifyd
sed -i 's|"ca": "'"$PKI"'/ca.crt" }|"ca": "'"$PKI"'/ca.crt", "session_tickets": false }|' "$T/qualifyd.json"
grepq '"session_tickets": false' "$T/qualifyd.json" || fail "config: tickets not turned off"
start_daemon qualifyd
qdh_device dev-f
ctl qualifyd qd enrol dev-f >/dev/null || fail "enrol dev-f"
boot_v dev-f
[ $RC -eq 0 ] && ! grepq "(resumed)" <<<"$OUT" && pass "tickets off: three full handshakes" ||
	fail "tickets off: rc=$RC $(grep "connected to" <<<"$OUT")"

finish
