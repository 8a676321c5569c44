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
# ca-authd makes the PKI; the running ca-authd uses that CA (run/pki/ca-authd-state)
[ -f "$run/pki/ca.crt" ] || scripts/pki-bootstrap.sh --ca-authd build/ca-authd "$run/pki" >/dev/null 2>&1
pki=$run/pki
daemons="ca-authd cert-proxyd media-gw rendezvousd keymgmtd qualifyd appvetd"
declare -A pids
cleanup() {
	for n in "${!pids[@]}"; do kill -TERM "${pids[$n]}" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

# flow settings per daemon: ca-authd runs on the PKI's CA; cert-proxyd and
# media-gw reach it on 7101; rendezvousd uses a quick scrypt for the demo
declare -A extra=(
	[ca-authd]="\"state_dir\": \"$pki/ca-authd-state\","
	[cert-proxyd]="\"state_dir\": \"$run/state/cert-proxyd\", \"ca\": { \"addr\": \"127.0.0.1:7101\" },"
	[media-gw]="\"state_dir\": \"$run/state/media-gw\", \"ca\": { \"addr\": \"127.0.0.1:7101\" },"
	[rendezvousd]="\"state_dir\": \"$run/state/rendezvousd\", \"kdf\": { \"scrypt_n\": 4096 },"
)
i=1
for n in $daemons; do
	cat > "$run/$n.json" <<JSON
{
  "listen": "127.0.0.1:710$i",
  "http_listen": "127.0.0.1:910$i",
  ${extra[$n]:-"\"state_dir\": \"$run/state/$n\","}
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
echo
client=build/src/stb-client/stb-client
echo "== flow A: certificate-proxied STB login"
secret=$(openssl rand -hex 32)
sub=demo-stb-$RANDOM
echo "$sub,$secret,1,$sub.media" >"$run/stbs.csv"
echo "$sub,$sub.media" >"$run/subs.csv"
ctl 7102 cp import "$run/stbs.csv"
ctl 7103 gw import "$run/subs.csv"
echo "-- first login: cert-proxyd has no certificate yet, so it fetches one from ca-authd"
STB_DEVICE_SECRET=$secret $client -a 127.0.0.1:7103 --ca "$pki/ca.crt" login --cp 127.0.0.1:7102 "$sub"
echo "-- second login: the stored certificate is valid"
out=$(STB_DEVICE_SECRET=$secret $client -a 127.0.0.1:7103 --ca "$pki/ca.crt" login --cp 127.0.0.1:7102 "$sub")
echo "$out"
tok=$(sed -n 's/.*token=\([0-9a-f]*\).*/\1/p' <<<"$out")
[ -z "$tok" ] || ctl 7103 gw introspect "$tok"
ctl 7102 cp certs --device "$sub"
ctl 7102 cp show "$sub.media" --pem >"$run/$sub.pem"
echo "-- openssl verify of the STB's certificate against the suite's CA, then OCSP at ca-authd:"
openssl verify -CAfile "$pki/ca.crt" -untrusted "$pki/ca-issuing.crt" "$run/$sub.pem"
openssl ocsp -issuer "$pki/ca-issuing.crt" -cert "$run/$sub.pem" -url http://127.0.0.1:9101/ocsp \
	-CAfile "$pki/ca.crt" 2>&1 | grep -v "^Response verify OK" | head -3
echo "-- a wrong device secret is refused:"
STB_DEVICE_SECRET=$(openssl rand -hex 32) $client -a 127.0.0.1:7103 --ca "$pki/ca.crt" \
	login --cp 127.0.0.1:7102 "$sub" 2>&1 || true
echo
echo "== flow B: two devices, a session code from rendezvousd, a TLS 1.3 PSK link"
a=demo-a-$RANDOM b=demo-b-$RANDOM
# provisioning shows each device's one-time enrolment code; its first
# registration proves it
ctl 7104 rdv provision "$a" | tee "$run/rdv-provision.txt"
ctl 7104 rdv provision "$b" | tee -a "$run/rdv-provision.txt"
code_of() { awk -v d="$1" '$1 == d { print $2 }' "$run/rdv-provision.txt"; }
STB_RDV_PASSWORD=password-of-b STB_RDV_ENROL_CODE=$(code_of "$b") $client -a 127.0.0.1:7104 \
	--ca "$pki/ca.crt" rdv-listen "$b" user-b 127.0.0.1:7411 >"$run/rdv-listen.log" 2>&1 &
lpid=$!
for _ in $(seq 1 100); do grep -q . "$run/rdv-listen.log" 2>/dev/null && break; sleep 0.1; done
sleep 0.5
echo "hello from $a" | STB_RDV_PASSWORD=password-of-a STB_RDV_ENROL_CODE=$(code_of "$a") \
	$client -a 127.0.0.1:7104 --ca "$pki/ca.crt" rdv-connect "$a" user-a 127.0.0.1:7412 "$b" 2>&1 ||
	true
kill "$lpid" 2>/dev/null || true
ctl 7104 rdv sessions --limit 3
echo
echo "Flows C (keymgmtd), D (qualifyd) and E (appvetd) run end to end in their integration"
echo "tests (ctest --test-dir build -R 'km|qd|av'); README.md shows each by hand."
if [ $keep = 1 ]; then
	echo "Daemons keep running (metrics on http://127.0.0.1:9101..9107/metrics); Ctrl-C stops them."
	wait
fi
