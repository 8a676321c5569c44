#!/bin/sh
# Every examples/<daemon>.json passes its daemon's -t, and names every key of
# that daemon's configuration table (`-H`); every daemon has an example; an
# unknown key fails with the key and the file named.
#   examples.sh EXAMPLES_DIR NAME=BINARY...
set -eu

if [ $# -lt 2 ]; then
	echo "usage: $0 EXAMPLES_DIR NAME=BINARY..." >&2
	exit 2
fi
dir=$1
shift
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() {
	echo "FAIL: $*" >&2
	fails=$((fails + 1))
}

binary_of() { # name -> path, "" when no such daemon
	for pair in $daemons; do
		[ "${pair%%=*}" = "$1" ] && { echo "${pair#*=}"; return; }
	done
	echo ""
}
daemons="$*"

# Examples with no daemon, daemons with no example.
for f in "$dir"/*.json; do
	[ -e "$f" ] || { fail "no examples in $dir"; break; }
	name=$(basename "$f" .json)
	[ -n "$(binary_of "$name")" ] || fail "$f: no daemon called $name"
done
for pair in $daemons; do
	[ -f "$dir/${pair%%=*}.json" ] || fail "${pair%%=*}: no example $dir/${pair%%=*}.json"
done

# -t opens the certificates, keys and KEK an example names: give them a PKI
# where the examples expect it (/etc/stbcred and /var/lib/stbcred, moved
# under $tmp).
src=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$tmp/etc/stbcred" "$tmp/var"
"$src/scripts/pki-bootstrap.sh" --openssl "$tmp/etc/stbcred/pki" >/dev/null
cp -p "$tmp/etc/stbcred/pki/"*.kek "$tmp/etc/stbcred/"
# other files the examples name: a certificate with its key (an operator's
# signing pair) is a copy of the admin pair, a lone certificate (a trust
# anchor) the CA's, anything else (a blocklist) an empty file
for f in $(cat "$dir"/*.json | grep -o '"/etc/stbcred/[^"]*"' | tr -d '"' | sort -u); do
	t=$tmp$f
	[ -e "$t" ] && continue
	mkdir -p "$(dirname "$t")"
	case "$f" in
	*.crt) if grep -q "\"${f%.crt}.key\"" "$dir"/*.json; then cp -p "$tmp/etc/stbcred/pki/admin.crt" "$t"
		else cp -p "$tmp/etc/stbcred/pki/ca.crt" "$t"; fi ;;
	*.key) cp -p "$tmp/etc/stbcred/pki/admin.key" "$t" ;;
	*) : >"$t" ;;
	esac
done

for pair in $daemons; do
	name=${pair%%=*}
	bin=${pair#*=}
	f="$dir/$name.json"
	[ -f "$f" ] || continue

	# -t accepts the example.
	sed -e "s#/etc/stbcred/#$tmp/etc/stbcred/#g" -e "s#/var/lib/stbcred/#$tmp/var/#g" "$f" \
		>"$tmp/$name.json"
	if "$bin" -t -c "$tmp/$name.json" >"$tmp/out" 2>&1 && grep -q "configuration OK" "$tmp/out"; then
		echo "ok: $name -t -c $f: $(cat "$tmp/out")"
	else
		fail "$name -t -c $f: $(cat "$tmp/out")"
	fi

	# The example shows every key the daemon knows (jq flattens it).
	if command -v jq >/dev/null 2>&1; then
		"$bin" -H | awk '/^  [^ ]/ { print $1 }' | sort >"$tmp/keys"
		jq -r 'paths(type != "object" and type != "array") | map(tostring) | join(".")' "$f" | sort >"$tmp/shown"
		missing=$(comm -23 "$tmp/keys" "$tmp/shown" | tr '\n' ' ')
		[ -z "$missing" ] || fail "$f does not show: $missing"
	else
		echo "note: jq not found; not checking that $f shows every key"
	fi

	# Unknown keys, top level and in a section, name the key and the file.
	for bad in '{"listen": "127.0.0.1:7000", "no_such_key": 1}:no_such_key' \
		'{"tls": {"cert": "/x.crt", "no_such_key": "x"}}:tls.no_such_key'; do
		key=${bad##*:}
		printf '%s\n' "${bad%:*}" >"$tmp/bad.json"
		if "$bin" -t -c "$tmp/bad.json" >"$tmp/out" 2>&1; then
			fail "$name accepted unknown key $key: $(cat "$tmp/out")"
		elif ! grep -qF "$tmp/bad.json" "$tmp/out" || ! grep -qF "'$key'" "$tmp/out"; then
			fail "$name: error for unknown key $key names neither key nor file: $(cat "$tmp/out")"
		elif grep -q "configuration OK" "$tmp/out"; then
			fail "$name: said OK for unknown key $key"
		else
			echo "ok: $name refuses $key: $(cat "$tmp/out")"
		fi
	done
done

[ "$fails" -eq 0 ] || { echo "$fails failure(s)" >&2; exit 1; }
echo "all examples OK"
