#!/usr/bin/env bash
# kmt_pki.sh DIR: the throwaway PKI flow C's end-to-end tests share (a
# ctest fixture, made once per run): every daemon's certificate from
# pki-bootstrap.sh, and the roles of flow C's peers: app-platform,
# sms-gw (smsbox's client certificate, cert and key in one PEM too),
# manufacturer and portal.
set -euo pipefail
dir=${1:?usage: kmt_pki.sh DIR}
rm -rf "$dir"
"$STB_SRC/scripts/pki-bootstrap.sh" "$dir" >/dev/null
for r in app-platform sms-gw manufacturer portal; do
	"$STB_SRC/scripts/pki-bootstrap.sh" --reissue "$dir" "$r" >/dev/null
done
openssl rand -hex 32 > "$dir/app-platform.kek"
(umask 077 && cat "$dir/sms-gw.crt" "$dir/sms-gw.key" > "$dir/sms-gw.pem")
chmod 0600 "$dir/app-platform.kek"
echo "kmt_pki: $dir"
