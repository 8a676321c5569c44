#!/usr/bin/env bash
# docker-build.sh: the images docker/compose.yml runs, built from this
# checkout: stbcred/runtime:dev, stbcred/peers:dev, stbcred/extras:dev
# (targets of docker/Dockerfile), after the local base image
# (scripts/docker-base.sh).  The build context is streamed as a tar of the
# files git knows (tracked, or new and not ignored), so no build tree, demo
# state or key under run/ is ever sent to the engine and no ignore file is
# needed; outside a git checkout, the tree without what .gitignore names.
# Exit status 1 when a build fails, with the end of its output.
#
#   docker-build.sh [TARGET ...]     default: runtime peers extras
set -euo pipefail
cd "$(dirname "$0")/.."
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(runtime peers extras)

context() {
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		git ls-files -z --cached --others --exclude-standard |
			xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh |
			tar --null -T - -c
	else
		tar -c --exclude='./build*' --exclude=./run --exclude=./out --exclude='*.o' \
			--exclude='*.a' --exclude='*.so' .
	fi
}

scripts/docker-base.sh
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for t in "${targets[@]}"; do
	echo "docker-build: stbcred/$t:dev"
	if ! context | docker build -q -f docker/Dockerfile --target "$t" -t "stbcred/$t:dev" - \
		>"$log" 2>&1; then
		echo "docker-build: stbcred/$t:dev did not build; the end of its output:" >&2
		grep -v '^ *$' "$log" | tail -n 40 >&2
		exit 1
	fi
done
