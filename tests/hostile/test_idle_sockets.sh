#!/usr/bin/env bash
# Idle sockets against media-gw's TLS listener at max_connections 1000:
# 1000 connections from 8 source addresses that never send a byte.  They
# must cost the daemon almost no memory (no TLS state before the first
# byte), and legitimate PINGs from 127.0.0.1 must all be answered meanwhile
# (a full daemon evicts the oldest connection short of its handshake).
# Then 1000 connections that each send one byte (TLS state made) and go:
# the memory comes back.  Last, one source alone is held to
# max_connections_per_source (256).
. "$STB_SRC/tests/integration/lib.sh"

n=media-gw
start_daemon "$n" '"max_connections": 1000, "workers": 2'
P=${PORT[$n]}
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/${PID[$n]}/status"; }
ping_ok() { # [COUNT]: PINGs answered, six at a time
	local i pids=()
	rm -f "$T"/ping.*
	for i in $(seq 1 "${1:-24}"); do
		{ "$STB_CLIENT" -a "127.0.0.1:$P" --ca "$PKI/ca.crt" -T 5000 ping >/dev/null 2>&1 &&
			touch "$T/ping.$i"; } &
		pids+=($!)
		if [ $((i % 6)) = 0 ]; then
			wait "${pids[@]}" || true
			pids=()
		fi
	done
	[ ${#pids[@]} = 0 ] || wait "${pids[@]}" || true
	ls "$T" | grep -c '^ping\.' || true
}
# attack MODE CONNS SECONDS FIRST SOURCES: start it, wait until connected
attack() {
	"$STB_NET_CLIENT" "$1" "$P" "${@:2}" >"$T/attack.out" &
	ATTACK=$!
	for _ in $(seq 1 200); do grepq connected "$T/attack.out" && break; sleep 0.05; done
}

ping_ok 1 >/dev/null
r0=$(rss)
attack idle 1000 15 2 8
sleep 0.5
r1=$(rss)
ok=$(ping_ok)
log "RSS idle ${r0} kB, with 1000 idle sockets ${r1} kB; PINGs answered ${ok} of 24"
[ "$ok" = 24 ] || fail "PINGs answered with 1000 idle sockets: $ok of 24"
[ $((r1 - r0)) -lt 8000 ] || fail "1000 idle sockets cost $((r1 - r0)) kB"
m=$(http_get "127.0.0.1:${HPORT[$n]}" /metrics)
echo "$m" | grepq '^stbcred_connections_evicted_total [1-9]' ||
	fail "evictions counted: $(echo "$m" | grep evicted | tr '\n' ' ')"
kill "$ATTACK" 2>/dev/null || true
wait "$ATTACK" || true
pass "1000 idle sockets: +$((r1 - r0)) kB, PINGs $ok of 24"

# with TLS state: one byte each, then gone
attack byte 1000 3 2 8
sleep 1
r2=$(rss)
wait "$ATTACK" || true
sleep 2
r3=$(rss)
log "RSS with 1000 started handshakes ${r2} kB, after they closed ${r3} kB"
if nm "$(bin_of "$n")" 2>/dev/null | grepq __asan_init; then
	log "AddressSanitizer's allocator keeps freed memory: not checked"
else
	[ $((r3 - r0)) -lt $(((r2 - r0) / 2 + 4000)) ] ||
		fail "memory not given back: idle ${r0}, peak ${r2}, after ${r3} kB"
	pass "memory back after a burst: ${r0} -> ${r2} -> ${r3} kB"
fi

# one source alone
attack idle 300 2 50 1
wait "$ATTACK" || true
grepq "^open 256 closed 44" "$T/attack.out" ||
	fail "one source held to 256: $(tail -1 "$T/attack.out")"
m=$(http_get "127.0.0.1:${HPORT[$n]}" /metrics)
echo "$m" | grepq '^stbcred_connections_refused_source_total 44$' ||
	fail "refusals per source counted: $(echo "$m" | grep refused_source | tr '\n' ' ')"
[ "$(ping_ok 6)" = 6 ] || fail "PINGs after"
pass "one source held to 256"
[ "$(wc -c <"$T/$n.log")" -lt 20000 ] || fail "log grew: $(wc -c <"$T/$n.log") bytes"
stop_daemon "$n"
[ "$RC" = 0 ] || fail "clean stop (rc $RC)"
finish
