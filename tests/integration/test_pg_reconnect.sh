# PostgreSQL store: the server goes away under a running daemon and comes
# back.  Writes meanwhile are refused UNAVAILABLE (never reported done),
# /metrics says the store is down, and once the server is back the writer
# connects again by itself and writes land.  Runs its own server (stopping
# the shared fixture's would fail the tests beside it).
STB_TEST_STORE=postgresql
. "$(dirname "$0")/lib.sh"

STB_PG_ENV=$(mktemp "${TMPDIR:-/tmp}/stbpg-env.XXXXXX")
export STB_PG_ENV
trap 'teardown; pg_server_stop' EXIT
pg_server_start
. "$STB_PG_ENV"

start_daemon media-gw "\"ca\": { \"addr\": \"127.0.0.1:$(free_port)\" }"
HTTP=127.0.0.1:${HPORT[media-gw]}
printf 'stb-1,cert-1\n' >"$T/a.csv"
printf 'stb-2,cert-2\n' >"$T/b.csv"
printf 'stb-3,cert-3\n' >"$T/c.csv"

ctl media-gw gw import "$T/a.csv" >/dev/null && pass "import with the server up" || fail "import a"
[ "$(sqlite3 x/media-gw.db "SELECT count(*) FROM subscribers")" = 1 ] &&
	pass "the row is in PostgreSQL" || fail "rows: $(sqlite3 x/media-gw.db "SELECT * FROM subscribers")"
http_get "$HTTP" /metrics | grepq '^stbcred_store_up{backend="postgresql"} 1' &&
	pass "metrics: store up" || fail "metrics up: $(http_get "$HTTP" /metrics | grep store_up)"

pg_as "$PGBIN/pg_ctl" -D "$STB_PG_DIR/data" -m immediate -w stop >/dev/null
out=$(ctl media-gw gw import "$T/b.csv" 2>&1) && fail "import with the server down: $out" ||
	{ [[ $out == *UNAVAILABLE* ]] && pass "server down: UNAVAILABLE" || fail "down: $out"; }
http_get "$HTTP" /metrics | grepq '^stbcred_store_up{backend="postgresql"} 0' &&
	pass "metrics: store down" || fail "metrics down: $(http_get "$HTTP" /metrics | grep store_up)"

pg_as "$PGBIN/pg_ctl" -D "$STB_PG_DIR/data" -l "$STB_PG_DIR/server.log" -w -t 60 \
	-o "-c listen_addresses=127.0.0.1 -p $STB_PG_PORT -k $STB_PG_DIR" start >/dev/null
ok=0
for _ in $(seq 1 40); do
	if ctl media-gw gw import "$T/c.csv" >/dev/null 2>&1; then ok=1; break; fi
	sleep 0.5
done
[ $ok = 1 ] && pass "server back: the writer connected again" || fail "no write after restart"
[ "$(sqlite3 x/media-gw.db "SELECT string_agg(device_id, ',' ORDER BY device_id) FROM subscribers")" = stb-1,stb-3 ] &&
	pass "the refused write is not there, the later one is" ||
	fail "rows: $(sqlite3 x/media-gw.db "SELECT device_id FROM subscribers")"
http_get "$HTTP" /metrics | grepq '^stbcred_store_reconnects_total [1-9]' &&
	pass "metrics: reconnects counted" || fail "reconnects: $(http_get "$HTTP" /metrics | grep reconnects)"
finish
