#!/usr/bin/env bash
# setup-deps.sh: install what stbcred needs to build, test and run, from
# Debian's packages.  Idempotent; run as root or with sudo available.
#
#   setup-deps.sh            what the build, the tests and the demos need
#   setup-deps.sh --build    only what `cmake && ninja` needs (docker/Dockerfile's build stage)
set -euo pipefail

# the build: compiler, headers and the libraries the daemons link
build_pkgs=(
	build-essential cmake ninja-build pkg-config
	libssl-dev libevent-dev libsqlite3-dev libcjson-dev libcmocka-dev
	libcbor-dev libqrencode-dev libpng-dev libzip-dev libclamav-dev
	libosmocore-dev libosmo-gsup-client-dev libpq-dev
	openssl
)
# the tests, the fuzzers, the peers of the flows and the compose check
test_pkgs=(
	clang libclang-rt-14-dev sqlite3 man-db curl prometheus
	kannel osmo-hlr postgresql
	aapt android-framework-res apksigner zipalign zbar-tools python3-cbor2 python3-cryptography
	docker.io docker-compose debootstrap
	wrk golang-cfssl
	haproxy
)
pkgs=("${build_pkgs[@]}")
[ "${1:-}" = "--build" ] || pkgs+=("${test_pkgs[@]}")
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
