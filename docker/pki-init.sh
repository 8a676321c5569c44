#!/bin/bash
# pki-init.sh: compose's PKI job.  Into the pki volume (default
# /etc/stbcred/pki), once: the suite's PKI from ca-authd (pki-bootstrap.sh;
# ca-authd's CA state in ca-authd-state), flow C's roles (app-platform,
# sms-gw with its cert+key PEM for smsbox, manufacturer, portal) and
# keymgmtd's platforms file, and flow D's manufacturer: an openssl CA of its
# own (manufacturer-ca.crt, with the index the independent OCSP responder
# serves) and one device certificate, demo-dev-1.  Exits 0 when the volume
# already holds it all.
set -euo pipefail
pki=${1:-/etc/stbcred/pki}
share=$(dirname "$0")
ca_authd=${STB_BIN_ca_authd:-/usr/sbin/ca-authd}
if [ -f "$pki/done" ]; then
	echo "pki-init: $pki is initialised"
	exit 0
fi
umask 077
"$share/pki-bootstrap.sh" --ca-authd "$ca_authd" --force "$pki"
for r in app-platform sms-gw manufacturer portal; do
	"$share/pki-bootstrap.sh" --ca-authd "$ca_authd" --reissue "$pki" "$r"
done
openssl rand -hex 32 >"$pki/app-platform.kek"
cat "$pki/sms-gw.crt" "$pki/sms-gw.key" >"$pki/sms-gw.pem"
cat >"$pki/platforms.json" <<JSON
{"tv.app": {"address": "app-platform:7300", "ca": "$pki/ca.crt", "cert": "$pki/app-platform.crt"}}
JSON

# flow D: the manufacturer's CA and its OCSP index, and the device it made
m=$pki/manufacturer-ca
mkdir -p "$m"
newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
newkey "$m/ca.key"
openssl req -x509 -new -key "$m/ca.key" -subj "/CN=stbcred demo manufacturer CA" -days 3650 \
	-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign,digitalSignature \
	-out "$pki/manufacturer-ca.crt" 2>/dev/null
dev=demo-dev-1
newkey "$pki/$dev.key"
openssl req -new -key "$pki/$dev.key" -subj "/CN=$dev" 2>/dev/null |
	openssl x509 -req -CA "$pki/manufacturer-ca.crt" -CAkey "$m/ca.key" -days 825 \
		-set_serial "0x$(openssl rand -hex 8)" -out "$pki/$dev.crt" \
		-extfile <(printf '%s\n' "basicConstraints=CA:FALSE" \
			"keyUsage=digitalSignature,keyAgreement" \
			"authorityInfoAccess=OCSP;URI:http://172.30.215.250:8080/" \
			"subjectAltName=URI:urn:stbcred:device:$dev,URI:urn:stbcred:role:device") 2>/dev/null
# openssl ocsp -index: status, expiry, revocation, serial, file, subject
serial=$(openssl x509 -in "$pki/$dev.crt" -noout -serial | cut -d= -f2)
expiry=$(date -u -d "$(openssl x509 -in "$pki/$dev.crt" -noout -enddate | cut -d= -f2)" +%y%m%d%H%M%SZ)
printf 'V\t%s\t\t%s\tunknown\t/CN=%s\n' "$expiry" "$serial" "$dev" >"$m/index.txt"
chmod 0644 "$pki"/*.crt "$pki/platforms.json"
touch "$pki/done"
echo "pki-init: PKI, flow C's roles and flow D's manufacturer CA and device $dev in $pki"
