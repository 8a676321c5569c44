#!/bin/bash
# healthcheck.sh: compose's health checks, with no curl in the image.
#   healthcheck.sh http PORT PATH    200 from http://127.0.0.1:PORT/PATH (a daemon's /readyz)
#   healthcheck.sh https PORT PATH   the same over TLS with the admin certificate
#   healthcheck.sh tcp PORT          something listens on 127.0.0.1:PORT
set -eu
pki=${STB_PKI:-/etc/stbcred/pki}
case "$1" in
http)
	exec 3<>"/dev/tcp/127.0.0.1/$2"
	printf 'GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n' "$3" >&3
	head -n 1 <&3 | grep -q '^HTTP/1\.[01] 200'
	;;
https)
	printf 'GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n' "$3" |
		timeout 5 openssl s_client -quiet -connect "127.0.0.1:$2" -CAfile "$pki/ca.crt" \
			-cert "$pki/admin.crt" -cert_chain "$pki/admin.crt" \
			-key "$pki/admin.key" 2>/dev/null |
		head -n 1 | grep -q '^HTTP/1\.[01] 200'
	;;
tcp) exec 3<>"/dev/tcp/127.0.0.1/$2" ;;
*) echo "usage: $0 http|https|tcp PORT [PATH]" >&2; exit 2 ;;
esac
