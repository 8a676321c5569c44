#!/usr/bin/env bash
# cluster.sh: flow A's daemons as several instances over one PostgreSQL,
# behind one HAProxy, on loopback (issue 14).  In DIR:
#
#   one PostgreSQL server (tests/integration/pg_lib.sh's, or the pg_server
#     fixture's when STB_PG_ENV names a running one), one database per daemon
#   the PKI (scripts/pki-bootstrap.sh, ca-authd as its CA)
#   2 instances (CLUSTER_N) each of ca-authd, cert-proxyd, media-gw and
#     rendezvousd, every instance of a daemon on that daemon's database and
#     state (the CA's files, the KEK) copied from one source, on ports of its own
#   one HAProxy: mode tcp (TLS passed through to the instances), balance
#     roundrobin, health checks on each instance's /readyz, one frontend per
#     daemon; the daemons reach their peers (cert-proxyd and media-gw ->
#     ca-authd) through these frontends; a stats page (CSV) for `status`
#
# Subcommands:
#   up DIR                 brings it all up (DIR must not hold a cluster)
#   down DIR               stops every process it started, drops the databases
#                          (or stops its own PostgreSQL), keeps DIR's logs
#   status DIR [--json]    each instance: pid, alive, ports, HAProxy's view
#   env DIR                the frontends' and instances' addresses as shell
#                          assignments (eval "$(cluster.sh env DIR)")
#   kill DIR NAME I [SIG]  signals instance I of daemon NAME (default KILL)
#   start DIR NAME I       starts instance I of NAME again (its old config)
#
# With CLUSTER_WATCH=PID, `up` leaves a watcher that brings the cluster down
# once PID has gone (a test killed by its timeout leaves nothing behind).
# Binaries: $STB_BIN_<daemon> (as ctest sets them) or BUILD/<daemon> with
# BUILD=${STB_BUILD:-build}.  Extra JSON members for one daemon's config:
# $CLUSTER_JSON_<daemon> (dashes as _), e.g. CLUSTER_JSON_cert_proxyd.
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
DAEMONS="ca-authd cert-proxyd media-gw rendezvousd"
N=${CLUSTER_N:-2}

usage() {
	sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
	exit "${1:-2}"
}

# shellcheck source=../tests/integration/pg_lib.sh
. "$SRC/tests/integration/pg_lib.sh"

bin() {
	local v="STB_BIN_${1//-/_}"
	if [ -n "${!v:-}" ]; then echo "${!v}"; else echo "${STB_BUILD:-$SRC/build}/$1"; fi
}
short() { case $1 in ca-authd) echo CA_AUTHD ;; cert-proxyd) echo CERT_PROXYD ;;
	media-gw) echo MEDIA_GW ;; rendezvousd) echo RENDEZVOUSD ;; esac; }

# wait_port HOST:PORT PID: until it accepts (10 s) while PID lives
wait_port() {
	local host=${1%:*} port=${1##*:}
	for _ in $(seq 1 200); do
		(exec 3<>"/dev/tcp/$host/$port") 2>/dev/null && return 0
		[ -z "${2:-}" ] || kill -0 "$2" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

# load DIR: the layout `up` wrote
load() {
	D=$(cd "$1" 2>/dev/null && pwd) || { echo "cluster.sh: no directory $1" >&2; exit 1; }
	[ -f "$D/cluster.env" ] || { echo "cluster.sh: $D holds no cluster" >&2; exit 1; }
	# shellcheck disable=SC1091
	. "$D/cluster.env"
	export STB_PG_ENV=$CLUSTER_PG_ENV
}

# instance_start NAME I: runs it in the background, pid in run/NAME-I.pid
instance_start() {
	local n=$1 i=$2 pid
	"$(bin "$n")" -c "$D/conf/$n-$i.json" >>"$D/log/$n-$i.log" 2>&1 &
	pid=$!
	echo "$pid" >"$D/run/$n-$i.pid"
	local v
	v="$(short "$n")_$i"
	wait_port "${!v}" "$pid" || {
		echo "cluster.sh: $n-$i did not start:" >&2
		tail -n 15 "$D/log/$n-$i.log" >&2
		return 1
	}
}

instance_pid() { cat "$D/run/$1-$2.pid" 2>/dev/null || true; }
instance_alive() {
	local p
	p=$(instance_pid "$1" "$2")
	[ -n "$p" ] && kill -0 "$p" 2>/dev/null
}

write_conf() { # NAME I EXTRA
	local n=$1 i=$2 extra=$3 a h db
	a="$(short "$n")_$i"
	h="$(short "$n")_${i}_HTTP"
	db="$(short "$n")_DB"
	cat >"$D/conf/$n-$i.json" <<JSON
{
  "listen": "${!a}",
  "http_listen": "${!h}",
  "state_dir": "$D/state/$n-$i",
  "store": { "backend": "postgresql", "dsn": "$(pg_dsn "${!db}")" },
  "kek_file": "$D/pki/$n.kek",
  "tls": { "cert": "$D/pki/$n.crt", "key": "$D/pki/$n.key", "ca": "$D/pki/ca.crt" }${extra:+,
  $extra}
}
JSON
}

write_haproxy() {
	local n s i a h
	{
		cat <<CFG
global
  maxconn 8192
  pidfile $D/run/haproxy.pid
defaults
  mode tcp
  timeout connect 2s
  timeout client 1h
  timeout server 1h
  timeout check 1s
  retries 2
  option redispatch
listen stats
  mode http
  bind ${CLUSTER_STATS}
  stats enable
  stats uri /stats
CFG
		for n in $DAEMONS; do
			s=$(short "$n")
			a="${s}"
			cat <<CFG
frontend ${n}
  bind ${!a}
  default_backend ${n}
backend ${n}
  balance roundrobin
  option httpchk GET /readyz
  http-check expect status 200
  default-server inter 300ms fall 2 rise 1 on-marked-down shutdown-sessions
CFG
			for i in $(seq 1 "$N"); do
				a="${s}_$i"
				h="${s}_${i}_HTTP"
				echo "  server $n-$i ${!a} check port ${!h##*:}"
			done
		done
	} >"$D/conf/haproxy.cfg"
}

cmd_up() {
	local n i s db owned=0 pfx extra ie v
	mkdir -p "$1"
	D=$(cd "$1" && pwd)
	[ ! -f "$D/cluster.env" ] || { echo "cluster.sh: $D already holds a cluster" >&2; exit 1; }
	command -v haproxy >/dev/null || { echo "cluster.sh: needs haproxy" >&2; exit 1; }
	for n in $DAEMONS; do [ -x "$(bin "$n")" ] || { echo "cluster.sh: no $(bin "$n")" >&2; exit 1; }; done
	mkdir -p "$D/conf" "$D/log" "$D/run" "$D/state"
	# PostgreSQL: the fixture's server, or our own
	if [ -n "${STB_PG_ENV:-}" ] && [ -f "$STB_PG_ENV" ]; then
		CLUSTER_PG_ENV=$STB_PG_ENV
	else
		CLUSTER_PG_ENV=$D/pg.env
		export STB_PG_ENV=$CLUSTER_PG_ENV
		pg_server_start
		owned=1
	fi
	# the databases' names are the directory's: clusters on one server differ
	pfx=cl_$(printf '%s' "$D" | cksum | cut -d' ' -f1)
	{
		echo "CLUSTER_DIR=$D"
		echo "CLUSTER_PG_ENV=$CLUSTER_PG_ENV"
		echo "CLUSTER_PG_OWNED=$owned"
		echo "CLUSTER_N=$N"
		echo "CLUSTER_PKI=$D/pki"
		echo "CLUSTER_STATS=127.0.0.1:$(port_reserve)"
		for n in $DAEMONS; do
			s=$(short "$n")
			echo "${s}_DB=${pfx}_${n//-/_}"
			echo "${s}=127.0.0.1:$(port_reserve)"
			for i in $(seq 1 "$N"); do
				echo "${s}_$i=127.0.0.1:$(port_reserve)"
				echo "${s}_${i}_HTTP=127.0.0.1:$(port_reserve)"
			done
		done
	} >"$D/cluster.env.tmp"
	mv "$D/cluster.env.tmp" "$D/cluster.env"
	. "$D/cluster.env"
	for n in $DAEMONS; do
		db="$(short "$n")_DB"
		pg_db_create "${!db}"
	done
	"$SRC/scripts/pki-bootstrap.sh" --ca-authd "$(bin ca-authd)" "$D/pki" >"$D/log/pki.log" 2>&1 ||
		{ cat "$D/log/pki.log" >&2; exit 1; }
	write_haproxy
	haproxy -f "$D/conf/haproxy.cfg" -db >"$D/log/haproxy.log" 2>&1 &
	echo $! >"$D/run/haproxy.pid.own"
	wait_port "$CLUSTER_STATS" "$!" || { cat "$D/log/haproxy.log" >&2; exit 1; }
	for n in $DAEMONS; do
		case $n in
		cert-proxyd) extra="\"ca\": { \"addr\": \"$CA_AUTHD\" }" ;;
		media-gw) extra="\"ca\": { \"addr\": \"$CA_AUTHD\", \"timeout_ms\": 3000 }" ;;
		*) extra= ;;
		esac
		v="CLUSTER_JSON_${n//-/_}"
		[ -z "${!v:-}" ] || extra="${extra:+$extra, }${!v}"
		for i in $(seq 1 "$N"); do
			# every instance holds the same CA material (ca-authd's state)
			if [ "$n" = ca-authd ]; then
				cp -a "$D/pki/ca-authd-state" "$D/state/$n-$i"
				rm -f "$D/state/$n-$i"/*.db "$D/state/$n-$i"/*.db-*
			fi
			ie=$extra
			if [ "$n" = rendezvousd ]; then # forwards offers to its peers (README)
				v="RENDEZVOUSD_$i"
				ie="${ie:+$ie, }\"cluster\": { \"self\": \"${!v}\" }"
			fi
			write_conf "$n" "$i" "$ie"
			# one at a time: the first one migrates the database
			instance_start "$n" "$i"
		done
	done
	if [ -n "${CLUSTER_WATCH:-}" ]; then
		(
			while kill -0 "$CLUSTER_WATCH" 2>/dev/null && [ -f "$D/cluster.env" ]; do sleep 1; done
			[ ! -f "$D/cluster.env" ] || "$0" down "$D"
		) </dev/null >>"$D/log/watch.log" 2>&1 &
		disown
	fi
	echo "cluster up in $D (eval \"\$($0 env $D)\" for its addresses)"
}

cmd_down() {
	local n i p
	load "$1"
	for n in $DAEMONS; do
		for i in $(seq 1 "$CLUSTER_N"); do
			p=$(instance_pid "$n" "$i")
			[ -n "$p" ] && kill -TERM "$p" 2>/dev/null || true
		done
	done
	p=$(cat "$D/run/haproxy.pid.own" 2>/dev/null || true)
	[ -z "$p" ] || kill -TERM "$p" 2>/dev/null || true
	for n in $DAEMONS; do
		for i in $(seq 1 "$CLUSTER_N"); do
			p=$(instance_pid "$n" "$i")
			[ -n "$p" ] || continue
			for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
			kill -KILL "$p" 2>/dev/null || true
			rm -f "$D/run/$n-$i.pid"
		done
	done
	if [ "$CLUSTER_PG_OWNED" = 1 ]; then
		pg_server_stop
	else
		for n in $DAEMONS; do
			p="$(short "$n")_DB"
			pg_db_drop "${!p}"
		done
	fi
	mv "$D/cluster.env" "$D/cluster.env.down"
}

# haproxy_state NAME-I: its status in HAProxy (UP, DOWN, ...)
haproxy_state() {
	local host=${CLUSTER_STATS%:*} port=${CLUSTER_STATS##*:}
	[ -n "${STATS_CSV+x}" ] || STATS_CSV=$({
		exec 5<>"/dev/tcp/$host/$port" &&
			printf 'GET /stats;csv HTTP/1.0\r\n\r\n' >&5 && cat <&5
	} 2>/dev/null || true)
	awk -F, -v b="${1%-*}" -v s="$1" '$1 == b && $2 == s { print $18; f = 1 } END { if (!f) print "-" }' \
		<<<"$STATS_CSV"
}

cmd_status() {
	local json=0 n i a h p alive st first=1
	[ "${2:-}" != --json ] || json=1
	load "$1"
	[ $json = 1 ] && printf '{"dir":"%s","instances":[' "$D" ||
		printf '%-14s %-8s %-6s %-21s %-21s %s\n' INSTANCE PID ALIVE LISTEN HTTP HAPROXY
	for n in $DAEMONS; do
		for i in $(seq 1 "$CLUSTER_N"); do
			a="$(short "$n")_$i"
			h="$(short "$n")_${i}_HTTP"
			p=$(instance_pid "$n" "$i")
			if instance_alive "$n" "$i"; then alive=yes; else alive=no; fi
			st=$(haproxy_state "$n-$i")
			if [ $json = 1 ]; then
				[ $first = 1 ] || printf ','
				first=0
				printf '{"daemon":"%s","instance":%d,"pid":%s,"alive":%s,"listen":"%s","http":"%s","haproxy":"%s"}' \
					"$n" "$i" "${p:-null}" "$([ $alive = yes ] && echo true || echo false)" \
					"${!a}" "${!h}" "$st"
			else
				printf '%-14s %-8s %-6s %-21s %-21s %s\n' "$n-$i" "${p:--}" "$alive" "${!a}" "${!h}" "$st"
			fi
		done
	done
	if [ $json = 1 ]; then
		printf '],"frontends":{'
		first=1
		for n in $DAEMONS; do
			a=$(short "$n")
			[ $first = 1 ] || printf ','
			first=0
			printf '"%s":"%s"' "$n" "${!a}"
		done
		printf '}}\n'
	else
		for n in $DAEMONS; do
			a=$(short "$n")
			printf 'frontend %-12s %s\n' "$n" "${!a}"
		done
	fi
}

cmd_env() {
	load "$1"
	grep -E '^(CLUSTER_(DIR|N|PKI|STATS|PG_ENV)|[A-Z_]+_[0-9]+(_HTTP)?|CA_AUTHD|CERT_PROXYD|MEDIA_GW|RENDEZVOUSD|[A-Z_]+_DB)=' \
		"$D/cluster.env"
}

cmd_kill() {
	local p
	load "$1"
	p=$(instance_pid "$2" "$3")
	[ -n "$p" ] || { echo "cluster.sh: no $2-$3" >&2; exit 1; }
	kill "-${4:-KILL}" "$p"
	for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.05; done
}

cmd_start() {
	load "$1"
	[ -f "$D/conf/$2-$3.json" ] || { echo "cluster.sh: no $2-$3" >&2; exit 1; }
	! instance_alive "$2" "$3" || { echo "cluster.sh: $2-$3 runs already" >&2; exit 1; }
	instance_start "$2" "$3"
}

case ${1:-} in
up) [ $# -eq 2 ] || usage; cmd_up "$2" ;;
down) [ $# -eq 2 ] || usage; cmd_down "$2" ;;
status) [ $# -ge 2 ] || usage; cmd_status "$2" "${3:-}" ;;
env) [ $# -eq 2 ] || usage; cmd_env "$2" ;;
kill) [ $# -ge 4 ] || usage; cmd_kill "$2" "$3" "$4" "${5:-}" ;;
start) [ $# -eq 4 ] || usage; cmd_start "$2" "$3" "$4" ;;
-h | --help | help) usage 0 ;;
*) usage ;;
esac
