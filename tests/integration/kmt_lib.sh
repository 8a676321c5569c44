# kmt_lib.sh: flow C's end-to-end helpers.  Sourced after lib.sh.
#
#   kmt_pki                 the shared PKI (ctest fixture kmt_pki, in
#                           $STB_KMT_PKI) copied to $PKI, or made here
#   start_platform NAME [EXTRA_JSON]
#                           the reference app platform (tests/peers) on a
#                           free port, its own state dir, until it answers
#                           (again without EXTRA_JSON: the same configuration)
#   platform_sql NAME SQL   a query on that platform's SQLite
KMT_PLATFORM=${STB_APP_PLATFORM:-}

kmt_pki() {
	if [ -n "${STB_KMT_PKI:-}" ] && [ -f "$STB_KMT_PKI/app-platform.kek" ]; then
		cp -a "$STB_KMT_PKI" "$PKI"
	else
		bash "$STB_SRC/tests/integration/kmt_pki.sh" "$PKI" >/dev/null
	fi
}

# start_platform NAME [EXTRA_JSON]: NAME is the platform's label in PORT[]
# and PID[] (several platforms can run); its certificate is app-platform's.
start_platform() {
	local n=$1 extra=${2:-}
	[ -n "${PORT[$n]:-}" ] || PORT[$n]=$(free_port)
	# a restart without EXTRA_JSON keeps the configuration
	[ -f "$T/$n.json" ] && [ -z "$extra" ] || cat > "$T/$n.json" <<JSON
{
  "listen": "127.0.0.1:${PORT[$n]}",
  "http_listen": "",
  "state_dir": "$T/state-$n",
  "kek_file": "$PKI/app-platform.kek",
  "workers": 1,
  "tls": { "cert": "$PKI/app-platform.crt", "key": "$PKI/app-platform.key", "ca": "$PKI/ca.crt" }${extra:+,
  $extra}
}
JSON
	"$KMT_PLATFORM" -c "$T/$n.json" >>"$T/$n.log" 2>&1 &
	PID[$n]=$!
	for _ in $(seq 1 200); do
		if ctl "$n" ping >/dev/null 2>&1; then
			return 0
		fi
		if ! kill -0 "${PID[$n]}" 2>/dev/null; then
			echo "platform $n exited during start:" >&2
			tail -n 20 "$T/$n.log" >&2
			return 1
		fi
		sleep 0.05
	done
	echo "platform $n did not become ready" >&2
	return 1
}

platform_sql() {
	sqlite3 -batch -noheader "$T/state-$1/app-platform.db" "$2"
}

# start_km [EXTRA_JSON]: keymgmtd with the platforms of platforms_json
# (written to $T/platforms.json), HTTPS on its HTTP listener (Kannel's
# callback) and quick retries; again without EXTRA_JSON: the same config.
# KMT_APPS: the app IDs served by platform "ap" (default "app.tv").
start_km() {
	local extra=${1:-} apps=${KMT_APPS:-app.tv} a sep=
	{
		printf '{'
		for a in $apps; do
			printf '%s"%s": {"address": "127.0.0.1:%s", "ca": "%s", "cert": "%s"}' "$sep" \
				"$a" "${PORT[ap]}" "$PKI/ca.crt" "$PKI/app-platform.crt"
			sep=', '
		done
		printf '}\n'
	} > "$T/platforms.json"
	if [ -f "$T/keymgmtd.json" ] && [ -z "$extra" ]; then
		start_daemon keymgmtd
		return
	fi
	start_daemon keymgmtd "\"platforms_file\": \"$T/platforms.json\", \"http_tls\": true,
  \"push\": {\"backoff_min_ms\": 50, \"backoff_max_ms\": 400, \"poll_ms\": 100, \"timeout_ms\": 3000,
    \"max_tries\": 1000}${extra:+,
  $extra}"
}

# kmt_sync KEY_HEX ARGS...: stb-client keysync at keymgmtd, the key in the
# environment; its output and stderr on stdout, never failing the script
kmt_sync() {
	local key=$1
	shift
	STB_KEYSYNC_KEY=$key "$STB_CLIENT" -a "127.0.0.1:${PORT[keymgmtd]}" --ca "$PKI/ca.crt" \
		-T 10000 keysync "$@" 2>&1 || true
}

# wait_platform NAME WHERE COUNT: until the platform holds COUNT rows of
# table keys matching WHERE (at most 20 s); the count on stdout
wait_platform() {
	local n=0
	for _ in $(seq 1 400); do
		n=$(platform_sql "$1" "SELECT count(*) FROM keys WHERE $2" 2>/dev/null || echo 0)
		[ "$n" -lt "$3" ] || break
		sleep 0.05
	done
	echo "$n"
}

# rand_key: 32 random bytes, hex
rand_key() { openssl rand -hex 32; }
