#!/usr/bin/env bash
# Key sync by SMS through real Kannel: the terminal's text (stb-client
# keysync --sms) goes in through the scripted SMSC (fakesmsc.py) to
# bearerbox, smsbox calls keymgmtd's HTTPS callback with the sender and
# text and its client certificate (role sms-gw), and keymgmtd's answer
# comes back as the reply SMS to the sender.  The key arrives at the
# reference platform.  A text made for another MDN (the sender's MDN is
# the network's, the terminal cannot forge it) is refused in the reply
# and binds nothing.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/kannel_lib.sh"
. "$(dirname "$0")/kmt_lib.sh"

kmt_pki
K1=$(rand_key) K2=$(rand_key)
M1=8613900000001 M2=8613900000002 M3=8613900000003
start_platform ap
start_km
printf 'k1,%s\nk2,%s\n' "$K1" "$K2" > "$T/keys.csv"
ctl keymgmtd keys import "$T/keys.csv" >/dev/null
for m in "$M1" "$M2" "$M3"; do ctl keymgmtd keys register "$m" app.tv >/dev/null; done
kannel_start "https://127.0.0.1:${HPORT[keymgmtd]}/kannel/sms?from=%p&text=%a" \
	"$PKI/sms-gw.pem" "$PKI/ca.crt"

text=$(STB_KEYSYNC_KEY=$K1 "$STB_CLIENT" --ca "$PKI/ca.crt" keysync --sms k1 "$M1")
log "SMS: $text"
case $text in "KS1 k1 "[0-9]*" "[0-9a-f]*) pass "stb-client keysync --sms prints the SMS text" ;; *) fail "text: $text" ;; esac
[ "${#text}" -le 160 ] && pass "the text fits one SMS (${#text} characters)" || fail "text too long"
reply=$(kannel_sms "$M1" 1234 "$text")
[ "$reply" = "KS1 OK app.tv" ] && pass "the reply SMS through Kannel: KS1 OK app.tv" ||
	fail "reply: '$reply'"
[ "$(wait_platform ap "key_id='k1' AND mdn='$M1' AND app_id='app.tv'" 1)" = 1 ] &&
	pass "the key synced by SMS arrived at the platform" || fail "no key at the platform"
want=$(printf '%s' "$K1" | xxd -r -p | sha256sum | cut -d' ' -f1)
[ "$(platform_sql ap "SELECT key_sha256 FROM keys WHERE key_id='k1'")" = "$want" ] &&
	pass "and opened there to the terminal's key" || fail "key digest at the platform"

# the same text again is a replay; a text made for M2 sent from M3 is refused
reply=$(kannel_sms "$M1" 1234 "$text")
[ "$reply" = "KS1 ERR REPLAY" ] && pass "the same SMS again: KS1 ERR REPLAY" || fail "replay: '$reply'"
text2=$(STB_KEYSYNC_KEY=$K2 "$STB_CLIENT" --ca "$PKI/ca.crt" keysync --sms k2 "$M2")
reply=$(kannel_sms "$M3" 1234 "$text2")
[ "$reply" = "KS1 ERR UNAUTHENTICATED" ] &&
	pass "a text made for another MDN: KS1 ERR UNAUTHENTICATED" || fail "forged sender: '$reply'"
reply=$(kannel_sms "$M2" 1234 "KS1 k2 garbage")
case $reply in "KS1 ERR BAD_REQUEST"*) pass "a malformed text: KS1 ERR BAD_REQUEST" ;; *) fail "malformed: '$reply'" ;; esac
sleep 0.3
[ "$(platform_sql ap "SELECT count(*) FROM keys")" = 1 ] && pass "the refused texts bound nothing" ||
	fail "platform rows: $(platform_sql ap "SELECT key_id FROM keys")"

# several terminals at once, each answered on its own number
t1=$(STB_KEYSYNC_KEY=$K2 "$STB_CLIENT" --ca "$PKI/ca.crt" keysync --sms k2 "$M2")
out=$(printf '%s 1234 %s\n%s 1234 %s\n' "$M2" "$t1" "$M3" "KS1 k9 1 00" | kannel_sms_many 20 | sort)
case $out in "$M2 KS1 OK app.tv"$'\n'"$M3 KS1 ERR "*) pass "two terminals at once, each reply to its sender" ;; *) fail "replies: $out" ;; esac
[ "$(wait_platform ap "key_id='k2' AND mdn='$M2'" 1)" = 1 ] && pass "the second key arrived" ||
	fail "k2 not at the platform"

kannel_stop
finish
