# port_lib.sh: loopback ports for the tests, reserved so that concurrent
# tests never draw the same one.  Sourced by lib.sh and pg_lib.sh.
#
# A port is drawn below the kernel's ephemeral range (32768-60999), which every
# outgoing connection of a concurrent test draws from, and reserved by an
# atomic mkdir in $STB_PORT_DIR holding the owner's pid (the test's shell).  A
# reservation whose owner has died is taken over; port_release_mine, called on
# exit, drops the caller's.  A port something already listens on is skipped.
[ -z "${STB_PORT_LIB:-}" ] || return 0
STB_PORT_LIB=1
STB_PORT_DIR=${STB_PORT_DIR:-${TMPDIR:-/tmp}/stbtest-ports}
mkdir -p "$STB_PORT_DIR" 2>/dev/null && chmod 1777 "$STB_PORT_DIR" 2>/dev/null || true

# port_reserve: prints a reserved loopback port nobody listens on
port_reserve() {
	local p d owner
	while :; do
		p=$((20000 + RANDOM % 12700))
		d=$STB_PORT_DIR/$p
		if ! mkdir "$d" 2>/dev/null; then
			owner=$(cat "$d/owner" 2>/dev/null || true)
			# taken over only from a dead owner, and only by whoever renames it away
			[ -n "$owner" ] && [ ! -d "/proc/$owner" ] &&
				mv "$d" "$d.stale.$$" 2>/dev/null || continue
			rm -rf "$d.stale.$$"
			mkdir "$d" 2>/dev/null || continue
		fi
		echo $$ >"$d/owner"
		if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			continue # in use outside the tests: stays reserved until we exit
		fi
		echo "$p"
		return
	done
}

port_release_mine() {
	local d
	for d in "$STB_PORT_DIR"/*/owner; do
		[ -f "$d" ] && [ "$(cat "$d" 2>/dev/null)" = $$ ] && rm -rf "${d%/owner}"
	done
	return 0
}
