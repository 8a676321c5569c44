#!/bin/sh
# Every daemon, stbctl, stb-client and the library have a manual page in
# man/, and `man --warnings` renders each without a warning.
#   man.sh MAN_DIR DAEMON...
set -eu
dir=$1
shift
fails=0
fail() {
	echo "FAIL: $*" >&2
	fails=$((fails + 1))
}
for d in "$@"; do
	[ -f "$dir/man8/$d.8" ] || fail "no page man8/$d.8"
done
for p in man8/stbctl.8 man1/stb-client.1 man3/libstbclient.3 man5/stbcred.conf.5; do
	[ -f "$dir/$p" ] || fail "no page $p"
done
if ! command -v man >/dev/null 2>&1; then
	echo "SKIP: man not found"
	exit 77
fi
for f in "$dir"/man*/*; do
	out=$(man --warnings -E UTF-8 -l "$f" 2>&1 >/dev/null) || fail "$f: man exited $?"
	if [ -n "$out" ]; then
		fail "$f: $out"
	else
		echo "ok: $f"
	fi
done
[ "$fails" -eq 0 ] || {
	echo "$fails failure(s)" >&2
	exit 1
}
