#!/usr/bin/env bash
# The daemon-to-daemon client against a real server, in one process.
. "$(dirname "$0")/lib.sh"
pki_init
"$STB_PEER_TEST" "$PKI" || fail "peer cases"
finish
