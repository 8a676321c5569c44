#!/usr/bin/env bash
# docs.readme: README.md's shell examples run, and its links stay inside the
# repository.
#
# The marker convention (the info string of each fenced block):
#   ```sh                      a runnable example: run by this test, in order
#   ```sh no-run: REASON       a shell example this test does not run; the reason
#                              is required (e.g. "installs under /usr/local")
#   ```text / ```json / ```c   not shell; never run
# A bare ``` opener, or any other info string, fails the test.
#
# The runnable blocks run one by one (each in its own `bash -euo pipefail`)
# against the suite `scripts/demo.sh --keep` starts from BUILD_DIR with its
# own --dir and a free --port-base, in a directory where run/ is that demo's
# (README's paths are the demo's: run/pki/...), with the build's stbctl,
# stb-client and daemons on PATH.  Addresses 127.0.0.1:71NN and :91NN (the
# demo's default base 7100) are moved to the chosen base.  Then demo.sh's
# own failures: a second copy on the same --port-base fails naming the taken
# port, and a daemon that cannot start stops it with its name and log.
#
#   readme.sh SRC_DIR BUILD_DIR
set -uo pipefail
src=${1:?usage: readme.sh SRC_DIR BUILD_DIR} build=${2:?usage: readme.sh SRC_DIR BUILD_DIR}
readme=$src/README.md
T=$(mktemp -d "${TMPDIR:-/tmp}/stbreadme.XXXXXX")
demo_pid=
fails=0 ran=0 norun=0
fail() { printf 'FAIL: %s\n' "$*"; fails=$((fails + 1)); }
cleanup() {
	if [ -n "$demo_pid" ]; then
		kill -TERM "$demo_pid" 2>/dev/null
		wait "$demo_pid" 2>/dev/null
	fi
	rm -rf "$T"
}
trap cleanup EXIT

# --- the blocks: split README.md into $T/block.N (runnable) and check every opener
n=0 inblock=0
while IFS= read -r line; do
	n=$((n + 1))
	if [[ $line =~ ^\`\`\` ]]; then
		if [ $inblock = 1 ]; then
			inblock=0
			continue
		fi
		inblock=1 info=${line#\`\`\`} out=/dev/null
		case $info in
		sh) out=$T/block.$(printf '%04d' "$n"); : >"$out" ;;
		"sh no-run: "?*) norun=$((norun + 1)) ;;
		text | json | c) ;;
		"") fail "README.md:$n: a fenced block without an info string (sh, sh no-run: REASON, text, json, c)" ;;
		*) fail "README.md:$n: unknown info string '$info'" ;;
		esac
		continue
	fi
	[ $inblock = 0 ] || printf '%s\n' "$line" >>"$out"
done <"$readme"
[ $inblock = 0 ] || fail "README.md: a fenced block is never closed"

# --- links: relative ones name a file of the repository
grep -o '\]([^)]*)' "$readme" | sed 's/^](//; s/)$//' | while read -r target; do
	case $target in
	http://* | https://* | '#'*) ;;
	/* | ../*) echo "FAIL: README.md links outside the repository: $target" ;;
	*) [ -e "$src/${target%%#*}" ] || echo "FAIL: README.md links to a missing file: $target" ;;
	esac
done >"$T/links"
if [ -s "$T/links" ]; then
	cat "$T/links"
	fails=$((fails + $(wc -l <"$T/links")))
fi
grep -n '\.\./shared\|/work/' "$readme" && fail "README.md names a path outside the repository"

# --- the suite the runnable blocks talk to
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
base_free() { # every port demo.sh --port-base N uses (see its usage)
	local i
	for i in 1 2 3 4 5 6 7 2001 2002 2003 2004 2005 2006 2007 16 26 36 17 27 30 41 42; do
		port_free $(($1 + i)) || return 1
	done
}
for _ in $(seq 1 50); do
	base=$((10000 + (RANDOM % 80) * 100))
	base_free "$base" && break
done
mkdir -p "$T/work"
"$src/scripts/demo.sh" --keep --build-dir "$build" --dir "$T/run" --port-base "$base" \
	>"$T/demo.log" 2>&1 &
demo_pid=$!
up=0
for _ in $(seq 1 1200); do
	grep -q "^Daemons keep running" "$T/demo.log" && { up=1; break; }
	kill -0 "$demo_pid" 2>/dev/null || break
	sleep 0.1
done
if [ $up = 0 ]; then
	fail "scripts/demo.sh --keep did not bring the suite up:"
	tail -n 40 "$T/demo.log"
	exit 1
fi
grep -q "^flows.sh: every flow passed" "$T/demo.log" || {
	fail "the demo's flows failed:"
	grep -E "FAILED|^flow " "$T/demo.log"
}
ln -s "$T/run" "$T/work/run"
for b in "$T"/block.*; do
	[ -e "$b" ] || break
	line=$((10#${b##*.}))
	perl -pi -e 's/127\.0\.0\.1:([79])1(\d\d)\b/"127.0.0.1:" . ('"$base"' + ($1 == 9 ? 2000 : 0) + $2)/ge' "$b"
	if (cd "$T/work" && PATH=$build/src/stbctl:$build/src/stb-client:$build:$PATH \
		timeout 60 bash -euo pipefail "$b") >"$T/out" 2>&1; then
		printf 'ok: README.md:%d\n' "$line"
	else
		fail "README.md:$line:"
		sed 's/^/    /' "$b"
		echo "  output:"
		tail -n 20 "$T/out" | sed 's/^/    /'
	fi
	ran=$((ran + 1))
done
# --- what demo.sh does when it cannot run: a taken port, a daemon that fails
out=$("$src/scripts/demo.sh" --build-dir "$build" --dir "$T/run2" --port-base "$base" 2>&1) &&
	fail "a second demo.sh on the same --port-base succeeded"
grep -q "^demo: port [0-9]* (of --port-base $base) is already in use" <<<"$out" &&
	echo "ok: a second demo.sh on a taken port base fails naming the port" ||
	fail "a second demo.sh on a taken port base: $out"
for _ in $(seq 1 50); do
	base2=$((10000 + (RANDOM % 80) * 100))
	[ "$base2" != "$base" ] && base_free "$base2" && break
done
mkdir -p "$T/run3"
cp -a "$T/run/pki" "$T/run3/pki"
: >"$T/run3/pki/media-gw.key"
out=$("$src/scripts/demo.sh" --build-dir "$build" --dir "$T/run3" --port-base "$base2" 2>&1) &&
	fail "demo.sh with a broken media-gw key succeeded"
grep -q "^demo: media-gw exited during start-up" <<<"$out" && grep -q "media-gw.key" <<<"$out" &&
	echo "ok: a daemon that does not start stops the demo, naming it, with the end of its log" ||
	fail "demo.sh with a daemon that does not start: $out"

echo "docs.readme: $ran blocks run, $norun marked no-run, $fails failure(s)"
[ $fails = 0 ]
