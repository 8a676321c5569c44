#!/usr/bin/env bash
# rendezvousd, two instances on one PostgreSQL database: a CONNECT_REQ at
# instance 1 for a device whose control channel instance 2 holds is
# forwarded there (RDV_RELAY_OFFER over mutual TLS); the offer, a refusal
# and an offline target come back to the caller as on one instance, and the
# TLS-PSK link works.  Instance 2 killed: after its lease the caller gets
# the offline answer, and the device, reconnected to instance 1, is reached
# again, also from the restarted instance 2.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/rdv_lib.sh"
[ "${STB_TEST_STORE:-}" = postgresql ] || { echo "needs the PostgreSQL run (pg_server fixture)"; exit 1; }

P1=$(free_port) P2=$(free_port)
PORT[rendezvousd]=$P1
PORT[rendezvousd@2]=$P2
# conf PORT: one instance's config; a long heartbeat interval keeps the
# refusing device's channel open
conf() {
	printf '"overlay_pool": "10.79.0.0/16", "connect_timeout_ms": 700,
  "heartbeat_interval_ms": 60000, "kdf": { "scrypt_n": 1024 },
  "cluster": { "self": "127.0.0.1:%s", "lease_s": 4 }' "$1"
}
start_daemon rendezvousd "$(conf "$P1")"
start_daemon rendezvousd@2 "$(conf "$P2")"
A1=127.0.0.1:$P1 A2=127.0.0.1:$P2
rdvc() { local a=$1; shift; timeout 20 "$STB_RDV_CLIENT" "$a" "$PKI/ca.crt" "$@"; }
# device ADDR NAME ID USER PASS ENDPOINT [mode]: a device in the background
device() {
	local a=$1 n=$2
	shift 2
	"$STB_RDV_CLIENT" "$a" "$PKI/ca.crt" device "$@" >"$T/$n.out" 2>&1 &
	PID[$n]=$!
	wait_for "$T/$n.out" '^registered' || fail "$n did not register: $(cat "$T/$n.out")"
}
wait_for() {
	for _ in $(seq 1 100); do
		grepq -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}
field() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }
sessions() { sqlite3 x/rendezvousd.db "SELECT count(*) FROM sessions WHERE target_id='$1'"; }

provision dev-a dev-b dev-c dev-p dev-r dev-h1 dev-h2 || fail "provision"

# --- B held by instance 2, A asks instance 1 ---
device "$A2" b dev-b userb passwordb 127.0.0.1:6102
out=$(rdvc "$A1" connect dev-a usera passworda 127.0.0.1:6101 dev-b || true)
s=$(grep '^session' <<<"$out") || fail "no session through instance 1: $out"
sid=$(field sid "$s") code=$(field code "$s")
wait_for "$T/b.out" "^offer sid=$sid" && pass "dev-b on instance 2 gets the offer from instance 1" ||
	fail "no offer at dev-b: $(cat "$T/b.out")"
offer=$(grep "^offer sid=$sid" "$T/b.out" || true)
[ ${#code} -eq 64 ] && [ "$(field code "$offer")" = "$code" ] &&
	pass "caller and target unwrap the same code across instances" ||
	fail "codes differ: '$s' / '$offer'"
breg=$(grep '^registered' "$T/b.out")
[ "$(field endpoint "$s")" = 127.0.0.1:6102 ] && [ "$(field overlay "$s")" = "$(field overlay "$breg")" ] &&
	[ "$(field caller "$offer")" = dev-a ] && pass "the answer names dev-b's endpoint and address" ||
	fail "answer: $s / $offer"
[ "$(sessions dev-b)" = 1 ] && pass "the session is recorded once" ||
	fail "sessions: $(sessions dev-b)"
out=$(rdvc "$A1" connect dev-a usera passworda 127.0.0.1:6101 nobody || true)
grepq '^NOT_FOUND' <<<"$out" && pass "unknown target NOT_FOUND" || fail "unknown: $out"

# --- a refusal by the target reaches the caller ---
device "$A2" r dev-r userr passwordr 127.0.0.1:6105 refuse
out=$(rdvc "$A1" connect dev-a usera passworda 127.0.0.1:6101 dev-r || true)
grepq '^UNAVAILABLE target dev-r refused a heartbeat' <<<"$out" &&
	pass "dev-r's refusal on instance 2 reaches the caller on instance 1" || fail "refusal: $out"
grepq '^offer' "$T/r.out" && fail "the refusing device got an offer"

# --- held by instance 2 but offline there ---
rdvc "$A2" register dev-c userc passwordc 127.0.0.1:6103 >/dev/null || fail "dev-c register"
out=$(rdvc "$A1" connect dev-a usera passworda 127.0.0.1:6101 dev-c || true)
grepq '^UNAVAILABLE target dev-c is offline' <<<"$out" && pass "offline on instance 2: UNAVAILABLE" ||
	fail "offline target: $out"

# --- the TLS-PSK link between devices on different instances ---
EPP=127.0.0.1:$(free_port)
STB_RDV_PASSWORD=passwordp "$STB_CLIENT" -a "$A2" --ca "$PKI/ca.crt" -T 5000 \
	--enrol-file "$(enrol_file dev-p)" rdv-listen dev-p userp "$EPP" >"$T/p.out" 2>&1 &
PID[dev_p]=$!
wait_for "$T/p.out" '^listening' || fail "dev-p did not come up: $(cat "$T/p.out")"
out=$(printf 'over two instances\n' | STB_RDV_PASSWORD=passworda timeout 20 "$STB_CLIENT" -a "$A1" \
	--ca "$PKI/ca.crt" -T 5000 rdv-connect dev-a usera 127.0.0.1:6101 dev-p 2>"$T/a.err") ||
	fail "rdv-connect: $(cat "$T/a.err")"
[ "$out" = 'over two instances' ] && grepq '^link from dev-a$' "$T/p.out" &&
	pass "the PSK link works across instances" || fail "link: '$out' $(cat "$T/p.out")"

# --- through HAProxy (mode tcp, TLS passed through), round robin ---
HP=$(free_port)
cat >"$T/haproxy.cfg" <<EOF
global
  maxconn 256
defaults
  mode tcp
  timeout connect 2s
  timeout client 120s
  timeout server 120s
frontend rdv
  bind 127.0.0.1:$HP
  default_backend rdvs
backend rdvs
  balance roundrobin
  server r1 $A1
  server r2 $A2
EOF
haproxy -f "$T/haproxy.cfg" -db >"$T/haproxy.log" 2>&1 &
PID[haproxy]=$!
for _ in $(seq 1 100); do
	(exec 5<>"/dev/tcp/127.0.0.1/$HP") 2>/dev/null && break
	sleep 0.05
done
LB=127.0.0.1:$HP
device "$LB" h1 dev-h1 userh1 passwordh1 127.0.0.1:6121
device "$LB" h2 dev-h2 userh2 passwordh2 127.0.0.1:6122
n1=$(ctl rendezvousd rdv online | grep -c '^dev-h' || true)
n2=$(ctl rendezvousd@2 rdv online | grep -c '^dev-h' || true)
[ "$n1" = 1 ] && [ "$n2" = 1 ] && pass "HAProxy spread the control channels over both instances" ||
	fail "control channels: $n1 on instance 1, $n2 on instance 2"
got=0
for _ in 1 2; do # the caller's connection lands on each instance in turn
	out=$(rdvc "$LB" connect dev-a usera passworda 127.0.0.1:6101 dev-h1 dev-h2 || true)
	while read -r s; do
		t=$(field target "$s")
		wait_for "$T/${t#dev-}.out" "^offer sid=$(field sid "$s") caller=dev-a" && got=$((got + 1))
	done < <(grep '^session' <<<"$out")
done
[ "$got" = 4 ] && pass "sessions through HAProxy reach devices on both instances" ||
	fail "through HAProxy: $got of 4 offers arrived: $out"

# --- audit: the caller's instance records what one instance would ---
audit=$(ctl rendezvousd -j audit export)
for ev in session_granted session_denied; do
	grepq "\"event\":\"$ev\".*dev-[br]" <<<"$audit" && pass "audit has $ev" || fail "audit lacks $ev"
done
[ -n "$code" ] && grepq -i "$code" - "$T"/rendezvousd*.log <<<"$audit" &&
	fail "a session code reached a log"

# --- instance 2 dies: after its lease, offline; dev-b moves to instance 1 ---
stop_daemon rendezvousd@2 KILL
wait_for "$T/b.out" '^closed' || fail "dev-b not cut by the kill"
out=$(rdvc "$A1" connect dev-a usera passworda 127.0.0.1:6101 dev-b || true)
grepq '^UNAVAILABLE target dev-b is offline' <<<"$out" &&
	pass "instance 2 dead, within its lease: offline" || fail "dead instance, in lease: $out"
# forwards tried at the dead instance, in instance 1's log
tried() { grep -c "dev-a -> dev-b: its instance $A2" "$T/rendezvousd.log" || true; }
n=$(tried)
[ "$n" -ge 1 ] || log "the lease ran out before the first request (a slow run)"
sleep 4.5 # cluster.lease_s
[ "$(sqlite3 x/rendezvousd.db "SELECT count(*) FROM rdv_instances WHERE addr='$A2' AND lease_until >= $(date +%s)")" = 0 ] ||
	fail "instance 2's lease still live"
out=$(rdvc "$A1" connect dev-a usera passworda 127.0.0.1:6101 dev-b || true)
grepq '^UNAVAILABLE target dev-b is offline' <<<"$out" &&
	pass "after the lease: the offline answer, not a hang" || fail "after the lease: $out"
[ "$(tried)" = "$n" ] && pass "after the lease the dead instance is not tried" ||
	fail "instance 1 still forwards to the dead instance"
kill "${PID[b]}" 2>/dev/null || true
device "$A1" b2 dev-b userb passwordb 127.0.0.1:6112
out=$(rdvc "$A1" connect dev-a usera passworda 127.0.0.1:6101 dev-b || true)
grepq '^session' <<<"$out" && pass "dev-b reconnected to instance 1 is reachable" ||
	fail "moved device: $out"
start_daemon rendezvousd@2 || fail "instance 2 restart"
out=$(rdvc "$A2" connect dev-a usera passworda 127.0.0.1:6101 dev-b || true)
s=$(grep '^session' <<<"$out") && wait_for "$T/b2.out" "^offer sid=$(field sid "$s")" &&
	pass "the restarted instance 2 forwards to dev-b's new place" || fail "from instance 2: $out"

# --- a clean stop gives the lease up at once ---
stop_daemon rendezvousd
[ "$RC" -eq 0 ] || fail "instance 1 exit status $RC"
[ "$(sqlite3 x/rendezvousd.db "SELECT lease_until FROM rdv_instances WHERE addr='$A1'")" = 0 ] &&
	pass "a clean stop gives the lease up" || fail "lease after stop: $(sqlite3 x/rendezvousd.db "SELECT * FROM rdv_instances")"
out=$(rdvc "$A2" connect dev-a usera passworda 127.0.0.1:6101 dev-b || true)
grepq '^UNAVAILABLE target dev-b is offline' <<<"$out" && pass "then its devices are offline" ||
	fail "after a clean stop: $out"
stop_daemon rendezvousd@2
[ "$RC" -eq 0 ] || fail "instance 2 exit status $RC"
finish
