#!/bin/sh
# An install under two different prefixes works for the people who use it:
# - the systemd units start the install's own binaries with the install's
#   config paths, and `systemd-analyze verify` accepts them (when present);
# - a program that defines the generic names our internals use (buf_init,
#   tlv_next, frame_decode, hex_encode, proto_msg_name) links and runs
#   against the shared and the static library, found through pkg-config and
#   through CMake's find_package.
#   install.sh BUILD_DIR CC SANITIZE(0|1) DAEMON...
set -eu
build=$1
cc=$2
san=$3
shift 3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() {
	echo "FAIL: $*" >&2
	fails=$((fails + 1))
}
flags=
[ "$san" = 1 ] && flags="-fsanitize=address,undefined"

cat >"$tmp/app.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <stb/stbclient.h>
/* a firmware's own helpers, named like libstbclient's internals */
int buf_init(int x) { return x + 1; }
int tlv_next(void) { return 7; }
int frame_decode(const char *s) { return (int)strlen(s); }
int hex_encode(int a, int b) { return a * b; }
const char *proto_msg_name(void) { return "mine"; }
int main(void)
{
	stb_client_t *c = NULL;
	stb_error_t err;
	if (stb_client_new(&c, &err) != 0)
		return 1;
	stb_client_free(c);
	printf("%s %d %d %d %d %s\n", stb_version(), buf_init(1), tlv_next(), frame_decode("abc"),
	       hex_encode(2, 3), proto_msg_name());
	return 0;
}
C
want_out="2 7 3 6 mine"

cat >"$tmp/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.16)
project(stbconsumer C)
find_package(stbclient REQUIRED)
add_executable(app_shared app.c)
target_link_libraries(app_shared PRIVATE stb::stbclient)
add_executable(app_static app.c)
target_link_libraries(app_static PRIVATE stb::stbclient_static)
CM

check_run() { # label command...
	label=$1
	shift
	out=$("$@" 2>&1) || {
		fail "$label: exited $?: $out"
		return
	}
	case "$out" in
	*"$want_out") echo "ok: $label: $out" ;;
	*) fail "$label: printed '$out'" ;;
	esac
}

for p in "$tmp/pfx-a" "$tmp/opt/stbcred-b"; do
	cmake --install "$build" --prefix "$p" >"$tmp/install.log" 2>&1 || {
		cat "$tmp/install.log" >&2
		fail "cmake --install --prefix $p"
		continue
	}
	etc=$p/etc
	case "$p" in /opt/*) etc=/etc$p ;; esac
	for d in "$@"; do
		u=$p/lib/systemd/system/$d.service
		[ -f "$u" ] || {
			fail "$u not installed"
			continue
		}
		grep -qxF "ExecStart=$p/sbin/$d -c $etc/stbcred/$d.json" "$u" ||
			fail "$u: ExecStart is not the install's: $(grep '^ExecStart=' "$u")"
		grep -qxF "ExecStartPre=$p/sbin/$d -t -c $etc/stbcred/$d.json" "$u" ||
			fail "$u: no ExecStartPre= -t with the install's paths"
		grep -qxF "LoadCredential=kek:$etc/stbcred/$d.kek" "$u" || fail "$u: KEK path"
		grep -qxF "Documentation=man:$d(8)" "$u" || fail "$u: no Documentation="
		[ -x "$p/sbin/$d" ] || fail "$p/sbin/$d not installed"
		if command -v systemd-analyze >/dev/null 2>&1; then
			# Documentation=man:...: the install's own page
			MANPATH=$p/share/man systemd-analyze verify "$u" >"$tmp/verify" 2>&1 || {
				fail "systemd-analyze verify $u"
				cat "$tmp/verify" >&2
			}
		fi
	done
	for f in tmpfiles.d sysusers.d; do
		[ -f "$p/lib/$f/stbcred.conf" ] || fail "$p/lib/$f/stbcred.conf not installed"
	done
	grep -qF "d $etc/stbcred/pki " "$p/lib/tmpfiles.d/stbcred.conf" || fail "tmpfiles.d paths"

	# pkg-config: the shared library, then the static archive by path
	pc="env PKG_CONFIG_PATH=$p/lib/pkgconfig pkg-config"
	inc=$($pc --cflags stbclient)
	case "$inc" in *"$p"/*) ;; *) fail "pkg-config --cflags: '$inc' is not under $p" ;; esac
	# shellcheck disable=SC2086
	$cc $flags -o "$tmp/pc_shared" "$tmp/app.c" $inc $($pc --libs stbclient) ||
		fail "pkg-config shared link ($p)"
	[ -x "$tmp/pc_shared" ] && check_run "pkg-config, shared, $p" \
		env LD_LIBRARY_PATH="$p/lib" "$tmp/pc_shared"
	# shellcheck disable=SC2086
	$cc $flags -o "$tmp/pc_static" "$tmp/app.c" $inc "$p/lib/libstbclient.a" \
		$($pc --static --libs stbclient | sed 's/-lstbclient//') ||
		fail "pkg-config static link ($p)"
	[ -x "$tmp/pc_static" ] && check_run "pkg-config, static, $p" "$tmp/pc_static"
	rm -f "$tmp/pc_shared" "$tmp/pc_static"

	# find_package
	rm -rf "$tmp/cb"
	if CC=$cc cmake -S "$tmp" -B "$tmp/cb" -DCMAKE_PREFIX_PATH="$p" \
		-DCMAKE_C_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$flags" >"$tmp/cb.log" 2>&1 &&
		cmake --build "$tmp/cb" >>"$tmp/cb.log" 2>&1; then
		check_run "find_package, shared, $p" env LD_LIBRARY_PATH="$p/lib" "$tmp/cb/app_shared"
		check_run "find_package, static, $p" "$tmp/cb/app_static"
	else
		cat "$tmp/cb.log" >&2
		fail "find_package consumer build ($p)"
	fi
done

# only stb_* is global in the installed archive
extra=$(nm -g --defined-only "$tmp/pfx-a/lib/libstbclient.a" | awk 'NF == 3 { print $3 }' |
	grep -v '^stb_' || true)
[ -z "$extra" ] || fail "libstbclient.a exports non-stb_ symbols: $(echo "$extra" | head -5 | tr '\n' ' ')"

[ "$fails" -eq 0 ] || {
	echo "$fails failure(s)" >&2
	exit 1
}
echo "install checks OK"
