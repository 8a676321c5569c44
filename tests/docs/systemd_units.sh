#!/bin/sh
# Every daemon has a unit in packaging/systemd that, made for the prefix
# /usr (packaging/units.cmake), `systemd-analyze verify` accepts (apart from
# its binary not being installed in /usr/sbin here) and that
# `systemd-analyze security` rates at most THRESHOLD (exposure x 10).
# docs.install checks the units of real installs under other prefixes.
#   systemd_units.sh SOURCE_DIR DAEMON...
# Exits 77 (skipped) without systemd-analyze.
set -eu

threshold=15
if [ $# -lt 2 ]; then
	echo "usage: $0 UNIT_DIR DAEMON..." >&2
	exit 2
fi
srcdir=$1
shift
if ! command -v systemd-analyze >/dev/null 2>&1; then
	echo "SKIP: systemd-analyze not found"
	exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake -DSTB_PREFIX=/usr -DSTB_SBINDIR=sbin -DSTB_SRC="$srcdir" -DSTB_OUT="$tmp/gen" \
	-P "$srcdir/packaging/units.cmake"
dir=$tmp/gen/systemd
fails=0
fail() {
	echo "FAIL: $*" >&2
	fails=$((fails + 1))
}

for f in "$dir"/*.service; do
	name=$(basename "$f" .service)
	case " $* " in
	*" $name "*) ;;
	*) fail "$f: no daemon called $name" ;;
	esac
done

for d in "$@"; do
	unit="$dir/$d.service"
	if [ ! -f "$unit" ]; then
		fail "$d: no unit $unit"
		continue
	fi
	# The unit runs this daemon with its own config, state and key.
	for line in "ExecStart=/usr/sbin/$d -c /etc/stbcred/$d.json" \
		"StateDirectory=stbcred/$d" "LoadCredential=kek:/etc/stbcred/$d.kek" \
		"Type=notify" "User=stbcred"; do
		grep -qxF "$line" "$unit" || fail "$unit lacks the line '$line'"
	done

	# Only the missing binary may be reported.
	rc=0
	MANPATH=$srcdir/packaging/man systemd-analyze verify "$unit" >"$tmp/out" 2>&1 || rc=$?
	missing="Command /usr/sbin/$d is not executable: No such file or directory"
	grep -vF "$missing" "$tmp/out" | grep -v '^[[:space:]]*$' >"$tmp/rest" || true
	if [ -s "$tmp/rest" ]; then
		fail "systemd-analyze verify $unit:"
		cat "$tmp/out" >&2
	elif [ "$rc" -ne 0 ] && ! grep -qF "$missing" "$tmp/out"; then
		fail "systemd-analyze verify $unit exited $rc"
	else
		note=""
		[ "$rc" -eq 0 ] || note=" (ignoring: /usr/sbin/$d is not installed)"
		echo "ok: systemd-analyze verify $unit$note"
	fi

	# Low exposure; --offline and --threshold need systemd 250.
	if systemd-analyze security --help 2>/dev/null | grep -- '--threshold' >/dev/null; then
		rc=0
		systemd-analyze security --offline=yes --threshold="$threshold" "$unit" \
			>"$tmp/sec" 2>&1 || rc=$?
		score=$(grep 'Overall exposure level' "$tmp/sec" | sed 's/.*: //')
		if [ "$rc" -ne 0 ]; then
			fail "$unit: exposure above $threshold/10: $score"
			grep '✗' "$tmp/sec" >&2 || true
		else
			echo "ok: $unit exposure $score"
		fi
	else
		echo "note: systemd-analyze security --offline/--threshold unsupported; not rated"
	fi
done

[ "$fails" -eq 0 ] || { echo "$fails failure(s)" >&2; exit 1; }
echo "all units OK"
