#!/usr/bin/env bash
# Flow A under a LOGIN_START flood (issue 9, points 3 and 4).  ca-authd,
# cert-proxyd and media-gw as real processes; an attacker at 127.0.0.2
# (another host on loopback) pipelines GW_LOGIN_STARTs for a valid
# subscriber ID, for unknown IDs, and GW_LOGIN_FINISHes of made-up sessions,
# while the real box (stb-client login, from 127.0.0.1) logs in again and
# again.  Then: every real login succeeded; the refusals left a few
# summary rows and lines, not one each; /metrics counted them; and login
# sessions leave the table at their expiry, capped per source address.
. "$STB_SRC/tests/integration/lib.sh"

FLOOD_VALID=${FLOOD_VALID:-15000}
FLOOD_UNKNOWN=${FLOOD_UNKNOWN:-10000}
FLOOD_FINISH=${FLOOD_FINISH:-3000}
TTL=5

pki_init
write_config ca-authd
"$STB_BIN_ca_authd" init -c "$T/ca-authd.json" >>"$T/ca-authd.log" 2>&1 ||
	{ echo "ca-authd init failed"; tail "$T/ca-authd.log"; exit 1; }
start_daemon ca-authd
CA=127.0.0.1:${PORT[ca-authd]}
start_daemon cert-proxyd "\"ca\": { \"addr\": \"$CA\" }, \"scan\": { \"interval_s\": 3600 }"
CP=127.0.0.1:${PORT[cert-proxyd]}
# a small table, so that a flood that fills it shows within a bounded count
GWCONF="\"login_ttl_s\": $TTL, \"max_sessions\": 64,
  \"ca\": { \"addr\": \"$CA\", \"timeout_ms\": 5000 }"
start_daemon media-gw "$GWCONF"
GW=127.0.0.1:${PORT[media-gw]}
GWDB=$T/state-media-gw/media-gw.db
GWLOG=$T/media-gw.log

SECRET=$(openssl rand -hex 32)
echo "stb-1,$SECRET" >"$T/stbs.csv"
ctl cert-proxyd cp import "$T/stbs.csv" >/dev/null || fail "cp import"
{
	echo "stb-1,cert-1"
	for i in $(seq 1 80); do echo "sub-$i,cert-sub-$i"; done
} >"$T/subs.csv"
ctl media-gw gw import "$T/subs.csv" >/dev/null || fail "gw import"

login() {
	STB_DEVICE_SECRET=$SECRET "$STB_CLIENT" --ca "$PKI/ca.crt" -T 8000 -a "$GW" login \
		--cp "$CP" stb-1 2>&1
}
flood() { "$STB_GW_FLOOD" "$PKI/ca.crt" - - "$@"; }
rows() { sqlite3 "$GWDB" "SELECT count(*) FROM audit WHERE event != 'login_granted'"; }
log_bytes() { stat -c %s "$GWLOG"; }

out=$(login || true)
[[ $out == "login ok device=stb-1 "* ]] && pass "the real box logs in (certificate fetched)" ||
	fail "first login: $out"

# --- the flood, and the real box meanwhile ---
rows0=$(rows)
log0=$(log_bytes)
flood 127.0.0.2 "$GW" start "$FLOOD_VALID" stb-1 >"$T/flood-valid.out" 2>&1 &
fv=$!
flood 127.0.0.2 "$GW" start "$FLOOD_UNKNOWN" @unknown >"$T/flood-unknown.out" 2>&1 &
fu=$!
flood 127.0.0.2 "$GW" finish "$FLOOD_FINISH" >"$T/flood-finish.out" 2>&1 &
ff=$!
ok=0 refused=0 during=0
for i in $(seq 1 20); do
	running=0
	kill -0 $fv 2>/dev/null && running=1
	out=$(login || true)
	if [[ $out == "login ok device=stb-1 "* ]]; then ok=$((ok + 1)); else
		refused=$((refused + 1))
		log "refused: $out"
	fi
	during=$((during + running))
	[ $running = 1 ] || [ "$i" -lt 3 ] || break
done
rc=0
wait $fv || rc=1
wait $fu || rc=1
wait $ff || rc=1
log "valid-ID flood: $(cat "$T/flood-valid.out")"
log "unknown-ID flood: $(cat "$T/flood-unknown.out")"
log "finish flood: $(cat "$T/flood-finish.out")"
log "real logins: $ok ok, $refused refused, $during started during the valid-ID flood"
[ $rc = 0 ] || fail "a flood client failed"
[ $refused = 0 ] && [ $ok -ge 3 ] && [ $during -ge 1 ] &&
	pass "every real login succeeded during the flood ($ok of $ok, $during during it)" ||
	fail "real logins during the flood: $ok ok, $refused refused, $during during it"
[ "$(cat "$T/flood-valid.out")" = "sent=$FLOOD_VALID OK=$FLOOD_VALID" ] &&
	pass "STARTs for the valid ID replace each other (all answered OK)" ||
	fail "valid-ID flood: $(cat "$T/flood-valid.out")"
[ "$(cat "$T/flood-unknown.out")" = "sent=$FLOOD_UNKNOWN NOT_FOUND=$FLOOD_UNKNOWN" ] &&
	pass "unknown IDs: NOT_FOUND" || fail "unknown-ID flood: $(cat "$T/flood-unknown.out")"

# --- refusals counted in /metrics ---
metrics=$(http_get "127.0.0.1:${HPORT[media-gw]}" /metrics)
grepq "^stbcred_refusals_total{action=\"login_start\",reason=\"NOT_FOUND\"} $FLOOD_UNKNOWN\$" <<<"$metrics" &&
	grepq "^stbcred_refusals_total{action=\"login_finish\",reason=\"NOT_FOUND\"} $FLOOD_FINISH\$" <<<"$metrics" &&
	pass "/metrics counts the refusals by action and reason" ||
	fail "metrics: $(grep refusal <<<"$metrics" || true)"

# --- what the refusals left behind: a summary per source, not a row each ---
stop_daemon media-gw # flushes the summaries
rows1=$(rows)
log1=$(log_bytes)
log "audit rows +$((rows1 - rows0)) (besides the grants), log +$((log1 - log0)) bytes"
[ $((rows1 - rows0)) -le 4 ] && pass "audit: $((rows1 - rows0)) summary row(s) for $((FLOOD_UNKNOWN + FLOOD_FINISH)) refusals" ||
	fail "audit grew by $((rows1 - rows0)) rows"
[ $((log1 - log0)) -le 4096 ] && pass "log: $((log1 - log0)) bytes for the whole flood" ||
	fail "log grew by $((log1 - log0)) bytes"
sum=$(sqlite3 "$GWDB" "SELECT detail FROM audit WHERE event='refusals' AND actor='127.0.0.2'")
grepq "^refused $FLOOD_UNKNOWN login_start from 127.0.0.2 in the last [0-9]* s: $FLOOD_UNKNOWN NOT_FOUND (last: nobody-" <<<"$sum" &&
	grepq "^refused $FLOOD_FINISH login_finish from 127.0.0.2 .*: $FLOOD_FINISH NOT_FOUND" <<<"$sum" &&
	grepq "refused $FLOOD_UNKNOWN login_start from 127.0.0.2" "$GWLOG" &&
	pass "one summary row and line per source and action" || fail "summaries: $sum"

# --- sessions leave at their expiry; capped per source address ---
start_daemon media-gw "$GWCONF, \"sessions_per_source\": 48"
m3=$(flood 127.0.0.3 "$GW" start 60 'sub-*')
m4=$(flood 127.0.0.4 "$GW" start 64 'sub-*')
opened=$(date +%s)
[ "$m3" = "sent=60 OK=48 RATE_LIMITED=12" ] &&
	pass "one source address holds at most 48 sessions" || fail "per source: $m3"
[ "$m4" = "sent=64 OK=16 RATE_LIMITED=48" ] &&
	pass "another address fills the table to its 64" || fail "127.0.0.4: $m4"
out=$(login || true)
[[ $out == *RATE_LIMITED* ]] && pass "a full table (64 open) refuses a START" ||
	fail "full table: $out"
# expired at opened + TTL: the sweeper (1 s) frees them before TTL + 2 s,
# long before twice the TTL
while [ "$(date +%s)" -lt $((opened + TTL + 2)) ]; do sleep 0.2; done
out=$(login || true)
[[ $out == "login ok device=stb-1 "* ]] && pass "sessions swept at their expiry: the real box logs in" ||
	fail "after the expiry: $out"

finish
