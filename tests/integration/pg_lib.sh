# pg_lib.sh: a throwaway PostgreSQL server for the tests that run on the
# PostgreSQL store backend.  One server per test run (ctest fixture
# pg_server: tests/integration/pg_server.sh start|stop), one database per
# daemon per test (pg_db_create).  The server refuses to run as root: as
# root it runs as nobody (setpriv), in a temp dir only nobody may enter,
# on a free loopback port, with trust auth on loopback only.  fsync is off:
# the tests kill daemons, never this server (test_pg_reconnect, which
# stops a server, starts its own), so durability against a crash of the
# server itself has nothing to prove here, and CREATE DATABASE per test
# costs a tenth of what it does with fsync on.
#
# pg_env: the file the server's address is written to, for the tests.
. "$(dirname "${BASH_SOURCE[0]}")/port_lib.sh"
PGBIN=${STB_PGBIN:-/usr/lib/postgresql/15/bin}
pg_env() { echo "${STB_PG_ENV:?STB_PG_ENV: the env file of the pg_server fixture}"; }

# pg_as CMD...: run a server-side command as the server's user
pg_as() {
	if [ "$(id -u)" -eq 0 ]; then
		setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"
	else
		"$@"
	fi
}

pg_server_start() {
	local dir port
	dir=$(mktemp -d "${TMPDIR:-/tmp}/stbpg.XXXXXX")
	[ "$(id -u)" -ne 0 ] || chown nobody:nogroup "$dir"
	chmod 0700 "$dir"
	port=$(port_reserve) # its owner exits; the listening server keeps it from others
	pg_as "$PGBIN/initdb" -D "$dir/data" -U stbtest --auth=trust -E UTF8 --no-instructions \
		>"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; return 1; }
	pg_as "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
		-o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c full_page_writes=off -c max_connections=300 -c shared_buffers=16MB" \
		start >/dev/null || { cat "$dir/server.log" >&2; return 1; }
	printf 'STB_PG_DIR=%s\nSTB_PG_PORT=%s\n' "$dir" "$port" >"$(pg_env)"
}

pg_server_stop() {
	local f STB_PG_DIR STB_PG_PORT
	f=$(pg_env)
	[ -f "$f" ] || return 0
	# shellcheck disable=SC1090
	. "$f"
	pg_as "$PGBIN/pg_ctl" -D "$STB_PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
	rm -rf "$STB_PG_DIR" "$f" "$STB_PORT_DIR/${STB_PG_PORT:-none}"
}

# pg_dsn DB: a DSN for database DB on the fixture's server
pg_dsn() {
	# shellcheck disable=SC1090
	. "$(pg_env)"
	echo "host=127.0.0.1 port=$STB_PG_PORT user=stbtest dbname=$1"
}

pg_psql() {
	# shellcheck disable=SC1090
	. "$(pg_env)"
	psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$STB_PG_PORT" -U stbtest -d postgres "$@"
}

# pg_db_create DB / pg_db_drop DB
pg_db_create() { pg_psql -c "CREATE DATABASE $1" >/dev/null; }
pg_db_drop() { pg_psql -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" >/dev/null 2>&1 || true; }
