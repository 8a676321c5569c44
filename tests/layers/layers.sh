#!/usr/bin/env bash
# layers.sh SRC_ROOT: the include rules of DESIGN.md section 1, Tor style.
# Each folder under src/ has a .may_include: one line per folder whose
# headers it may include ("core", "common", "proto", "include", a daemon
# folder; its own folder always), and "!PATTERN" lines for system headers it
# must not include (a shell glob on what stands between < and >).  A quoted
# include is resolved to the folder that holds it: the including file's own
# folder first, then src/*, include/ and proto/, where a header's name must be
# unique.  Exit 1 with one line per broken rule.
set -euo pipefail
root=${1:?usage: layers.sh SRC_ROOT}
cd "$root"
bad=0
say() { printf '%s\n' "$*" >&2; bad=1; }

# where each header lives: name -> folder (one of the src/ folders, include, proto)
declare -A home
while IFS= read -r h; do
	case $h in
	src/*) d=${h#src/}; d=${d%%/*}; n=${h#src/"$d"/} ;;
	include/*) d=include; n=${h#include/} ;;
	proto/*) d=proto; n=${h#proto/} ;;
	esac
	if [ -n "${home[$n]:-}" ] && [ "${home[$n]}" != "$d" ]; then
		say "header $n is in both ${home[$n]} and $d: names must be unique"
	fi
	home[$n]=$d
done < <(find src include proto -type f \( -name '*.h' -o -name '*.def' \) | sort)

checked=0
for rules in src/*/.may_include; do
	dir=$(dirname "$rules")
	me=${dir#src/}
	allow=" $me "
	deny=()
	while IFS= read -r line; do
		line=${line%%#*}
		line=${line//[[:space:]]/}
		[ -n "$line" ] || continue
		case $line in
		!*) deny+=("${line#!}") ;;
		*) allow+="$line " ;;
		esac
	done <"$rules"
	for f in "$dir"/*.[ch]; do
		[ -e "$f" ] || continue
		checked=$((checked + 1))
		while IFS=: read -r ln inc; do
			if [[ $inc =~ \#[[:space:]]*include[[:space:]]*\"([^\"]+)\" ]]; then
				n=${BASH_REMATCH[1]}
				if [ -e "$dir/$n" ]; then
					continue
				fi
				d=${home[$n]:-}
				if [ -z "$d" ]; then
					say "$f:$ln: includes \"$n\", which is in no folder of the tree"
				elif [[ $allow != *" $d "* ]]; then
					say "$f:$ln: $me may not include $d (\"$n\"; see $rules)"
				fi
			elif [[ $inc =~ \#[[:space:]]*include[[:space:]]*\<([^\>]+)\> ]]; then
				n=${BASH_REMATCH[1]}
				for p in "${deny[@]}"; do
					# shellcheck disable=SC2053
					[[ $n == $p ]] && say "$f:$ln: $me may not include <$n> (see $rules)"
				done
			fi
		done < <(grep -n '^[[:space:]]*#[[:space:]]*include' "$f" || true)
	done
done
for dir in src/*/; do
	dir=${dir%/}
	[ -e "$dir/.may_include" ] || say "$dir has no .may_include"
done
[ "$bad" = 0 ] || exit 1
echo "layers: $checked files follow their folder's .may_include"
