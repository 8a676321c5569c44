#!/usr/bin/env bash
# pg_server.sh start|stop: the ctest fixture pg_server (pg_lib.sh).
set -euo pipefail
. "$(dirname "$0")/pg_lib.sh"
case ${1:-} in
start) pg_server_stop; pg_server_start ;;
stop) pg_server_stop ;;
*) echo "usage: pg_server.sh start|stop" >&2; exit 2 ;;
esac
