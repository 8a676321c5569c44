#!/usr/bin/env bash
# setup-deps.sh: install what stbcred needs to build, test and run, from
# Debian's packages.  Idempotent; run as root or with sudo available.
set -euo pipefail

pkgs=(
	build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev
	libssl-dev libevent-dev libsqlite3-dev libcjson-dev libcmocka-dev
	openssl sqlite3 man-db curl prometheus
	libcbor-dev libqrencode-dev libpng-dev libzip-dev libclamav-dev
	postgresql libpq-dev
	kannel osmo-hlr libosmocore-dev libosmo-gsup-client-dev
	aapt android-framework-res apksigner zipalign zbar-tools python3-cbor2 python3-cryptography
)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=
[ "$(id -u)" -eq 0 ] || sudo=sudo
echo "setup-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
