#!/bin/bash
# postgres.sh: compose's PostgreSQL (profile pg).  On first start, a cluster
# in $PGDATA with role and database stbcred, its password made here
# ($PGDATA/stbcred.password, 0600) and scram-sha-256 for network clients;
# then the server in the foreground.
set -euo pipefail
if [ ! -s "$PGDATA/PG_VERSION" ]; then
	umask 077
	pw=/tmp/stbcred.password
	openssl rand -hex 24 >"$pw"
	initdb -D "$PGDATA" -U stbcred --pwfile="$pw" --auth-local=scram-sha-256 \
		--auth-host=scram-sha-256 >/dev/null
	mv "$pw" "$PGDATA/stbcred.password"
	echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
	echo "host all all 0.0.0.0/0 scram-sha-256" >>"$PGDATA/pg_hba.conf"
	postgres -D "$PGDATA" -c listen_addresses= -c unix_socket_directories=/tmp &
	pid=$!
	until pg_isready -h /tmp -q; do sleep 0.2; done
	PGPASSWORD=$(cat "$PGDATA/stbcred.password") createdb -h /tmp -U stbcred stbcred
	kill -INT "$pid"
	wait "$pid" || true
fi
exec postgres -D "$PGDATA" -c unix_socket_directories=/tmp
