#!/usr/bin/env bash
# The reference app platform (tests/peers/app_platform.c) on its own, with
# kmt_push playing keymgmtd: a KEY_PUSH is stored once and acknowledged with
# its push_id (again on a repeat), the stored envelope opens with
# `openssl cms -decrypt` and the platform's key, KEY_REVOKE marks the key,
# and the modes the fault tests use behave: refuse, stall, crash before
# storing, crash after storing (the push is there after a restart and a
# redelivery is acknowledged without a second row).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/kmt_lib.sh"

kmt_pki
KEY=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff
MDN=8613800000001

# push ID [KEY_HEX [CERT_NAME [RECIP [revoke]]]]: kmt_push as keymgmtd
push() {
	local id=$1 key=${2:-$KEY} who=${3:-keymgmtd} recip=${4:-$PKI/app-platform.crt}
	"$STB_KMT_PUSH" "127.0.0.1:${PORT[ap]}" "$PKI/ca.crt" "$PKI/$who.crt" "$PKI/$who.key" \
		"$recip" "$id" "$MDN" "${KID:-key-$id}" app.tv "$key" ${5:+revoke} 2>>"$T/push.log" || true
}
rows() { platform_sql ap "SELECT count(*) FROM keys WHERE ${1:-1}"; }

echo accept > "$T/control"
start_platform ap "\"control_file\": \"$T/control\""

out=$(push 1)
[ "$out" = "ACK 1" ] && pass "KEY_PUSH acknowledged with its push_id" || fail "push 1: $out"
[ "$(rows "push_id=1 AND key_id='key-1' AND mdn='$MDN' AND app_id='app.tv'")" = 1 ] &&
	pass "the push is stored" || fail "push 1 not stored"
want=$(printf '%s' "$KEY" | xxd -r -p | sha256sum | cut -d' ' -f1)
[ "$(platform_sql ap "SELECT key_sha256 FROM keys WHERE push_id=1")" = "$want" ] &&
	pass "the key the platform opened is the key sent" || fail "key digest differs"
platform_sql ap "SELECT hex(wrapped) FROM keys WHERE push_id=1" | xxd -r -p > "$T/wrapped.der"
openssl cms -decrypt -inform DER -in "$T/wrapped.der" -inkey "$PKI/app-platform.key" \
	-recip "$PKI/app-platform.crt" -out "$T/key.bin" 2>>"$T/push.log" &&
	[ "$(xxd -p -c 256 "$T/key.bin")" = "$KEY" ] &&
	pass "openssl cms -decrypt opens the stored envelope with the platform's key" ||
	fail "openssl cms -decrypt of the envelope"
blob=$(platform_sql ap "SELECT hex(key_sealed) FROM keys WHERE push_id=1")
case $blob in *"${KEY^^}"*) fail "the key is stored in the clear" ;; *) pass "the key is sealed at rest" ;; esac

out=$(push 1)
[ "$out" = "ACK 1" ] && [ "$(rows)" = 1 ] &&
	pass "a repeated push_id is acknowledged again and stored once" || fail "repeat: $out, $(rows) rows"

out=$(KID=key-1 push 2 "$KEY" keymgmtd "$PKI/app-platform.crt" revoke)
[ "$out" = "ACK 2" ] && [ "$(platform_sql ap "SELECT count(*) FROM keys WHERE push_id=1 AND revoked_at IS NOT NULL")" = 1 ] &&
	[ "$(platform_sql ap "SELECT count(*) FROM revokes")" = 1 ] &&
	pass "KEY_REVOKE is acknowledged and withdraws the key" || fail "revoke: $out"

out=$(push 3 "$KEY" admin)
case $out in "ERR FORBIDDEN"*) pass "a push from another role is FORBIDDEN" ;; *) fail "admin push: $out" ;; esac
out=$(push 3 "$KEY" keymgmtd "$PKI/keymgmtd.crt")
case $out in "ERR BAD_REQUEST"*) pass "a key enveloped to another certificate is BAD_REQUEST" ;; *) fail "wrong recipient: $out" ;; esac

echo "refuse 10" > "$T/control"
out=$(push 3)
case $out in "ERR UNAVAILABLE"*) pass "mode refuse answers the status asked for" ;; *) fail "refuse: $out" ;; esac
echo "stall 200" > "$T/control"
out=$(push 3)
case $out in "ERR UNAVAILABLE"*) pass "mode stall holds the push, then UNAVAILABLE" ;; *) fail "stall: $out" ;; esac
[ "$(rows "push_id=3")" = 0 ] && pass "refused and stalled pushes leave no row" || fail "push 3 stored"

echo crash > "$T/control"
out=$(push 3)
stop_rc=0
wait "${PID[ap]}" || stop_rc=$?
unset "PID[ap]"
[ "$stop_rc" = 70 ] && [ "${out:0:3}" != ACK ] && pass "mode crash exits on the push, unacknowledged" ||
	fail "crash: rc $stop_rc, $out"
echo crash-stored > "$T/control"
start_platform ap
out=$(push 4)
stop_rc=0
wait "${PID[ap]}" || stop_rc=$?
unset "PID[ap]"
[ "$stop_rc" = 70 ] && [ "${out:0:3}" != ACK ] && [ "$(rows "push_id=4")" = 1 ] &&
	pass "mode crash-stored exits after the durable write, before the ack" ||
	fail "crash-stored: rc $stop_rc, $out"
echo accept > "$T/control"
start_platform ap
out=$(push 4)
[ "$out" = "ACK 4" ] && [ "$(rows "push_id=4")" = 1 ] && [ "$(rows "push_id=3")" = 0 ] &&
	pass "after a restart the redelivery is acknowledged, one row" || fail "redelivery: $out"

finish
