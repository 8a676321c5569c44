#!/usr/bin/env bash
# compose-demo.sh: the compose check scripts/test.sh runs.  Always:
# `docker-compose config -q` on docker/compose.yml (and its pg profile).
# Then, when a Docker engine answers or can be started here (dockerd
# installed and we are root: started for this run and stopped after), the
# demo end to end: the base image and the images (scripts/docker-build.sh, one
# -j2 build of the tree, no tests), every service up and healthy, the demo
# service's flows A–E; exit status 1 when one failed.  Containers, network
# and volumes are removed afterwards, the images kept (the next build is
# cached).  Without an engine it says so and exits 0.
#
#   compose-demo.sh [--config-only]
set -euo pipefail
cd "$(dirname "$0")/.."
compose=(docker-compose -f docker/compose.yml -p "stbcred-demo-$$")
say() { printf 'compose: %s\n' "$*"; }

command -v docker-compose >/dev/null || { say "FAIL: docker-compose is not installed"; exit 1; }
"${compose[@]}" config -q
"${compose[@]}" --profile pg config -q
say "docker/compose.yml is valid (with and without profile pg)"
[ "${1:-}" != --config-only ] || exit 0

started_dockerd=
if ! docker info >/dev/null 2>&1; then
	if ! command -v dockerd >/dev/null || [ "$(id -u)" -ne 0 ]; then
		say "SKIPPED the end-to-end demo: no Docker engine answers and none can be started here"
		exit 0
	fi
	dlog=$(mktemp)
	dockerd >"$dlog" 2>&1 &
	started_dockerd=$!
	for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
	if ! docker info >/dev/null 2>&1; then
		say "SKIPPED the end-to-end demo: dockerd did not start ($(tail -n 1 "$dlog"))"
		kill "$started_dockerd" 2>/dev/null || true
		exit 0
	fi
fi
cleanup() {
	"${compose[@]}" --profile pg down -v --remove-orphans >/dev/null 2>&1 || true
	if [ -n "$started_dockerd" ]; then
		kill "$started_dockerd" 2>/dev/null || true
		wait "$started_dockerd" 2>/dev/null || true
	fi
}
trap cleanup EXIT

say "building the images (scripts/docker-build.sh)"
scripts/docker-build.sh
say "starting every service (the pg profile too), then the demo"
rc=0
"${compose[@]}" --profile pg up -d postgres haproxy demo || rc=$?
cid=$("${compose[@]}" ps -q demo 2>/dev/null || true)
if [ -n "$cid" ]; then
	demo_rc=$(docker wait "$cid")
	"${compose[@]}" logs --no-color --no-log-prefix demo
	[ "$demo_rc" = 0 ] || rc=1
else
	say "FAIL: the demo did not start"
	rc=1
fi
# every long-running service still up and healthy at the end
"${compose[@]}" --profile pg ps
for s in $("${compose[@]}" --profile pg ps --services); do
	case $s in pki-init | demo) continue ;; esac
	c=$("${compose[@]}" ps -q "$s")
	h=$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$c" 2>/dev/null || echo missing)
	if [ "$h" != healthy ]; then
		say "FAIL: $s is $h; the end of its log:"
		"${compose[@]}" logs --no-color --tail 20 "$s"
		rc=1
	fi
done
[ $rc = 0 ] && say "the compose demo passed" || say "FAIL: the compose demo failed"
exit $rc
