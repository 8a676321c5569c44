# km_lib.sh: keymgmtd test helpers.  Sourced after lib.sh and kmt_lib.sh.
#   km_start [EXTRA_JSON]   keymgmtd with the platforms of $T/platforms.json
#                           and its own certificate as the import certificate
#   ctl_as WHO ARGS...      stbctl against keymgmtd with $PKI/WHO.crt
#   km_sql SQL              a query on keymgmtd's database
#   sync KEY_HEX ARGS...    stb-client keysync against keymgmtd
km_start() {
	start_daemon keymgmtd "\"platforms_file\": \"$T/platforms.json\",
  \"import\": { \"cert\": \"$PKI/keymgmtd.crt\", \"key\": \"$PKI/keymgmtd.key\" },
  \"push\": { \"backoff_min_ms\": 50, \"backoff_max_ms\": 200, \"poll_ms\": 100,
    \"timeout_ms\": 2000, \"max_tries\": ${KM_MAX_TRIES:-5} },
  \"http_tls\": true${1:+, $1}"
}
ctl_as() {
	local who=$1
	shift
	"$STBCTL" -a "127.0.0.1:${PORT[keymgmtd]}" --ca "$PKI/ca.crt" --cert "$PKI/$who.crt" \
		--key "$PKI/$who.key" -T 5000 "$@"
}
km_sql() { sqlite3 -batch -noheader "$T/state-keymgmtd/keymgmtd.db" "$1"; }
sync() {
	local key=$1
	shift
	STB_KEYSYNC_KEY=$key "$STB_CLIENT" --ca "$PKI/ca.crt" -a "127.0.0.1:${PORT[keymgmtd]}" \
		keysync "$@" 2>&1
}
# wait_for CMD...: until CMD succeeds, at most ~10 s
wait_for() {
	for _ in $(seq 1 200); do
		"$@" && return 0
		sleep 0.05
	done
	return 1
}
