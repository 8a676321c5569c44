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
