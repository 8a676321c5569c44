# lib.sh: the integration harness.  Sourced by each test script; starts real
# daemon processes on free loopback ports with a throwaway PKI and state dir,
# waits until they answer, and tears everything down on exit, failed or not.
#
# Needs (from ctest): STB_BIN_<DAEMON> for each daemon (dashes as _),
# STB_CLIENT, STBCTL, STB_SRC (source tree).  With STB_TEST_STORE=postgresql
# (the tests' .pg runs) every daemon's store is a database of its own on the
# pg_server fixture's server (pg_lib.sh), dropped on exit.
set -euo pipefail

T=$(mktemp -d "${TMPDIR:-/tmp}/stbtest.XXXXXX")
PKI=$T/pki
declare -A PID PORT HPORT PGDB AUTOPORT
failures=0
. "$(dirname "${BASH_SOURCE[0]}")/port_lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/pg_lib.sh"

log() { printf '# %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*"; failures=$((failures + 1)); }
pass() { printf 'ok: %s\n' "$*"; }

teardown() {
	local rc=$?
	for n in "${!PID[@]}"; do
		kill -KILL "${PID[$n]}" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	for n in "${!PGDB[@]}"; do
		pg_db_drop "${PGDB[$n]}"
	done
	if [ $rc -ne 0 ] || [ $failures -ne 0 ]; then
		for f in "$T"/*.log; do
			[ -f "$f" ] || continue
			echo "----- $f (last 30 lines)"
			tail -n 30 "$f"
		done
	fi
	rm -rf "$T"
	port_release_mine
}
trap teardown EXIT

# grepq: grep -q that reads all its input.  Under pipefail, grep -q exiting
# at the first match can kill the writer with SIGPIPE and fail the pipeline.
grepq() { grep "$@" >/dev/null; }

# A NAME may carry an instance, "rendezvousd@2": its own config, ports,
# log and state dir; the daemon's binary, certificate, KEK and (on the
# PostgreSQL runs) database are those of the daemon, shared by its instances.
base_of() { echo "${1%%@*}"; }
bin_of() { local b; b=$(base_of "$1"); local v="STB_BIN_${b//-/_}"; echo "${!v}"; }

# free_port: a loopback port for this test alone (port_lib.sh)
free_port() { port_reserve; }

# pki_init: the test's PKI (pki-bootstrap.sh); on the PostgreSQL runs the
# CA it makes in $PKI/ca-authd-state keeps its store in the database of
# the name ca-authd-pki (store_json ca-authd-pki: a ca-authd running on
# that state dir).  Not in a subshell (store_json).
pki_init() {
	[ ! -f "$PKI/ca.crt" ] || return 0
	local opt=()
	if [ "${STB_TEST_STORE:-sqlite}" = postgresql ]; then
		store_json ca-authd-pki
		opt=(--ca-store "{\"backend\": \"postgresql\", \"dsn\": \"$(pg_dsn "${PGDB[ca-authd-pki]}")\"}")
	fi
	"$STB_SRC/scripts/pki-bootstrap.sh" "${opt[@]}" "$PKI" >/dev/null
}

# store_json NAME: sets STORE_JSON to the "store" member (and its comma)
# of daemon NAME's config on the PostgreSQL runs, its database made on
# first use; to "" on the SQLite runs.  Not in a subshell: PGDB remembers.
store_json() {
	local n
	n=$(base_of "$1")
	STORE_JSON=
	[ "${STB_TEST_STORE:-sqlite}" = postgresql ] || return 0
	if [ -z "${PGDB[$n]:-}" ]; then
		PGDB[$n]=$(basename "$T" | tr 'A-Z.' 'a-z_')_${n//-/_}
		pg_db_create "${PGDB[$n]}"
	fi
	STORE_JSON=$(printf '"store": { "backend": "postgresql", "dsn": "%s" },' "$(pg_dsn "${PGDB[$n]}")")
}

# On the PostgreSQL runs the tests' own "sqlite3 STATE_DIR/NAME.db SQL"
# checks of the state left behind read daemon NAME's database instead:
# same "|"-separated rows.  The checks are written in SQL both accept; the
# shim rewrites only what has no common spelling: hex(x) as
# upper(encode(x, 'hex')), group_concat(a, s) as string_agg(a, s).  A file
# of no daemon's (a reference peer's SQLite) is read with sqlite3 itself.
if [ "${STB_TEST_STORE:-sqlite}" = postgresql ]; then
	sqlite3() {
		local a db sql args=("$@")
		while [ $# -gt 0 ] && [ "${1#-}" != "$1" ]; do shift; done
		a=$(basename "$1" .db)
		db=${PGDB[$a]:-}
		[ -n "$db" ] || { command sqlite3 "${args[@]}"; return; }
		shift
		if [ $# -gt 0 ]; then sql=$*; else sql=$(cat); fi
		sql=$(printf '%s' "$sql" |
			sed -E "s/\bhex\(([^()]*)\)/upper(encode(\1, 'hex'))/g; s/\bgroup_concat\(/string_agg(/g")
		(
			# shellcheck disable=SC1090
			. "$(pg_env)"
			psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$STB_PG_PORT" -U stbtest -d "$db" \
				-c "$sql"
		)
	}
fi

# db_blob HEX: a blob literal in the SQL of the backend under test
db_blob() {
	if [ "${STB_TEST_STORE:-sqlite}" = postgresql ]; then
		printf "'\\x%s'::bytea" "$1"
	else
		printf "X'%s'" "$1"
	fi
}

# db_set_version DBFILE N: record the schema of daemon DBFILE's store as
# at version N (its later migrations run again at the next start)
db_set_version() {
	if [ "${STB_TEST_STORE:-sqlite}" = postgresql ]; then
		sqlite3 "$1" "DELETE FROM stb_migrations WHERE version > $2"
	else
		sqlite3 "$1" "PRAGMA user_version=$2"
	fi
}

# write_config NAME [EXTRA_JSON_MEMBERS]
write_config() {
	local n=$1 extra=${2:-} b
	b=$(base_of "$1")
	[ -n "${PORT[$n]:-}" ] || { PORT[$n]=$(free_port); AUTOPORT[$n]=1; }
	[ -n "${HPORT[$n]:-}" ] || { HPORT[$n]=$(free_port); AUTOPORT[$n]=1; }
	store_json "$n"
	cat > "$T/$n.json" <<JSON
{
  "listen": "127.0.0.1:${PORT[$n]}",
  "http_listen": "127.0.0.1:${HPORT[$n]}",
  "state_dir": "$T/state-$n", $STORE_JSON
  "kek_file": "$PKI/$b.kek",
  "tls": { "cert": "$PKI/$b.crt", "key": "$PKI/$b.key", "ca": "$PKI/ca.crt" }${extra:+,
  $extra}
}
JSON
}

# ctl NAME ARGS...: stbctl as admin against daemon NAME
ctl() {
	local n=$1
	shift
	"$STBCTL" -a "127.0.0.1:${PORT[$n]}" --ca "$PKI/ca.crt" --cert "$PKI/admin.crt" \
		--key "$PKI/admin.key" -T 5000 "$@"
}

# start_daemon NAME [EXTRA_JSON]: start and wait until it answers PING
start_daemon() {
	local n=$1
	pki_init
	[ -f "$T/$n.json" ] && [ -z "${2:-}" ] || write_config "$n" "${2:-}"
	"$(bin_of "$n")" -c "$T/$n.json" >>"$T/$n.log" 2>&1 &
	PID[$n]=$!
	for _ in $(seq 1 200); do
		if ctl "$n" ping >/dev/null 2>&1; then
			return 0
		fi
		if ! kill -0 "${PID[$n]}" 2>/dev/null; then
			# a port free_port chose was taken in between by a concurrent
			# test: choose again, once
			if [ -n "${AUTOPORT[$n]:-}" ] && [ -z "${3:-}" ] &&
				tail -n 3 "$T/$n.log" | grepq "Address already in use"; then
				local op=${PORT[$n]} oh=${HPORT[$n]}
				PORT[$n]=$(free_port)
				HPORT[$n]=$(free_port)
				sed -i "s/127\.0\.0\.1:$op\"/127.0.0.1:${PORT[$n]}\"/; s/127\.0\.0\.1:$oh\"/127.0.0.1:${HPORT[$n]}\"/" "$T/$n.json"
				echo "# $n: a chosen port was taken; now ${PORT[$n]}, ${HPORT[$n]}" >&2
				start_daemon "$n" "" retried
				return
			fi
			echo "daemon $n exited during start:" >&2
			tail -n 20 "$T/$n.log" >&2
			return 1
		fi
		sleep 0.05
	done
	echo "daemon $n did not become ready" >&2
	return 1
}

# stop_daemon NAME [SIGNAL]: signal and wait; the exit status goes to $RC
stop_daemon() {
	local n=$1 sig=${2:-TERM}
	RC=0
	kill "-$sig" "${PID[$n]}"
	wait "${PID[$n]}" || RC=$?
	unset "PID[$n]"
}

# http_get HOSTPORT PATH: the status line and body, with bash only
http_get() {
	local host=${1%:*} port=${1##*:}
	exec 5<>"/dev/tcp/$host/$port"
	printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$2" "$host" >&5
	cat <&5
	exec 5<&-
}

finish() {
	if [ $failures -ne 0 ]; then
		echo "$failures check(s) failed"
		exit 1
	fi
	echo "all checks passed"
}
