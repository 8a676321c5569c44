#!/usr/bin/env bash
# Delivery under faults.  A burst of key syncs from 8 terminals
# (stb-bench keysync, which records every sync answered OK and retries the
# ones whose connection broke) while keymgmtd is killed with SIGKILL and
# restarted, and then the app platform crashes right after storing a push
# (before its ack) and is restarted while syncs go on.  In the end every
# sync acknowledged to a terminal has exactly one key at the platform,
# under the push_id the terminal got, nothing acknowledged is lost, no key
# is stored twice, and keymgmtd has nothing left pending.  Keys travel in
# KEY_PUSH_BATCHes: a batch stored but not acknowledged comes again, maybe
# grouped otherwise, and its keys are still stored once.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/kmt_lib.sh"

N=600
kmt_pki
echo accept > "$T/control"
start_platform ap "\"control_file\": \"$T/control\""
start_km

"$STB_BENCH" keysync -a "127.0.0.1:${PORT[keymgmtd]}" --ca "$PKI/ca.crt" \
	--admin-cert "$PKI/admin.crt" --admin-key "$PKI/admin.key" --app app.tv \
	-c 8 -n $N --retry-s 90 --acks "$T/acks" >"$T/bench.log" 2>&1 &
PID[bench]=$!
touch "$T/acks"
acks() { wc -l < "$T/acks"; }
# wait_acks N: until N syncs are acknowledged (or the burst ended)
wait_acks() {
	for _ in $(seq 1 1200); do
		[ "$(acks)" -lt "$1" ] || return 0
		kill -0 "${PID[bench]}" 2>/dev/null || return 0
		sleep 0.025
	done
}
for _ in $(seq 1 1200); do
	grepq "prepared; syncing" "$T/bench.log" && break
	kill -0 "${PID[bench]}" 2>/dev/null || break
	sleep 0.05
done

wait_acks 60
stop_daemon keymgmtd KILL
at_kill=$(acks)
log "keymgmtd killed after $at_kill acknowledged syncs"
start_km
[ "$at_kill" -lt $N ] && pass "keymgmtd SIGKILLed in the middle of the burst ($at_kill of $N)" ||
	fail "the burst was over before the kill"

wait_acks $((at_kill + 120))
echo crash-stored > "$T/control"
rc=0
wait "${PID[ap]}" || rc=$?
unset "PID[ap]"
at_crash=$(acks)
log "platform crashed after storing a push ($at_crash acknowledged syncs)"
[ "$rc" = 70 ] && pass "the platform crashed between storing a push and acknowledging it" ||
	fail "platform exit status $rc"
echo accept > "$T/control"
wait_acks $((at_crash + 50))
start_platform ap

rc=0
wait "${PID[bench]}" || rc=$?
unset "PID[bench]"
tail -n 3 "$T/bench.log" | sed 's/^/# /'
n=$(acks)
[ "$rc" = 0 ] && [ "$n" = $N ] && pass "all $N syncs were acknowledged in the end (retried across the restart)" ||
	fail "burst: exit $rc, $n of $N acknowledged"

# every acknowledged sync: one key at the platform, the push_id the terminal got
[ "$(wait_platform ap 1 "$n")" -ge "$n" ] || true
awk '{print $2, $5}' "$T/acks" | sort -u > "$T/acked"
platform_sql ap "SELECT key_id, push_id FROM keys" | tr '|' ' ' | sort > "$T/stored"
missing=$(comm -23 "$T/acked" "$T/stored" | wc -l)
[ "$missing" = 0 ] && pass "every acknowledged sync has its key at the platform under its push_id" ||
	fail "$missing acknowledged sync(s) missing at the platform: $(comm -23 "$T/acked" "$T/stored" | head -3)"
dups=$(platform_sql ap "SELECT count(*) FROM (SELECT key_id FROM keys GROUP BY key_id HAVING count(*) > 1)")
[ "$dups" = 0 ] && pass "no key stored twice" || fail "$dups key(s) stored more than once"
[ "$(awk '{print $1}' "$T/acked" | sort | uniq -d | wc -l)" = 0 ] &&
	pass "each key acknowledged under one push_id" || fail "a key acknowledged under two push_ids"
multi=$(platform_sql ap "SELECT count(*) FROM batches WHERE count > 1")
loose=$(platform_sql ap "SELECT count(*) FROM keys WHERE batch_id IS NULL")
[ "$multi" -gt 0 ] && [ "$loose" = 0 ] &&
	pass "the keys came in KEY_PUSH_BATCHes ($multi of several keys), each stored once" ||
	fail "batches: $multi of several keys, $loose keys outside a batch"
extra=$(comm -13 "$T/acked" "$T/stored" | wc -l)
[ "$extra" = 0 ] && pass "the platform holds nothing that was not acknowledged" ||
	fail "$extra key(s) at the platform that no terminal saw acknowledged"
for _ in $(seq 1 100); do
	p=$(ctl keymgmtd --json keys bindings --state pending)
	grepq '"key_id"' <<<"$p" || break
	sleep 0.1
done
grepq '"key_id"' <<<"$p" && fail "keymgmtd still has pending pushes" ||
	pass "keymgmtd has no push left pending"
f=$(ctl keymgmtd --json keys bindings --state failed)
grepq '"key_id"' <<<"$f" && fail "failed pushes: $(tr -d '\n' <<<"$f" | head -c 700)" ||
	pass "no push failed"

finish
