#!/usr/bin/env bash
# The peer channel (flow B, step 3): two devices register with rendezvousd
# through libstbclient (stb-client rdv-listen / rdv-connect), link over TLS
# 1.3 with the session code as external PSK and exchange data both ways.
# The target takes only sessions the server offered it, once and before they
# expire; a third party replaying, guessing or inventing a session fails; a
# broken link comes back with a new session and a new code.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/rdv_lib.sh"

# short heartbeats: the library must answer them while it waits in accept
# and recv, or the server cuts the device
start_daemon rendezvousd '"overlay_pool": "10.78.0.0/16", "connect_timeout_ms": 700,
  "session_ttl_s": 3, "heartbeat_interval_ms": 300, "heartbeat_miss_max": 2,
  "kdf": { "scrypt_n": 1024 }'
ADDR=127.0.0.1:${PORT[rendezvousd]}
PB=$(free_port)
EPB=127.0.0.1:$PB
sc() { "$STB_CLIENT" -a "$ADDR" --ca "$PKI/ca.crt" -T 5000 "$@"; }
pc() { "$STB_PEER_CLIENT" "$ADDR" "$PKI/ca.crt" "$@"; }

wait_for() {
	for _ in $(seq 1 100); do
		grepq -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}
field() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }
# listen_b OUT: dev-b's echo listener in the background
listen_b() {
	STB_RDV_PASSWORD=passwordb "$STB_CLIENT" -a "$ADDR" --ca "$PKI/ca.crt" -T 5000 \
		--enrol-file "$(enrol_file dev-b)" rdv-listen dev-b userb "$EPB" >"$1" 2>&1 &
	PID[dev_b]=$!
	wait_for "$1" '^listening' || fail "dev-b did not come up: $(cat "$1")"
}

provision dev-a dev-b dev-c || fail "provision"

# --- registration through the library ---
out=$(STB_RDV_PASSWORD=passwordx sc rdv-register dev-x userx 127.0.0.1:5000 2>&1 || true)
grepq 'FORBIDDEN' <<<"$out" && pass "unprovisioned device refused" || fail "unprovisioned: $out"
out=$(STB_RDV_PASSWORD=passwordc sc rdv-register dev-c userc 127.0.0.1:5003 2>&1 || true)
grepq 'UNAUTHENTICATED.*enrol' <<<"$out" && pass "first rdv-register without the code refused" ||
	fail "no enrolment code: $out"
out=$(STB_RDV_PASSWORD=passwordc STB_RDV_ENROL_CODE=$(cat "$(enrol_file dev-c)") \
	sc rdv-register dev-c userc 127.0.0.1:5003 2>&1) &&
	grepq '^registered dev-c overlay=10\.78\.' <<<"$out" && pass "rdv-register" ||
	fail "rdv-register: $out"
out=$(STB_RDV_PASSWORD=wrongpassword sc rdv-register dev-c userc 127.0.0.1:5003 2>&1 || true)
grepq 'UNAUTHENTICATED' <<<"$out" && pass "wrong password refused" || fail "password: $out"

# --- two devices, data both ways over the PSK link ---
listen_b "$T/b.out"
out=$(printf 'hello\nsecond line\n' | STB_RDV_PASSWORD=passworda \
	sc --enrol-file "$(enrol_file dev-a)" rdv-connect dev-a usera 127.0.0.1:5001 dev-b 2>"$T/a.err") || fail "rdv-connect: $(cat "$T/a.err")"
[ "$out" = $'hello\nsecond line' ] && pass "the caller gets its lines echoed" ||
	fail "echo: '$out' $(cat "$T/a.err")"
grepq '^got hello$' "$T/b.out" && grepq '^got second line$' "$T/b.out" &&
	grepq '^link from dev-a$' "$T/b.out" && pass "the target received them from dev-a" ||
	fail "target: $(cat "$T/b.out")"

# --- unknown and offline targets ---
out=$(echo x | STB_RDV_PASSWORD=passworda sc rdv-connect dev-a usera 127.0.0.1:5001 nobody 2>&1 || true)
grepq 'NOT_FOUND' <<<"$out" && pass "unknown target NOT_FOUND" || fail "unknown target: $out"
kill -STOP "${PID[dev_b]}"
out=$(echo x | STB_RDV_PASSWORD=passworda sc rdv-connect dev-a usera 127.0.0.1:5001 dev-b 2>&1 || true)
kill -CONT "${PID[dev_b]}"
# the CONNECT_REQ heartbeat times out, or the server's own heartbeats cut
# the silent channel first: UNAVAILABLE either way
grepq 'UNAVAILABLE' <<<"$out" && pass "target alive but not answering: UNAVAILABLE" ||
	fail "stopped target: $out"
sleep 1 # more than heartbeat_interval * heartbeat_miss_max while the listener waits
if grepq 'control channel' "$T/b.out" || ! kill -0 "${PID[dev_b]}" 2>/dev/null; then
	# SIGSTOP may legitimately have cost dev-b its channel; bring it back
	kill -KILL "${PID[dev_b]}" 2>/dev/null || true
	wait "${PID[dev_b]}" 2>/dev/null || true
	listen_b "$T/b.out"
fi
sleep 1
ctl rendezvousd rdv online | grepq '^dev-b ' && ! grepq 'control channel' "$T/b.out" &&
	pass "a listener answers heartbeats while it waits" ||
	fail "dev-b lost its channel: $(cat "$T/b.out")"

# --- sessions: used once, only when offered, only before expiry ---
s=$(pc session dev-a usera passworda 127.0.0.1:5001 dev-b) || fail "session: $s"
sid=$(field sid "$s") code=$(field code "$s")
[ "$(field endpoint "$s")" = "$EPB" ] || fail "session endpoint: $s"
out=$("$STB_PEER_CLIENT" psk "$EPB" "$sid" "$code" first || true)
[ "$(head -n 1 <<<"$out")" = "echo first" ] && pass "the session's code opens a link" ||
	fail "first use: $out"
grepq '^kex psk_dhe_ke group=[a-zA-Z0-9]' <<<"$out" && pass "the link ran (EC)DHE: $(tail -n 1 <<<"$out")" ||
	fail "no (EC)DHE group: $out"
out=$("$STB_PEER_CLIENT" psk "$EPB" "$sid" "$code" again || true)
grepq '^UNAUTHENTICATED' <<<"$out" && wait_for "$T/b.out" '^refused REPLAY' &&
	pass "a replayed session id is refused (REPLAY)" || fail "replay: $out / $(cat "$T/b.out")"

s=$(pc session dev-a usera passworda 127.0.0.1:5001 dev-b) || fail "session: $s"
sid=$(field sid "$s") code=$(field code "$s")
guess=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
out=$("$STB_PEER_CLIENT" psk "$EPB" "$sid" "$guess" guessed || true)
grepq '^UNAUTHENTICATED' <<<"$out" && wait_for "$T/b.out" '^refused UNAUTHENTICATED.*handshake' &&
	pass "a guessed code fails the handshake" || fail "wrong code: $out / $(cat "$T/b.out")"
out=$("$STB_PEER_CLIENT" psk "$EPB" "$sid" "$code" after-guess || true)
grepq '^UNAUTHENTICATED' <<<"$out" && pass "a session tried with a wrong code is spent" ||
	fail "session usable after a wrong code: $out"

rsid=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
out=$("$STB_PEER_CLIENT" psk "$EPB" "$rsid" "$code" invented || true)
grepq '^UNAUTHENTICATED' <<<"$out" && wait_for "$T/b.out" '^refused UNAUTHENTICATED.*never offered' &&
	pass "a session id never offered is refused" || fail "unknown sid: $out"

s=$(pc session dev-a usera passworda 127.0.0.1:5001 dev-b) || fail "session: $s"
sleep 4 # session_ttl_s is 3
out=$("$STB_PEER_CLIENT" psk "$EPB" "$(field sid "$s")" "$(field code "$s")" late || true)
grepq '^UNAUTHENTICATED' <<<"$out" && wait_for "$T/b.out" '^refused EXPIRED' &&
	pass "an expired session is refused (EXPIRED)" || fail "expired: $out"
grepq -E '^got (again|guessed|after-guess|invented|late)$' "$T/b.out" &&
	fail "a refused session got data through"

# --- a broken link is re-established with a new session and code ---
pc relink dev-a usera passworda 127.0.0.1:5001 dev-b 2 >"$T/relink.out" 2>&1 &
PID[relink]=$!
wait_for "$T/relink.out" '^echo n=1' || fail "first link: $(cat "$T/relink.out")"
kill -KILL "${PID[dev_b]}"
wait "${PID[dev_b]}" 2>/dev/null || true
wait_for "$T/relink.out" '^broken' && pass "the caller notices the broken link" ||
	fail "no break seen: $(cat "$T/relink.out")"
listen_b "$T/b2.out"
rc=0
wait "${PID[relink]}" || rc=$?
unset 'PID[relink]'
fp1=$(sed -n 's/^link n=1 fp=//p' "$T/relink.out")
fp2=$(sed -n 's/^link n=2 fp=//p' "$T/relink.out")
[ $rc -eq 0 ] && grepq '^echo n=2' "$T/relink.out" && pass "the link is re-established" ||
	fail "relink: $(cat "$T/relink.out")"
[ -n "$fp1" ] && [ -n "$fp2" ] && [ "$fp1" != "$fp2" ] && pass "the new link has a new code" ||
	fail "codes: '$fp1' '$fp2'"

# --- nothing secret in the logs ---
grepq -i 'password[a-c]' "$T/rendezvousd.log" && fail "a password reached the log"
for c in "$code" "$guess"; do
	grepq "$c" "$T/rendezvousd.log" "$T/b.out" "$T/b2.out" && fail "a code reached a log"
done

stop_daemon rendezvousd
[ "$RC" -eq 0 ] && pass "clean stop" || fail "exit status $RC"
finish
