#!/bin/sh
# PROTOCOL.md's registry tables are the output of `stbctl messages --markdown`.
#   protocol_md.sh STBCTL PROTOCOL.md            fails with a diff when stale
#   protocol_md.sh --update STBCTL PROTOCOL.md   rewrites the generated part
set -eu

begin='<!-- BEGIN GENERATED: stbctl messages --markdown -->'
end='<!-- END GENERATED -->'
update=0
if [ "${1:-}" = "--update" ]; then
	update=1
	shift
fi
if [ $# -ne 2 ]; then
	echo "usage: $0 [--update] STBCTL PROTOCOL.md" >&2
	exit 2
fi
stbctl=$1
doc=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Exactly one BEGIN line, then exactly one END line.
nb=$(grep -cxF -- "$begin" "$doc" || true)
ne=$(grep -cxF -- "$end" "$doc" || true)
lb=$(grep -nxF -- "$begin" "$doc" | cut -d: -f1 || true)
le=$(grep -nxF -- "$end" "$doc" | cut -d: -f1 || true)
if [ "$nb" != 1 ] || [ "$ne" != 1 ] || [ "$lb" -ge "$le" ]; then
	echo "$doc: needs one line '$begin' followed by one line '$end'" >&2
	exit 1
fi

"$stbctl" messages --markdown >"$tmp/generated"
sed -n "$((lb + 1)),$((le - 1))p" "$doc" >"$tmp/current"

if [ "$update" = 1 ]; then
	{
		sed -n "1,${lb}p" "$doc"
		cat "$tmp/generated"
		sed -n "${le},\$p" "$doc"
	} >"$tmp/new"
	cat "$tmp/new" >"$doc"
	echo "$doc: generated section updated"
	exit 0
fi

if ! diff -u "$tmp/current" "$tmp/generated" >"$tmp/diff"; then
	sed -e "1s|^--- .*|--- $doc (generated section)|" \
	    -e "2s|^+++ .*|+++ stbctl messages --markdown|" "$tmp/diff"
	echo "FAIL: $doc is out of date with proto/stb_proto.def; run" >&2
	echo "  $0 --update $stbctl $doc" >&2
	exit 1
fi
echo "ok: $doc matches the registry"
