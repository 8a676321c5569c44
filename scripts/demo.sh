#!/usr/bin/env bash
# demo.sh: set up and run the whole suite on this machine — dependencies, a
# build, a local PKI in run/pki, all seven daemons and the reference app
# platform on loopback with SQLite in run/state — then run every flow (A–E)
# once with stb-client and stbctl (scripts/flows.sh) and print what they
# answer.  Ctrl-C (or the end of the demo) stops everything.  Exit status 0
# only when every daemon came up and every flow passed.
#
#   demo.sh [--keep] [--port-base N] [--dir DIR] [--build-dir DIR]
#     --keep           leave the daemons running until Ctrl-C
#     --port-base N    daemon I (1 ca-authd .. 7 appvetd) on N+I, its HTTP on N+2000+I,
#                      qualifyd's device listeners on N+16/N+26/N+36, appvetd's vetter and
#                      check listeners on N+17/N+27, the app platform on N+30, flow B's
#                      devices on N+41/N+42.  Default: 7100 when all of those are free,
#                      else a free base in 10000-17900, below the test ports and the
#                      kernel's ephemeral range (two demos on one machine)
#     --dir DIR        the PKI, configurations, state and logs (default run/)
#     --build-dir DIR  use the binaries already built there (no setup-deps, no build)
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
keep=0 base= run=$src/run build=
usage() { echo "usage: $0 [--keep] [--port-base N] [--dir DIR] [--build-dir DIR]" >&2; exit 2; }
while [ $# -gt 0 ]; do
	case "$1" in
	--keep) keep=1; shift ;;
	--port-base) [ $# -ge 2 ] && [[ $2 =~ ^[0-9]+$ ]] && [ "$2" -ge 1024 ] && [ "$2" -le 63000 ] ||
		usage; base=$2; shift 2 ;;
	--dir) [ $# -ge 2 ] || usage; run=$(realpath -m "$2"); shift 2 ;;
	--build-dir) [ $# -ge 2 ] || usage; build=$(realpath "$2"); shift 2 ;;
	*) usage ;;
	esac
done

if [ -z "$build" ]; then
	[ "${STB_SKIP_DEPS:-0}" = 1 ] || scripts/setup-deps.sh
	build=$src/build
	cmake -S . -B "$build" -G Ninja >/dev/null
	ninja -C "$build" >/dev/null
fi
ctlbin=$build/src/stbctl/stbctl client=$build/src/stb-client/stb-client
daemons="ca-authd cert-proxyd media-gw rendezvousd keymgmtd qualifyd appvetd"
for b in $daemons; do [ -x "$build/$b" ] || { echo "demo: no $build/$b" >&2; exit 1; }; done

# the ports of base N, and whether any is taken
ports_of() {
	local n=$1 i
	for i in 1 2 3 4 5 6 7; do echo $((n + i)) $((n + 2000 + i)); done
	echo $((n + 16)) $((n + 26)) $((n + 36)) $((n + 17)) $((n + 27)) $((n + 30)) $((n + 41)) $((n + 42))
}
taken() { # prints the first port of base N something listens on
	local p
	for p in $(ports_of "$1"); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
}
if [ -n "$base" ]; then
	busy=$(taken "$base")
	if [ -n "$busy" ]; then
		echo "demo: port $busy (of --port-base $base) is already in use" >&2
		exit 1
	fi
elif [ -z "$(taken 7100)" ]; then
	base=7100
else
	for _ in $(seq 1 50); do
		base=$((10000 + (RANDOM % 80) * 100))
		[ -n "$(taken "$base")" ] || break
	done
fi
declare -A port=([ca-authd]=$((base + 1)) [cert-proxyd]=$((base + 2)) [media-gw]=$((base + 3))
	[rendezvousd]=$((base + 4)) [keymgmtd]=$((base + 5)) [qualifyd]=$((base + 6))
	[appvetd]=$((base + 7)) [app-platform]=$((base + 30)))
hport() { echo $((${port[$1]} + 2000)); }

mkdir -p "$run/state"
pki=$run/pki
# ca-authd makes the PKI; the running ca-authd uses that CA (run/pki/ca-authd-state)
if [ ! -f "$pki/ca.crt" ]; then
	scripts/pki-bootstrap.sh --ca-authd "$build/ca-authd" "$pki" >"$run/pki-bootstrap.log" 2>&1 ||
		{ echo "demo: pki-bootstrap.sh failed:" >&2; tail -n 20 "$run/pki-bootstrap.log" >&2; exit 1; }
fi
# flow C's roles: the app platform, the manufacturer that imports keys, the portal
for r in app-platform manufacturer portal; do
	[ -f "$pki/$r.crt" ] || scripts/pki-bootstrap.sh --ca-authd "$build/ca-authd" --reissue "$pki" "$r" \
		>>"$run/pki-bootstrap.log" 2>&1
done
[ -f "$pki/app-platform.kek" ] || (umask 077 && openssl rand -hex 32 >"$pki/app-platform.kek")

declare -A pids
cleanup() {
	for n in "${!pids[@]}"; do kill -TERM "${pids[$n]}" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# flow settings per daemon: ca-authd runs on the PKI's CA; cert-proxyd and
# media-gw reach it; rendezvousd uses a quick scrypt for the demo; keymgmtd
# pushes to the app platform; qualifyd trusts ca-authd's device certificates
# and asks its OCSP responder; appvetd has its vetter and TV check listeners
lst() { # NAME PORT CA ROLES MESSAGES
	printf '{"name": "%s", "listen": "127.0.0.1:%s", "client_auth": "require", "tls": {"ca": "%s"},
	  "roles": "%s", "messages": "PING,%s"}' "$@"
}
printf '{"tv.app": {"address": "127.0.0.1:%s", "ca": "%s", "cert": "%s"}}\n' "${port[app-platform]}" \
	"$pki/ca.crt" "$pki/app-platform.crt" >"$run/platforms.json"
declare -A extra=(
	[cert-proxyd]="\"ca\": { \"addr\": \"127.0.0.1:${port[ca-authd]}\" },"
	[media-gw]="\"ca\": { \"addr\": \"127.0.0.1:${port[ca-authd]}\" },"
	[rendezvousd]="\"kdf\": { \"scrypt_n\": 4096 },"
	[keymgmtd]="\"platforms_file\": \"$run/platforms.json\", \"push\": { \"backoff_min_ms\": 200 },"
	[qualifyd]="\"listeners\": [$(lst registration $((base + 16)) "$pki/ca.crt" device QD_REGISTER),
    $(lst credentialing $((base + 26)) "$pki/ca.crt" device QD_CRED_REQ),
    $(lst provisioning $((base + 36)) "$pki/ca.crt" device QD_PKG_FETCH,QD_PKG_CONFIRM)],
  \"device_ca\": \"$pki/ca.crt\", \"ocsp\": { \"url\": \"http://127.0.0.1:$(hport ca-authd)/ocsp\" },"
	[appvetd]="\"listeners\": [{\"name\": \"vetter\", \"listen\": \"127.0.0.1:$((base + 17))\",
    \"client_auth\": \"require\", \"roles\": \"appvetd,admin\",
    \"messages\": \"PING,APP_UPLOAD_BEGIN,APP_UPLOAD_CHUNK,APP_UPLOAD_OFFSET,APP_VET\"},
    {\"name\": \"check\", \"listen\": \"127.0.0.1:$((base + 27))\", \"client_auth\": \"none\",
     \"messages\": \"PING,APP_CHECK,APP_INDEX_EXPORT\"}],"
)

ctl() { "$ctlbin" -a "127.0.0.1:$1" --ca "$pki/ca.crt" --cert "$pki/admin.crt" \
	--key "$pki/admin.key" "${@:2}"; }
# start NAME BINARY: start it and wait until it answers PING; a daemon that
# exits or stays silent stops the demo with the tail of its log
start() {
	local n=$1 bin=$2 kek=$pki/$1.kek state=$run/state/$1
	[ "$n" != ca-authd ] || state=$pki/ca-authd-state
	[ "$n" != app-platform ] || kek=$pki/app-platform.kek
	cat >"$run/$n.json" <<JSON
{
  "listen": "127.0.0.1:${port[$n]}",
  "http_listen": "127.0.0.1:$(hport "$n")",
  "state_dir": "$state",
  ${extra[$n]:-}
  "kek_file": "$kek",
  "tls": { "cert": "$pki/$n.crt", "key": "$pki/$n.key", "ca": "$pki/ca.crt" }
}
JSON
	: >"$run/$n.log"
	"$bin" -c "$run/$n.json" >>"$run/$n.log" 2>&1 &
	pids[$n]=$!
	for _ in $(seq 1 200); do
		ctl "${port[$n]}" -T 1000 ping >/dev/null 2>&1 && kill -0 "${pids[$n]}" 2>/dev/null && return 0
		if ! kill -0 "${pids[$n]}" 2>/dev/null; then
			echo "demo: $n exited during start-up (127.0.0.1:${port[$n]}); the end of $run/$n.log:" >&2
			tail -n 15 "$run/$n.log" >&2
			exit 1
		fi
		sleep 0.05
	done
	echo "demo: $n does not answer on 127.0.0.1:${port[$n]}; the end of $run/$n.log:" >&2
	tail -n 15 "$run/$n.log" >&2
	exit 1
}
start app-platform "$build/tests/peers/app-platform"
for n in $daemons; do start "$n" "$build/$n"; done

echo "== stbcred suite on loopback, port base $base (logs in $run/*.log)"
printf '%-12s %-16s %-10s %s\n' DAEMON ADDRESS PING READY
for n in $daemons; do
	p=$(ctl "${port[$n]}" ping 2>&1 || true)
	h=$(exec 3<>"/dev/tcp/127.0.0.1/$(hport "$n")" && printf 'GET /readyz HTTP/1.0\r\n\r\n' >&3 &&
		head -n 1 <&3 | cut -d' ' -f2- | tr -d '\r' || echo down)
	printf '%-12s %-16s %-10s %s\n' "$n" "127.0.0.1:${port[$n]}" "${p%% *}" "$h"
done

gw=127.0.0.1:${port[media-gw]}
echo
echo "== an STB without a certificate pings media-gw (pinned CA, TLS):"
"$client" -a "$gw" --ca "$pki/ca.crt" ping -n 3
echo
echo "== ca-authd accepts only certified peers; the same STB is refused:"
"$client" -a "127.0.0.1:${port[ca-authd]}" --ca "$pki/ca.crt" ping 2>&1 || true
echo
echo "== operator: note in media-gw's audit log, then verify the hash chain:"
ctl "${port[media-gw]}" audit note "demo run by $(id -un) at $(date -u +%FT%TZ)"
ctl "${port[media-gw]}" audit verify
echo
rc=0
STB_PKI=$pki STB_WORK=$run/flows \
	STB_CA=127.0.0.1:${port[ca-authd]} STB_CP=127.0.0.1:${port[cert-proxyd]} STB_GW=$gw \
	STB_RDV=127.0.0.1:${port[rendezvousd]} STB_KM=127.0.0.1:${port[keymgmtd]} \
	STB_QD=127.0.0.1:${port[qualifyd]} STB_AV=127.0.0.1:${port[appvetd]} \
	STB_CA_HTTP=127.0.0.1:$(hport ca-authd) STB_QD_REG=127.0.0.1:$((base + 16)) \
	STB_AV_CHECK=127.0.0.1:$((base + 27)) STB_PEER_PORT=$((base + 41)) \
	PATH=$build/src/stbctl:$build/src/stb-client:$PATH scripts/flows.sh || rc=$?
if [ $keep = 1 ]; then
	echo "Daemons keep running (TLS on 127.0.0.1:$((base + 1))..$((base + 7)), metrics on" \
		"http://127.0.0.1:$((base + 2001))..$((base + 2007))/metrics); Ctrl-C stops them."
	wait
fi
exit $rc
