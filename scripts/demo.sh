#!/usr/bin/env bash
# demo.sh: set up and run the whole suite on this machine — dependencies, a
# build, a local PKI in run/pki, all seven daemons on loopback with SQLite
# in run/state — then drive each one with stb-client and stbctl and print
# what they answer.  Ctrl-C (or the end of the demo) stops everything.
#
#   demo.sh [--keep]   --keep leaves the daemons running until Ctrl-C
set -euo pipefail
cd "$(dirname "$0")/.."
keep=0
[ "${1:-}" = "--keep" ] && keep=1

[ "${STB_SKIP_DEPS:-0}" = 1 ] || scripts/setup-deps.sh
cmake -S . -B build -G Ninja >/dev/null
ninja -C build >/dev/null

run=$PWD/run
mkdir -p "$run/state"
scripts/pki-bootstrap.sh "$run/pki" >/dev/null
pki=$run/pki
daemons="ca-authd cert-proxyd media-gw rendezvousd keymgmtd qualifyd appvetd"
declare -A pids
cleanup() {
	for n in "${!pids[@]}"; do kill -TERM "${pids[$n]}" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

i=1
for n in $daemons; do
	cat > "$run/$n.json" <<JSON
{
  "listen": "127.0.0.1:710$i",
  "http_listen": "127.0.0.1:910$i",
  "state_dir": "$run/state/$n",
  "kek_file": "$pki/$n.kek",
  "tls": { "cert": "$pki/$n.crt", "key": "$pki/$n.key", "ca": "$pki/ca.crt" }
}
JSON
	build/$n -c "$run/$n.json" >>"$run/$n.log" 2>&1 &
	pids[$n]=$!
	i=$((i + 1))
done

ctl() { build/src/stbctl/stbctl -a "127.0.0.1:$1" --ca "$pki/ca.crt" --cert "$pki/admin.crt" \
	--key "$pki/admin.key" "${@:2}"; }
i=1
for n in $daemons; do
	for _ in $(seq 1 100); do ctl 710$i ping >/dev/null 2>&1 && break; sleep 0.05; done
	i=$((i + 1))
done

echo "== stbcred suite on loopback (logs in run/*.log)"
printf '%-12s %-16s %-10s %s\n' DAEMON ADDRESS PING HEALTH
i=1
for n in $daemons; do
	p=$(ctl 710$i ping 2>&1 || true)
	h=$(exec 3<>/dev/tcp/127.0.0.1/910$i && printf 'GET /healthz HTTP/1.0\r\n\r\n' >&3 &&
		tail -n 1 <&3 || echo down)
	printf '%-12s %-16s %-10s %s\n' "$n" "127.0.0.1:710$i" "${p%% *}" "$h"
	i=$((i + 1))
done

echo
echo "== an STB without a certificate pings media-gw (pinned CA, TLS):"
build/src/stb-client/stb-client -a 127.0.0.1:7103 --ca "$pki/ca.crt" ping -n 3
echo
echo "== ca-authd accepts only certified peers; the same STB is refused:"
build/src/stb-client/stb-client -a 127.0.0.1:7101 --ca "$pki/ca.crt" ping 2>&1 || true
echo
echo "== operator: note in media-gw's audit log, then verify the hash chain:"
ctl 7103 audit note "demo run by $(id -un) at $(date -u +%FT%TZ)"
ctl 7103 audit verify
echo
echo "== operator: media-gw counters"
ctl 7103 stats
echo
echo "The flows (login, rendezvous, key sync, bootstrap, app vetting) arrive with their issues."
if [ $keep = 1 ]; then
	echo "Daemons keep running (metrics on http://127.0.0.1:9101..9107/metrics); Ctrl-C stops them."
	wait
fi
