#!/usr/bin/env bash
# pki-bootstrap.sh [--force] DIR: a root CA, an issuing CA, a service certificate with
# its role URI for every daemon, an admin certificate and one key-encryption
# key per daemon, all ECDSA P-256.  For tests and the demo; production PKI
# comes from ca-authd once it can issue.
#
#   ca.crt                 trust anchor (root)
#   <name>.crt / .key      leaf + issuing CA chain / private key (0600)
#   <name>.kek             32-byte KEK, hex (0600)
#
# pki-bootstrap.sh --reissue DIR NAME: a new key and certificate for NAME
# (a daemon or admin) from the existing issuing CA, e.g. to rotate it.
set -euo pipefail

usage() { echo "usage: $0 [--force] DIR | $0 --reissue DIR NAME" >&2; exit 2; }
force=0 reissue=
case "${1:-}" in
--force) force=1; shift ;;
--reissue) [ $# -eq 3 ] || usage; reissue=$3; set -- "$2" ;;
esac
[ $# -eq 1 ] || usage
dir=$1
daemons="ca-authd cert-proxyd media-gw rendezvousd keymgmtd qualifyd appvetd"

if [ -n "$reissue" ] && [ ! -f "$dir/ca-issuing.key" ]; then
	echo "pki-bootstrap: $dir has no issuing CA" >&2
	exit 1
fi
if [ -z "$reissue" ] && [ -f "$dir/ca.crt" ] && [ $force -eq 0 ]; then
	echo "pki-bootstrap: $dir already holds a PKI (use --force to replace it)"
	exit 0
fi
mkdir -p "$dir"
chmod 0700 "$dir"
umask 077
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

if [ -z "$reissue" ]; then
# Root CA
newkey "$dir/ca-root.key"
cat > "$work/root.cnf" <<CNF
[req]
distinguished_name = dn
prompt = no
[dn]
CN = stbcred root CA
O = stbcred
[ext]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
CNF
openssl req -x509 -new -key "$dir/ca-root.key" -sha256 -days 3650 -config "$work/root.cnf" \
	-extensions ext -out "$dir/ca.crt"

# Issuing CA
newkey "$dir/ca-issuing.key"
cat > "$work/issuing.cnf" <<CNF
[req]
distinguished_name = dn
prompt = no
[dn]
CN = stbcred issuing CA
O = stbcred
[ext]
basicConstraints = critical, CA:true, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF
openssl req -new -key "$dir/ca-issuing.key" -config "$work/issuing.cnf" -out "$work/issuing.csr"
openssl x509 -req -in "$work/issuing.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca-root.key" \
	-CAcreateserial -sha256 -days 1825 -extfile "$work/issuing.cnf" -extensions ext \
	-out "$dir/ca-issuing.crt" 2>/dev/null
fi

# leaf NAME ROLE
leaf() {
	local name=$1 role=$2
	newkey "$dir/$name.key"
	cat > "$work/$name.cnf" <<CNF
[req]
distinguished_name = dn
prompt = no
[dn]
CN = $name
O = stbcred
[ext]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = URI:urn:stbcred:role:$role, DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF
	openssl req -new -key "$dir/$name.key" -config "$work/$name.cnf" -out "$work/$name.csr"
	openssl x509 -req -in "$work/$name.csr" -CA "$dir/ca-issuing.crt" \
		-CAkey "$dir/ca-issuing.key" -CAcreateserial -sha256 -days 825 \
		-extfile "$work/$name.cnf" -extensions ext -out "$work/$name.leaf" 2>/dev/null
	cat "$work/$name.leaf" "$dir/ca-issuing.crt" > "$dir/$name.crt.new"
	chmod 0644 "$dir/$name.crt.new"
	mv "$dir/$name.crt.new" "$dir/$name.crt"
}

if [ -n "$reissue" ]; then
	role=$reissue
	leaf "$reissue" "$role"
	rm -f "$dir"/*.srl
	echo "pki-bootstrap: reissued $reissue"
	exit 0
fi

for d in $daemons; do
	leaf "$d" "$d"
	openssl rand -hex 32 > "$dir/$d.kek"
done
leaf admin admin
chmod 0600 "$dir"/*.key "$dir"/*.kek
chmod 0644 "$dir"/*.crt
rm -f "$dir"/*.srl
echo "pki-bootstrap: PKI written to $dir"
