#!/usr/bin/env bash
# pki-bootstrap.sh [options] [--force] DIR: a root CA, an issuing CA, a service
# certificate with its role URI for every daemon (valid for localhost, the
# loopback addresses and its own name as a host name, as compose names it), an admin certificate and one
# key-encryption key per daemon, all ECDSA P-256.
#
#   ca.crt                 trust anchor (root)
#   ca-issuing.crt         the issuing CA
#   <name>.crt / .key      leaf + issuing CA chain / private key (0600)
#   <name>.kek             32-byte KEK, hex (0600)
#
# The CA is ca-authd when it is given (--ca-authd PATH, or $STB_BIN_ca_authd):
# `ca-authd init` makes the CA in its state dir (--ca-state DIR, default
# DIR/ca-authd-state; keys sealed under DIR/ca-authd.kek) and every service
# certificate comes from `ca-authd issue-service`, so a ca-authd running on
# that state dir is the CA of the whole deployment.  DIR/ca-authd-pki.json is
# the configuration those commands used; --ca-store JSON is its "store"
# member (e.g. {"backend": "postgresql", "dsn": "..."}, the store the CA's
# ca-authd will run on; default SQLite in the state dir).  Without ca-authd (or with
# --openssl) the openssl command line makes the same files, with the CA keys
# as plain files DIR/ca-root.key and DIR/ca-issuing.key.
#
# pki-bootstrap.sh --reissue DIR NAME: a new key and certificate for NAME
# (a daemon or admin) from the existing issuing CA, e.g. to rotate it.
set -euo pipefail

usage() {
	echo "usage: $0 [--ca-authd PATH | --openssl] [--ca-state DIR] [--ca-store JSON] [--force] DIR" >&2
	echo "       $0 [--ca-authd PATH] --reissue DIR NAME" >&2
	exit 2
}
force=0 reissue= ca_authd=${STB_BIN_ca_authd:-} ca_state= ca_store=
while [ $# -gt 0 ]; do
	case "$1" in
	--force) force=1; shift ;;
	--ca-authd) [ $# -ge 2 ] || usage; ca_authd=$2; shift 2 ;;
	--openssl) ca_authd=; shift ;;
	--ca-state) [ $# -ge 2 ] || usage; ca_state=$2; shift 2 ;;
	--ca-store) [ $# -ge 2 ] || usage; ca_store=$2; shift 2 ;;
	--reissue) [ $# -eq 3 ] || usage; reissue=$3; set -- "$2"; break ;;
	-*) usage ;;
	*) break ;;
	esac
done
[ $# -eq 1 ] || usage
dir=$1
daemons="ca-authd cert-proxyd media-gw rendezvousd keymgmtd qualifyd appvetd"
if [ -n "$ca_authd" ] && [ ! -x "$ca_authd" ]; then
	echo "pki-bootstrap: $ca_authd is not an executable ca-authd" >&2
	exit 1
fi

# ca_svc NAME ROLE: a service certificate from ca-authd
ca_svc() {
	"$ca_authd" issue-service -c "$dir/ca-authd-pki.json" --name "$1" --role "$2" \
		--dns "$1" --dns localhost --ip 127.0.0.1 --ip ::1 \
		--out-cert "$dir/$1.crt" --out-key "$dir/$1.key" >/dev/null
	chmod 0644 "$dir/$1.crt"
}

if [ -n "$reissue" ] && [ -f "$dir/ca-authd-pki.json" ]; then
	[ -n "$ca_authd" ] || { echo "pki-bootstrap: $dir is ca-authd's: give --ca-authd PATH" >&2; exit 1; }
	umask 077
	ca_svc "$reissue" "$reissue"
	echo "pki-bootstrap: reissued $reissue (ca-authd)"
	exit 0
fi
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

if [ -n "$ca_authd" ] && [ -z "$reissue" ]; then
	state=${ca_state:-$dir/ca-authd-state}
	if [ $force -eq 1 ] && [ -z "$ca_state" ]; then
		rm -rf "$state"
	fi
	# a CA made under another KEK would not open with the new one
	if [ -e "$state/root.pem" ]; then
		echo "pki-bootstrap: $state already holds a CA: remove it first" >&2
		exit 1
	fi
	rm -f "$dir/ca-root.key" "$dir/ca-issuing.key" # an earlier openssl-made CA's
	for d in $daemons; do
		openssl rand -hex 32 > "$dir/$d.kek"
	done
	store_member=
	[ -z "$ca_store" ] || store_member="\"store\": $ca_store,"
	cat > "$dir/ca-authd-pki.json" <<JSON
{
  "state_dir": "$state", $store_member
  "kek_file": "$dir/ca-authd.kek",
  "http_listen": ""
}
JSON
	"$ca_authd" init -c "$dir/ca-authd-pki.json" >/dev/null
	cp "$state/root.pem" "$dir/ca.crt"
	cp "$state/chain-issuing.pem" "$dir/ca-issuing.crt"
	for d in $daemons admin; do
		ca_svc "$d" "$d"
	done
	chmod 0600 "$dir"/*.key "$dir"/*.kek
	chmod 0644 "$dir"/*.crt
	echo "pki-bootstrap: PKI written to $dir by ca-authd (CA state in $state)"
	exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
[ -n "$reissue" ] || rm -f "$dir/ca-authd-pki.json" # an earlier ca-authd-made CA's

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
subjectAltName = URI:urn:stbcred:role:$role, DNS:$name, DNS:localhost, IP:127.0.0.1, IP:::1
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
