#!/usr/bin/env bash
# bench.sh [BUILD_DIR] [RUNS] [WHAT ...]: the issues' figures on this machine.
# Use an optimised build (cmake -DCMAKE_BUILD_TYPE=RelWithDebInfo).
# WHAT (default: all of them):
#   speed  the crypto bound (stb-bench speed) of this run
#   ping   media-gw (as any daemon) and `openssl s_server` with the same
#          certificate: PING/s over 64 established TLS connections, and new
#          TLS handshakes/s against both servers, alternating runs; full vs
#          resumed (session ticket) handshakes at media-gw, rates and CPU
#   resume the last of those alone (full vs resumed, CPU per connection of
#          stb-bench and of media-gw)
#   rdv    a fresh rendezvousd per run; 10,000 devices register and hold
#          control channels, 64 of them ask for sessions: grants/s, p50/p99
#          and the server's resident memory per device
#   login  ca-authd, cert-proxyd and media-gw: 64 simulated STBs log in over
#          and over with stb_login() (after a first login that fetches each
#          one's certificate): logins/s, p50/p99, next to the crypto bound of
#          one ECDSA P-256 sign + one verify measured in the same run
#   issue  ca-authd: CA_ISSUE from 16 connections: certificates/s, p50/p99,
#          alternating with Debian's `cfssl serve` (P-256 CA, SQLite certdb)
#          under `wrk -c16` POSTing a CSR to /api/v1/cfssl/sign; each
#          server's CPU per certificate and the ratio
#   ocsp   ca-authd /ocsp under `wrk -c16` POSTing one DER request without a
#          nonce (the cache answers), alternating with `cfssl ocspserve` on
#          responses `cfssl ocsprefresh`/`ocspdump` pre-signed; GET (RFC 5019
#          path) and a request with a nonce (signed each time, next to the
#          ECDSA P-256 sign bound on 2 cores); then ocsp.cache_size 0
#   keysync  keymgmtd and the reference app platform, fresh each run: 256
#          terminals (STB_BENCH_KS_TERMINALS) sync 20,000 fresh keys, each
#          terminal one sync at a time (all from 127.0.0.1, so keymgmtd runs
#          with max_connections_per_source 4096): durable binds/s, p50/p99, and
#          pushes/s stored and acknowledged by the platform, next to the crypto
#          bound measured in the same run: per bind HMAC verify + AES-GCM unseal
#          (the durable write is not crypto), per push the batch's CMS envelope
#          and the platform's opening divided by the batch size (push.batch 64;
#          the mean batch the platform saw is printed) + unseal + seal

#   bootstrap  flow D, fresh ca-authd (CA + OCSP) and qualifyd (three role
#          listeners) each run: stb-bench bootstrap -D 300 -c 16: bootstraps/s,
#          p50/p99, CPU per bootstrap by process, next to the crypto bound of
#          one bootstrap measured in the same run
#   appcheck  appvetd with one published SAFE app (apk's v1v2.apk fixture):
#          64 simulated TVs send APP_CHECK on the check listener: checks/s,
#          p50/p99, next to the ECDSA P-256 verify bound of all cores
#          measured in the same run; with the verified-payload cache (the
#          default), then again with check.cache_size 0; then the vetting
#          time of a 50 MiB APK next to `apksigner verify` of the same file
#   cluster-login  issue 14: stb-bench login (-c 16) and issue (-c 16) on
#          SQLite (the daemons above) and on PostgreSQL (scripts/cluster.sh
#          with one instance each, peers through HAProxy), then login through
#          HAProxy with 2 instances of each daemon: ops/s and the CPU per
#          operation of the daemons, HAProxy and PostgreSQL
# Prints each run and the medians.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
runs=${2:-3}
shift $(($# > 2 ? 2 : $#))
what=" ${*:-speed ping rdv login issue ocsp keysync bootstrap appcheck cluster-login} "
want() { [[ $what == *" $1 "* ]]; }
bench=$build/bench/stb-bench
need() {
	[ -x "$1" ] || { echo "bench.sh: $1 not built (cmake -S . -B $build && ninja -C $build)" >&2; exit 1; }
}
need "$bench"
if want ping || want resume; then need "$build/media-gw"; fi
if want rdv; then need "$build/rendezvousd"; fi
if want issue || want ocsp; then
	for b in cfssl cfssljson wrk sqlite3 curl; do
		command -v "$b" >/dev/null || { echo "bench.sh: needs $b" >&2; exit 1; }
	done
fi
if want login || want issue || want ocsp || want cluster-login; then
	for d in ca-authd cert-proxyd media-gw; do need "$build/$d"; done
fi
if want keysync; then need "$build/keymgmtd"; need "$build/tests/peers/app-platform"; fi
if want bootstrap; then need "$build/ca-authd"; need "$build/qualifyd"; fi

if want appcheck; then need "$build/appvetd"; need "$build/src/stbctl/stbctl"; fi
t=$(mktemp -d)
pids=()
cleanup() {
	local c
	for c in "$t"/cl[12].*; do [ ! -f "$c/cluster.env" ] || scripts/cluster.sh down "$c" >/dev/null 2>&1 || true; done
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$t"
}
trap cleanup EXIT
[ -z "${STB_BENCH_KEEP:-}" ] || echo "bench.sh: state in $t"
free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 12700))
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
	done
}
if want login || want issue || want ocsp || want cluster-login; then
	# ca-authd makes the PKI and, running on that state, is the suite's CA
	scripts/pki-bootstrap.sh --ca-authd "$build/ca-authd" "$t/pki" >/dev/null 2>&1
else
	scripts/pki-bootstrap.sh "$t/pki" >/dev/null
fi

field() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p"; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ca=(--ca "$t/pki/ca.crt")

if want speed; then
echo "== crypto bound (one thread): stb-bench speed"
"$bench" speed 2>&1 | sed 's/^/   /'
echo "   (cross-check: openssl speed -elapsed ecdsap256 ecdhx25519)"
fi

if want ping || want resume; then
gw=$(free_port)
ss=$(free_port)
cat > "$t/gw.json" <<JSON
{"listen": "127.0.0.1:$gw", "http_listen": "", "state_dir": "$t/state",
 "kek_file": "$t/pki/media-gw.kek",
 "tls": {"cert": "$t/pki/media-gw.crt", "key": "$t/pki/media-gw.key", "ca": "$t/pki/ca.crt"}}
JSON
"$build/media-gw" -c "$t/gw.json" >"$t/gw.log" 2>&1 &
gwpid=$!
pids+=($gwpid)
if want ping; then
# s_server: same key and chain; stdin held open so it does not spin at EOF
mkfifo "$t/in"
sleep 100000 >"$t/in" &
pids+=($!)
openssl s_server -quiet -accept "$ss" -cert "$t/pki/media-gw.crt" \
	-cert_chain "$t/pki/ca-issuing.crt" -key "$t/pki/media-gw.key" <"$t/in" >/dev/null 2>&1 &
pids+=($!)
sleep 1

echo "== PING over established TLS: stb-bench ping -c 64 -d 10"
for i in $(seq 1 "$runs"); do
	"$bench" ping -a "127.0.0.1:$gw" "${ca[@]}" -c 64 -d 10 --json 2>/dev/null >"$t/p.$i"
	printf '   run %d: %s req/s, p50 %s us, p99 %s us\n' "$i" "$(field requests_per_s <"$t/p.$i")" \
		"$(field p50 <"$t/p.$i")" "$(field p99 <"$t/p.$i")"
done
printf '   median: %s req/s\n' "$(for i in $(seq 1 "$runs"); do field requests_per_s <"$t/p.$i"; done | median)"

for c in 1 16; do
	echo "== new TLS handshakes/s, $c concurrent: stb-bench handshake -c $c -d 5"
	for i in $(seq 1 "$runs"); do
		"$bench" handshake -a "127.0.0.1:$gw" "${ca[@]}" -c "$c" -d 5 --json 2>/dev/null >"$t/hg.$c.$i"
		"$bench" handshake -a "127.0.0.1:$ss" "${ca[@]}" -c "$c" -d 5 --json 2>/dev/null >"$t/hs.$c.$i"
		printf '   run %d: media-gw %s/s   s_server %s/s\n' "$i" \
			"$(grep -o '"handshakes_per_s":[0-9.]*' "$t/hg.$c.$i" | cut -d: -f2)" \
			"$(grep -o '"handshakes_per_s":[0-9.]*' "$t/hs.$c.$i" | cut -d: -f2)"
	done
	printf '   median: media-gw %s/s   s_server %s/s\n' \
		"$(for i in $(seq 1 "$runs"); do grep -o '"handshakes_per_s":[0-9.]*' "$t/hg.$c.$i" | cut -d: -f2; done | median)" \
		"$(for i in $(seq 1 "$runs"); do grep -o '"handshakes_per_s":[0-9.]*' "$t/hs.$c.$i" | cut -d: -f2; done | median)"
done

fi
want ping || sleep 1 # media-gw's start

echo "== full vs resumed TLS 1.3 handshakes (session tickets), 16 clients: stb-bench handshake --resume -c 16 -d 10 (media-gw)"
for i in $(seq 1 "$runs"); do
	"$bench" handshake --resume -a "127.0.0.1:$gw" "${ca[@]}" -c 16 -d 10 --server-pid "$gwpid" \
		--json 2>/dev/null >"$t/hr.$i" || true
	printf '   run %d: full %s/s, resumed %s/s (%sx); CPU per connection, bench + media-gw: full %s ms, resumed %s ms (%sx)\n' "$i" \
		"$(field full_per_s <"$t/hr.$i")" "$(field resumed_per_s <"$t/hr.$i")" "$(field ratio <"$t/hr.$i")" \
		"$(field cpu_ms_full <"$t/hr.$i")" "$(field cpu_ms_resumed <"$t/hr.$i")" "$(field cpu_ratio <"$t/hr.$i")"
	printf '          by process: full %s + %s ms, resumed %s + %s ms\n' \
		"$(field cpu_ms_full_bench <"$t/hr.$i")" "$(field cpu_ms_full_server <"$t/hr.$i")" \
		"$(field cpu_ms_resumed_bench <"$t/hr.$i")" "$(field cpu_ms_resumed_server <"$t/hr.$i")"
done
printf '   median: resumed/full %sx by rate, %sx by CPU\n' \
	"$(for i in $(seq 1 "$runs"); do field ratio <"$t/hr.$i"; done | median)" \
	"$(for i in $(seq 1 "$runs"); do field cpu_ratio <"$t/hr.$i"; done | median)"
fi

if want rdv; then
echo "== rendezvousd: stb-bench rdv -D 10000 -c 64 -t 2 -d 10 (fresh daemon each run)"
echo "   scrypt N=1024 for the bench devices so 10,000 registrations take under a minute"
ulimit -n "$(ulimit -Hn)"
rp=$(free_port)
for i in $(seq 1 "$runs"); do
	cat > "$t/rdv.json" <<JSON
{"listen": "127.0.0.1:$rp", "http_listen": "", "state_dir": "$t/rdv.$i",
 "kek_file": "$t/pki/rendezvousd.kek", "kdf": {"scrypt_n": 1024}, "session_ttl_s": 1,
 "connect": {"per_minute": 6000000, "burst": 100000, "max_offers_per_pair": 1024,
  "max_offers_per_caller": 1024, "max_offers_per_target": 128},
 "tls": {"cert": "$t/pki/rendezvousd.crt", "key": "$t/pki/rendezvousd.key", "ca": "$t/pki/ca.crt"}}
JSON
	"$build/rendezvousd" -c "$t/rdv.json" >"$t/rdv.$i.log" 2>&1 &
	rpid=$!
	sleep 1
	"$bench" rdv -a "127.0.0.1:$rp" "${ca[@]}" --admin-cert "$t/pki/admin.crt" \
		--admin-key "$t/pki/admin.key" -D 10000 -c 64 -t 2 -d 10 --server-pid "$rpid" \
		--json 2>"$t/r.$i.err" >"$t/r.$i" || { echo "   run $i failed:"; cat "$t/r.$i.err"; }
	kill "$rpid"; wait "$rpid" 2>/dev/null || true
	printf '   run %d: %s grants/s, p50 %s us, p99 %s us; %s devices held, server RSS %s KiB -> %s KiB, %s KiB per device\n' \
		"$i" "$(field grants_per_s <"$t/r.$i")" "$(field p50_us <"$t/r.$i")" "$(field p99_us <"$t/r.$i")" \
		"$(field registered <"$t/r.$i")" "$(field server_rss_kib_before <"$t/r.$i")" \
		"$(field server_rss_kib_held <"$t/r.$i")" "$(field server_kib_per_device <"$t/r.$i")"
done
printf '   median: %s grants/s, %s KiB per device\n' \
	"$(for i in $(seq 1 "$runs"); do field grants_per_s <"$t/r.$i"; done | median)" \
	"$(for i in $(seq 1 "$runs"); do field server_kib_per_device <"$t/r.$i"; done | median)"
fi

if want login || want issue || want ocsp || want cluster-login; then
	cap=$(free_port)
	cah=$(free_port)
	cpp=$(free_port)
	gwp=$(free_port)
	start() { # NAME PORT EXTRA_JSON [HTTP_LISTEN [STATE_DIR]]
		cat > "$t/$1.json" <<JSON
{"listen": "127.0.0.1:$2", "http_listen": "${4:-}", "state_dir": "${5:-$t/state-$1}",
 "kek_file": "$t/pki/$1.kek", $3
 "tls": {"cert": "$t/pki/$1.crt", "key": "$t/pki/$1.key", "ca": "$t/pki/ca.crt"}}
JSON
		"$build/$1" -c "$t/$1.json" >"$t/$1.log" 2>&1 &
		pids+=($!)
	}
	start ca-authd "$cap" "" "127.0.0.1:$cah" "$t/pki/ca-authd-state"
	capid=${pids[-1]}
	up() { for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.05; done; }
	start cert-proxyd "$cpp" "\"ca\": {\"addr\": \"127.0.0.1:$cap\"},"
	cppid=${pids[-1]}
	start media-gw "$gwp" "\"ca\": {\"addr\": \"127.0.0.1:$cap\"},"
	gwpid=${pids[-1]}
	up "$cap"
	up "$cpp"
	up "$gwp"
	speedj() { "$bench" speed --json 2>/dev/null | sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p"; }
fi

if want login; then
	echo "== flow A login: stb-bench login -c 64 -d 10 (ca-authd, cert-proxyd, media-gw and the bench on this machine)"
	for i in $(seq 1 "$runs"); do
		"$bench" login -a "127.0.0.1:$gwp" --cp "127.0.0.1:$cpp" "${ca[@]}" \
			--admin-cert "$t/pki/admin.crt" --admin-key "$t/pki/admin.key" -c 64 -d 10 --json \
			2>"$t/l.$i.err" >"$t/l.$i" || { echo "   run $i failed:"; cat "$t/l.$i.err"; }
		b=$(speedj bound_login_per_core_s)
		r=$(field per_s <"$t/l.$i")
		echo "$b" >"$t/lb.$i"
		awk -v r="${r:-0}" -v b="$b" 'BEGIN { printf "%.1f\n", 100 * r / b }' >"$t/lp.$i"
		printf '   run %d: %s logins/s, p50 %s us, p99 %s us; bound (1 sign + 1 verify) %s/s per core (%s%%), %s/s on 2 cores\n' \
			"$i" "$r" "$(field p50_us <"$t/l.$i")" "$(field p99_us <"$t/l.$i")" \
			"$b" "$(cat "$t/lp.$i")" "$((${b%.*} * 2))"
	done
	printf '   median: %s logins/s; bound median %s/s per core; median of the per-run shares %s%%\n' \
		"$(for i in $(seq 1 "$runs"); do field per_s <"$t/l.$i"; done | median)" \
		"$(for i in $(seq 1 "$runs"); do cat "$t/lb.$i"; done | median)" \
		"$(for i in $(seq 1 "$runs"); do cat "$t/lp.$i"; done | median)"
fi

# The peers of issue and ocsp: Debian's cfssl with its own P-256 CA, OCSP
# responder and SQLite certdb (schema: bench/cfssl-certdb.sql, the migration
# of the golang-cfssl Debian ships), driven by wrk like ca-authd's /ocsp.
tck=$(getconf CLK_TCK)
cpu_ticks() { # PID: user+system ticks of it and its children (ca-authd's signer)
	local s=0 p
	[ -n "$1" ] || { echo 0; return; }
	for p in "$1" $(pgrep -P "$1" 2>/dev/null || true); do
		s=$((s + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
	done
	echo "$s"
}
us_per() { awk -v t="$1" -v k="$tck" -v n="$2" 'BEGIN { printf "%.1f\n", (n > 0 ? t / k * 1e6 / n : 0) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f\n", (b > 0 ? a / b : 0) }'; }
wrk_run() { # OUT URL [BODY TYPE]: wrk -t2 -c16 -d10s (POST of BODY when given); OUT: "req/s requests"
	local out=$1 url=$2
	if [ -n "${3:-}" ]; then
		WRK_BODY=$3 WRK_TYPE=$4 wrk -t2 -c16 -d10s -s bench/wrk-post.lua "$url" >"$out.txt" 2>&1 || true
	else
		wrk -t2 -c16 -d10s "$url" >"$out.txt" 2>&1 || true
	fi
	! grep -q "Non-2xx" "$out.txt" || echo "   wrk: $(grep Non-2xx "$out.txt") from $url" >&2
	echo "$(awk '/Requests\/sec/ {print $2}' "$out.txt") $(awk '/requests in/ {print $1}' "$out.txt")" >"$out"
}
if want issue || want ocsp; then
	cf=$t/cf
	mkdir -p "$cf"
	(
		cd "$cf"
		echo '{"CN":"bench cfssl CA","key":{"algo":"ecdsa","size":256}}' | cfssl genkey -initca - 2>/dev/null | cfssljson -bare ca
		cat >cfg.json <<'JSON'
{"signing": {"default": {"expiry": "720h", "usages": ["digital signature", "client auth"]},
 "profiles": {"ocsp": {"expiry": "720h", "usages": ["digital signature", "ocsp signing"]}}}}
JSON
		echo '{"CN":"bench cfssl OCSP","key":{"algo":"ecdsa","size":256}}' |
			cfssl gencert -ca ca.pem -ca-key ca-key.pem -config cfg.json -profile ocsp - 2>/dev/null | cfssljson -bare ocsp
		echo '{"CN":"stb-bench","key":{"algo":"ecdsa","size":256}}' | cfssl genkey - 2>/dev/null | cfssljson -bare leaf
		python3 -c 'import json; print(json.dumps({"certificate_request": open("leaf.csr").read()}))' >sign.json
		printf '{"driver": "sqlite3", "data_source": "%s/certs.db"}\n' "$cf" >db.json
	)
	sqlite3 "$cf/certs.db" <bench/cfssl-certdb.sql
	cfp=$(free_port)
	cfssl serve -port "$cfp" -ca "$cf/ca.pem" -ca-key "$cf/ca-key.pem" -config "$cf/cfg.json" \
		-db-config "$cf/db.json" -responder "$cf/ocsp.pem" -responder-key "$cf/ocsp-key.pem" \
		-loglevel 3 >"$t/cfssl-serve.log" 2>&1 &
	cfpid=$!
	pids+=($cfpid)
	up "$cfp"
fi

if want issue; then
	echo "== issuing (CSR verify + sign + durable record each): ca-authd, stb-bench issue -c 16 -d 10, vs cfssl serve + SQLite certdb, wrk -c16 -d10s POST /api/v1/cfssl/sign; alternating; CPU per certificate of each server"
	for i in $(seq 1 "$runs"); do
		c0=$(cpu_ticks "$capid")
		"$bench" issue -a "127.0.0.1:$cap" "${ca[@]}" --cert "$t/pki/admin.crt" --key "$t/pki/admin.key" \
			-c 16 -d 10 --json 2>"$t/i.$i.err" >"$t/i.$i" || { echo "   run $i failed:"; cat "$t/i.$i.err"; tail -n 5 "$t/ca-authd.log"; }
		c1=$(cpu_ticks "$capid")
		r=$(field per_s <"$t/i.$i")
		us_per $((c1 - c0)) "$(awk -v r="${r:-0}" 'BEGIN { print r * 10 }')" >"$t/iu.$i"
		c0=$(cpu_ticks "$cfpid")
		wrk_run "$t/cs.$i" "http://127.0.0.1:$cfp/api/v1/cfssl/sign" "$cf/sign.json" application/json
		c1=$(cpu_ticks "$cfpid")
		read -r cr cn <"$t/cs.$i"
		us_per $((c1 - c0)) "${cn:-0}" >"$t/cu.$i"
		ratio "${r:-0}" "${cr:-0}" >"$t/ir.$i"
		printf '   run %d: ca-authd %s certificates/s (p50 %s us, p99 %s us; %s us CPU each)   cfssl serve %s/s (%s us CPU each)   ratio %s\n' \
			"$i" "$r" "$(field p50_us <"$t/i.$i")" "$(field p99_us <"$t/i.$i")" "$(cat "$t/iu.$i")" \
			"$cr" "$(cat "$t/cu.$i")" "$(cat "$t/ir.$i")"
	done
	printf '   median: ca-authd %s certificates/s (%s us CPU each)   cfssl serve %s/s (%s us CPU each)   median ratio %s\n' \
		"$(for i in $(seq 1 "$runs"); do field per_s <"$t/i.$i"; done | median)" \
		"$(for i in $(seq 1 "$runs"); do cat "$t/iu.$i"; done | median)" \
		"$(for i in $(seq 1 "$runs"); do cut -d' ' -f1 "$t/cs.$i"; done | median)" \
		"$(for i in $(seq 1 "$runs"); do cat "$t/cu.$i"; done | median)" \
		"$(for i in $(seq 1 "$runs"); do cat "$t/ir.$i"; done | median)"
fi

if want ocsp; then
	# one certificate of each CA to ask about, and cfssl's answers pre-signed
	curl -s -d @"$cf/sign.json" "http://127.0.0.1:$cfp/api/v1/cfssl/sign" |
		python3 -c 'import json, sys; print(json.load(sys.stdin)["result"]["certificate"])' >"$cf/leaf.pem"
	cfssl ocsprefresh -db-config "$cf/db.json" -ca "$cf/ca.pem" -responder "$cf/ocsp.pem" \
		-responder-key "$cf/ocsp-key.pem" -loglevel 3
	cfssl ocspdump -db-config "$cf/db.json" >"$cf/responses"
	osp=$(free_port)
	cfssl ocspserve -port "$osp" -responses "$cf/responses" -loglevel 3 >"$t/ocspserve.log" 2>&1 &
	ospid=$!
	pids+=($ospid)
	openssl ocsp -issuer "$cf/ca.pem" -cert "$cf/leaf.pem" -no_nonce -reqout "$cf/req.der" >/dev/null 2>&1
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$t/oleaf.key" 2>/dev/null
	openssl req -new -key "$t/oleaf.key" -subj "/CN=ignored" -out "$t/oleaf.csr"
	"$build/src/stbctl/stbctl" -a "127.0.0.1:$cap" "${ca[@]}" --cert "$t/pki/admin.crt" \
		--key "$t/pki/admin.key" ca issue --csr "$t/oleaf.csr" --profile stb-media \
		--device stb-ocsp-bench --cert-id ocsp-bench --out "$t/oleaf.pem" >/dev/null
	chain=$t/pki/ca-authd-state/chain-issuing.pem
	openssl ocsp -issuer "$chain" -cert "$t/oleaf.pem" -no_nonce -reqout "$t/oreq.der" >/dev/null 2>&1
	openssl ocsp -issuer "$chain" -cert "$t/oleaf.pem" -reqout "$t/oreqn.der" >/dev/null 2>&1
	get=/ocsp/$(base64 -w0 "$t/oreq.der" | python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.stdin.read(), safe=""))')
	sleep 1
	ocsp_run() { # PID TAG URL [BODY]: $t/o.TAG.$i gets "req/s us-CPU-per-answer"
		local pid=$1 tag=$2 c0 c1 r n
		c0=$(cpu_ticks "$pid")
		wrk_run "$t/o.$tag.$i" "$3" "${4:-}" application/ocsp-request
		c1=$(cpu_ticks "$pid")
		read -r r n <"$t/o.$tag.$i"
		echo "${r:-0} $(us_per $((c1 - c0)) "${n:-0}")" >"$t/o.$tag.$i"
	}
	sfield() { cut -d' ' -f"$1" "$2"; }
	med() { for i in $(seq 1 "$runs"); do sfield "$1" "$t/o.$2.$i"; done | median; }
	echo "== OCSP, wrk -t2 -c16 -d10s: ca-authd /ocsp (no nonce: the cache; GET per RFC 5019; with a nonce: signed each time) vs cfssl ocspserve (pre-signed by ocsprefresh), alternating; CPU per answer of each server; sign bound: stb-bench speed in the same run"
	for i in $(seq 1 "$runs"); do
		ocsp_run "$capid" post "http://127.0.0.1:$cah/ocsp" "$t/oreq.der"
		ocsp_run "$ospid" cf "http://127.0.0.1:$osp/" "$cf/req.der"
		ocsp_run "$capid" get "http://127.0.0.1:$cah$get"
		ocsp_run "$capid" nonce "http://127.0.0.1:$cah/ocsp" "$t/oreqn.der"
		b=$(speedj ecdsa_p256_sign_per_s)
		echo "$((${b%.*} * 2))" >"$t/ob.$i"
		ratio "$(sfield 1 "$t/o.post.$i")" "$(sfield 1 "$t/o.cf.$i")" >"$t/or.$i"
		awk -v r="$(sfield 1 "$t/o.nonce.$i")" -v b="$(cat "$t/ob.$i")" 'BEGIN { printf "%.1f\n", (b > 0 ? 100 * r / b : 0) }' >"$t/on.$i"
		printf '   run %d: ca-authd POST %s/s (%s us CPU each), GET %s/s (%s us)   cfssl ocspserve POST %s/s (%s us)   ratio %s\n' \
			"$i" "$(sfield 1 "$t/o.post.$i")" "$(sfield 2 "$t/o.post.$i")" "$(sfield 1 "$t/o.get.$i")" \
			"$(sfield 2 "$t/o.get.$i")" "$(sfield 1 "$t/o.cf.$i")" "$(sfield 2 "$t/o.cf.$i")" "$(cat "$t/or.$i")"
		printf '          with a nonce %s/s (%s us CPU each); ECDSA P-256 sign bound on 2 cores %s/s (%s%%)\n' \
			"$(sfield 1 "$t/o.nonce.$i")" "$(sfield 2 "$t/o.nonce.$i")" "$(cat "$t/ob.$i")" "$(cat "$t/on.$i")"
	done
	printf '   median: ca-authd POST %s/s (%s us CPU), GET %s/s (%s us)   cfssl ocspserve %s/s (%s us)   median ratio %s\n' \
		"$(med 1 post)" "$(med 2 post)" "$(med 1 get)" "$(med 2 get)" "$(med 1 cf)" "$(med 2 cf)" \
		"$(for i in $(seq 1 "$runs"); do cat "$t/or.$i"; done | median)"
	printf '   median: with a nonce %s/s (%s us CPU); sign bound %s/s on 2 cores; median share %s%%\n' \
		"$(med 1 nonce)" "$(med 2 nonce)" "$(for i in $(seq 1 "$runs"); do cat "$t/ob.$i"; done | median)" \
		"$(for i in $(seq 1 "$runs"); do cat "$t/on.$i"; done | median)"
	# the same without the cache (every answer signed): ca-authd restarted
	kill "$capid"
	while kill -0 "$capid" 2>/dev/null; do sleep 0.1; done
	sed -i 's|^ "tls"| "ocsp": {"cache_size": 0},\n "tls"|' "$t/ca-authd.json"
	"$build/ca-authd" -c "$t/ca-authd.json" >>"$t/ca-authd.log" 2>&1 &
	capid=$!
	pids+=($capid)
	up "$cah"
	echo "== OCSP without the cache (ocsp.cache_size 0: every answer signed), same wrk POST"
	for i in $(seq 1 "$runs"); do
		ocsp_run "$capid" off "http://127.0.0.1:$cah/ocsp" "$t/oreq.der"
		printf '   run %d: ca-authd POST, uncached %s/s (%s us CPU each)\n' "$i" \
			"$(sfield 1 "$t/o.off.$i")" "$(sfield 2 "$t/o.off.$i")"
	done
	printf '   median: %s/s (%s us CPU each)\n' "$(med 1 off)" "$(med 2 off)"
fi

if want keysync; then
	kc=${STB_BENCH_KS_TERMINALS:-256}
	echo "== flow C key sync: stb-bench keysync -c $kc -n 20000 (keymgmtd, the reference app platform and the bench on this machine; fresh daemons each run)"
	cadm=()
	[ ! -f "$t/pki/ca-authd-pki.json" ] || cadm=(--ca-authd "$build/ca-authd")
	[ -f "$t/pki/app-platform.crt" ] ||
		scripts/pki-bootstrap.sh "${cadm[@]}" --reissue "$t/pki" app-platform >/dev/null
	[ -f "$t/pki/app-platform.kek" ] || (umask 077 && openssl rand -hex 32 >"$t/pki/app-platform.kek")
	kmp=$(free_port)
	app=$(free_port)
	for i in $(seq 1 "$runs"); do
		cat > "$t/ap.json" <<JSON
{"listen": "127.0.0.1:$app", "http_listen": "", "state_dir": "$t/ap.$i",
 "kek_file": "$t/pki/app-platform.kek", "client_auth": "require",
 "tls": {"cert": "$t/pki/app-platform.crt", "key": "$t/pki/app-platform.key", "ca": "$t/pki/ca.crt"}}
JSON
		printf '{"bench.app": {"address": "127.0.0.1:%s", "ca": "%s", "cert": "%s"}}\n' \
			"$app" "$t/pki/ca.crt" "$t/pki/app-platform.crt" >"$t/platforms.json"
		cat > "$t/km.json" <<JSON
{"listen": "127.0.0.1:$kmp", "http_listen": "", "state_dir": "$t/km.$i",
 "kek_file": "$t/pki/keymgmtd.kek", "platforms_file": "$t/platforms.json",
 "push": {"window": 1024, "poll_ms": 100, "batch": 64}, "max_connections_per_source": 4096,
 "tls": {"cert": "$t/pki/keymgmtd.crt", "key": "$t/pki/keymgmtd.key", "ca": "$t/pki/ca.crt"}}
JSON
		"$build/tests/peers/app-platform" -c "$t/ap.json" >"$t/ap.$i.log" 2>&1 &
		appid=$!
		"$build/keymgmtd" -c "$t/km.json" >"$t/km.$i.log" 2>&1 &
		kmpid=$!
		sleep 1
		"$bench" keysync -a "127.0.0.1:$kmp" "${ca[@]}" --admin-cert "$t/pki/admin.crt" \
			--admin-key "$t/pki/admin.key" --app bench.app --platform "127.0.0.1:$app" \
			--platform-cert "$t/pki/app-platform.crt" --platform-key "$t/pki/app-platform.key" \
			--push-batch 64 -c "$kc" -n 20000 --server-pid "$kmpid" --json 2>"$t/k.$i.err" >"$t/k.$i" || { echo "   run $i failed:"; cat "$t/k.$i.err"; }
		kill "$kmpid" "$appid"; wait "$kmpid" "$appid" 2>/dev/null || true
		mean=$(sqlite3 "$t/ap.$i/app-platform.db" 'SELECT printf("%.1f", avg(count)) FROM batches' 2>/dev/null || echo "?")
		printf '   run %d: %s binds/s, p50 %s us, p99 %s us; %s pushes/s acknowledged by the platform (mean batch %s keys); CPU per sync: keymgmtd %s us, bench %s us\n' \
			"$i" "$(field binds_per_s <"$t/k.$i")" "$(field p50 <"$t/k.$i")" "$(field p99 <"$t/k.$i")" \
			"$(field pushes_per_s <"$t/k.$i")" "${mean:-?}" "$(field server <"$t/k.$i")" "$(field bench <"$t/k.$i")"
		printf '      bound per bind: HMAC %s us + unseal %s us = %s us (%s binds/s per core; the durable write is not crypto, not counted)\n' \
			"$(field hmac_verify_us <"$t/k.$i")" "$(field unseal_us <"$t/k.$i")" \
			"$(field bind_crypto_us <"$t/k.$i")" "$(field bind_bound_one_core <"$t/k.$i")"
		printf '      bound per push (batches of %s): envelope %s us + platform open %s us (per key) + unseal + platform seal %s us = %s us (%s pushes/s per core); together %s syncs/s per core, %s on %s cores\n' \
			"$(field batch <"$t/k.$i")" "$(field envelope_us <"$t/k.$i")" "$(field platform_open_us <"$t/k.$i")" \
			"$(field platform_seal_us <"$t/k.$i")" "$(field push_crypto_us <"$t/k.$i")" \
			"$(field push_bound_one_core <"$t/k.$i")" "$(field syncs_per_s_one_core <"$t/k.$i")" \
			"$(field syncs_per_s <"$t/k.$i")" "$(field cores <"$t/k.$i")"
	done
	printf '   median: %s binds/s, %s pushes/s, keymgmtd %s us CPU per sync; bound median %s syncs/s per core\n' \
		"$(for i in $(seq 1 "$runs"); do field binds_per_s <"$t/k.$i"; done | median)" \
		"$(for i in $(seq 1 "$runs"); do field pushes_per_s <"$t/k.$i"; done | median)" \
		"$(for i in $(seq 1 "$runs"); do field server <"$t/k.$i"; done | median)" \
		"$(for i in $(seq 1 "$runs"); do field syncs_per_s_one_core <"$t/k.$i"; done | median)"
fi

if want bootstrap; then
	# a PKI of its own made by ca-authd, copied for each run's fresh CA
	scripts/pki-bootstrap.sh --ca-authd "$build/ca-authd" "$t/bpki" >/dev/null 2>&1
	cat "$t/bpki/ca.crt" "$t/bpki/ca-issuing.crt" >"$t/bpki/mfr-ca.pem"
	bd=${STB_BENCH_BOOT_DEVICES:-300}
	bc=${STB_BENCH_BOOT_THREADS:-16}
	echo "== flow D bootstrap: stb-bench bootstrap -D $bd -c $bc (ca-authd, qualifyd with three role listeners and the bench on this machine; fresh daemons each run)"
	for i in $(seq 1 "$runs"); do
		p=$t/boot.$i
		cp -a "$t/bpki" "$p"
		cap=$(free_port) cah=$(free_port) qdp=$(free_port)
		reg=$(free_port) cred=$(free_port) prov=$(free_port)
		cat >"$p/ca.json" <<JSON
{"listen": "127.0.0.1:$cap", "http_listen": "127.0.0.1:$cah", "state_dir": "$p/ca-authd-state",
 "kek_file": "$p/ca-authd.kek",
 "tls": {"cert": "$p/ca-authd.crt", "key": "$p/ca-authd.key", "ca": "$p/ca.crt"}}
JSON
		dl() { # NAME PORT MESSAGES
			printf '{"name": "%s", "listen": "127.0.0.1:%s", "client_auth": "require", "tls": {"ca": "%s"}, "roles": "device", "messages": "PING,%s"}' \
				"$1" "$2" "$p/mfr-ca.pem" "$3"
		}
		cat >"$p/qd.json" <<JSON
{"listen": "127.0.0.1:$qdp", "http_listen": "", "state_dir": "$p/qd-state",
 "kek_file": "$p/qualifyd.kek",
 "tls": {"cert": "$p/qualifyd.crt", "key": "$p/qualifyd.key", "ca": "$p/ca.crt"},
 "listeners": [$(dl registration "$reg" QD_REGISTER), $(dl credentialing "$cred" QD_CRED_REQ),
   $(dl provisioning "$prov" QD_PKG_FETCH,QD_PKG_CONFIRM)],
 "roles": "registration,credentialing,provisioning", "device_ca": "$p/mfr-ca.pem",
 "operator": {"cert": "$p/qualifyd.crt", "key": "$p/qualifyd.key"},
 "cred_address": "127.0.0.1:$cred", "prov_address": "127.0.0.1:$prov",
 "ocsp": {"url": "http://127.0.0.1:$cah/ocsp"}}
JSON
		"$build/ca-authd" -c "$p/ca.json" >"$p/ca.log" 2>&1 &
		capid=$!
		"$build/qualifyd" -c "$p/qd.json" >"$p/qd.log" 2>&1 &
		qdpid=$!
		pids+=($capid $qdpid)
		for _ in $(seq 1 100); do
			(exec 3<>"/dev/tcp/127.0.0.1/$reg") 2>/dev/null && (exec 3<>"/dev/tcp/127.0.0.1/$cap") 2>/dev/null && break
			sleep 0.1
		done
		# STB_BENCH_PERF_DIR: perf record -g of qualifyd, ca-authd and the bench
		prof=() perfs=()
		if [ -n "${STB_BENCH_PERF_DIR:-}" ]; then
			for n in qualifyd:$qdpid ca-authd:$capid; do
				perf record -F 499 --call-graph "${STB_BENCH_PERF_CG:-fp}" -p "${n#*:}" -o "$STB_BENCH_PERF_DIR/${n%:*}.$i.data" >/dev/null 2>&1 &
				perfs+=($!)
			done
			prof=(perf record -F 499 --call-graph "${STB_BENCH_PERF_CG:-fp}" -o "$STB_BENCH_PERF_DIR/stb-bench.$i.data" --)
		fi
		STB_BENCH_CPU_PIDS="$qdpid $capid $(pgrep -P "$capid" | tr '\n' ' ')" \
			"${prof[@]}" "$bench" bootstrap -a "127.0.0.1:$reg" --admin-addr "127.0.0.1:$qdp" \
			--ca "$p/ca.crt" --admin-cert "$p/admin.crt" --admin-key "$p/admin.key" \
			--ca-addr "127.0.0.1:$cap" --operator-ca "$p/ca.crt" --ocsp "http://127.0.0.1:$cah/ocsp" \
			-D "$bd" -c "$bc" --json 2>"$t/b.$i.err" >"$t/b.$i" || { echo "   run $i failed:"; cat "$t/b.$i.err"; }
		for pp in "${perfs[@]}"; do kill -INT "$pp" 2>/dev/null || true; wait "$pp" 2>/dev/null || true; done
		kill "$qdpid" "$capid" 2>/dev/null || { echo "   run $i: a daemon died:"; tail -n 5 "$p/qd.log" "$p/ca.log"; }
		wait "$qdpid" "$capid" 2>/dev/null || true
		awk -v r="$(field of_bound <"$t/b.$i")" 'BEGIN { printf "%.1f\n", 100 * r }' >"$t/bp.$i"
		printf '   run %d: %s bootstraps/s, p50 %s us, p99 %s us; %s handshakes each; crypto bound %s/s on %s cores (%s%%)\n' \
			"$i" "$(field per_s <"$t/b.$i")" "$(field p50_us <"$t/b.$i")" "$(field p99_us <"$t/b.$i")" \
			"$(field handshakes_per_bootstrap <"$t/b.$i")" "$(field bound_per_s <"$t/b.$i")" \
			"$(field cores <"$t/b.$i")" "$(cat "$t/bp.$i")"
		printf '          CPU per bootstrap %s ms (crypto in it %s ms): %s\n' "$(field cpu_ms_per_bootstrap <"$t/b.$i")" \
			"$(field crypto_ms_per_bootstrap <"$t/b.$i")" \
			"$(sed -n 's/.*"cpu_ms_per_bootstrap_by_process":{\([^}]*\)}.*/\1/p' "$t/b.$i" | tr -d '"')"
		rm -rf "$p"
	done
	printf '   median: %s bootstraps/s, %s ms CPU per bootstrap (crypto %s ms); bound median %s/s; median of the per-run shares %s%%\n' \
		"$(for i in $(seq 1 "$runs"); do field per_s <"$t/b.$i"; done | median)" \
		"$(for i in $(seq 1 "$runs"); do field cpu_ms_per_bootstrap <"$t/b.$i"; done | median)" \
		"$(for i in $(seq 1 "$runs"); do field crypto_ms_per_bootstrap <"$t/b.$i"; done | median)" \
		"$(for i in $(seq 1 "$runs"); do field bound_per_s <"$t/b.$i"; done | median)" \
		"$(for i in $(seq 1 "$runs"); do cat "$t/bp.$i"; done | median)"
fi

if want appcheck; then
	fx=$build/apk-fixtures
	if [ ! -f "$fx/v1v2.apk" ]; then
		fx=$t/apk-fixtures
		bash tests/fixtures/make-apks.sh "$fx" >/dev/null
	fi
	avp=$(free_port)
	chk=$(free_port)
	cat > "$t/appvetd.json" <<JSON
{"listen": "127.0.0.1:$avp", "http_listen": "", "state_dir": "$t/state-appvetd",
 "kek_file": "$t/pki/appvetd.kek",
 "listeners": [{"name": "check", "listen": "127.0.0.1:$chk", "client_auth": "none",
                "messages": "APP_CHECK,APP_INDEX_EXPORT"}],
 "tls": {"cert": "$t/pki/appvetd.crt", "key": "$t/pki/appvetd.key", "ca": "$t/pki/ca.crt"}}
JSON
	"$build/appvetd" -c "$t/appvetd.json" >"$t/appvetd.log" 2>&1 &
	avpid=$!
	pids+=($avpid)
	sleep 1
	app() { "$build/src/stbctl/stbctl" -a "127.0.0.1:$avp" "${ca[@]}" --cert "$t/pki/admin.crt" \
		--key "$t/pki/admin.key" app "$@"; }
	jget() { /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
	id=$(app submit "$fx/v1v2.apk" --name bench.player --version 1.0)
	for _ in $(seq 1 200); do [ "$(app show "$id" --json | jget state)" = vetted ] && break; sleep 0.05; done
	payload=$(app publish "$id" --json | jget payload)
	appcheck_runs() { # TAG: $runs runs against appvetd ($avpid), then their medians
	local tag=$1
	for i in $(seq 1 "$runs"); do
		"$bench" appcheck -a "127.0.0.1:$chk" "${ca[@]}" --payload "$payload" -c 64 -d 10 \
			--server-pid "$avpid" --json \
			2>"$t/a.$i.err" >"$t/a.$i" || { echo "   run $i failed:"; cat "$t/a.$i.err"; }
		awk -v r="$(field of_bound <"$t/a.$i")" 'BEGIN { printf "%.1f\n", 100 * r }' >"$t/apct.$i"
		awk -v r="$(field of_cpu_bound <"$t/a.$i")" 'BEGIN { printf "%.1f\n", 100 * r }' >"$t/ac.$i"
		printf '   run %d: %s checks/s, p50 %s us, p99 %s us; ECDSA P-256 verify bound %s/s on %s cores (%s%%)\n' \
			"$i" "$(field per_s <"$t/a.$i")" "$(field p50_us <"$t/a.$i")" "$(field p99_us <"$t/a.$i")" \
			"$(field bound_verify_per_s <"$t/a.$i")" "$(field cores <"$t/a.$i")" "$(cat "$t/apct.$i")"
		printf '          appvetd: %s checks per CPU-second, bound %s verifies per CPU-second (%s%%)\n' \
			"$(field server_checks_per_cpu_s <"$t/a.$i")" "$(field bound_verify_per_cpu_s <"$t/a.$i")" \
			"$(cat "$t/ac.$i")"
	done
	printf '   median per CPU-second: %s checks, bound %s verifies; median of the per-run shares %s%%\n' \
		"$(for i in $(seq 1 "$runs"); do field server_checks_per_cpu_s <"$t/a.$i"; done | median)" \
		"$(for i in $(seq 1 "$runs"); do field bound_verify_per_cpu_s <"$t/a.$i"; done | median)" \
		"$(for i in $(seq 1 "$runs"); do cat "$t/ac.$i"; done | median)"
	printf '   median: %s checks/s, p50 %s us, p99 %s us; bound median %s/s; median of the per-run shares %s%%\n' \
		"$(for i in $(seq 1 "$runs"); do field per_s <"$t/a.$i"; done | median)" \
		"$(for i in $(seq 1 "$runs"); do field p50_us <"$t/a.$i"; done | median)" \
		"$(for i in $(seq 1 "$runs"); do field p99_us <"$t/a.$i"; done | median)" \
		"$(for i in $(seq 1 "$runs"); do field bound_verify_per_s <"$t/a.$i"; done | median)" \
		"$(for i in $(seq 1 "$runs"); do cat "$t/apct.$i"; done | median)"
	cp "$t/a.$(((runs + 1) / 2))" "$t/a.$tag"
	}
	echo "== flow E check: stb-bench appcheck -c 64 -d 10 (appvetd and the bench on this machine); every TV shows the same app, so its payload is verified once (check.cache_size)"
	appcheck_runs cached
	# the same state without the cache: every check verifies
	kill "$avpid"
	wait "$avpid" 2>/dev/null || true
	sed -i 's/^ "kek_file"/ "check": {"cache_size": 0},\n "kek_file"/' "$t/appvetd.json"
	"$build/appvetd" -c "$t/appvetd.json" >>"$t/appvetd.log" 2>&1 &
	avpid=$!
	pids+=($avpid)
	sleep 1
	echo "== flow E check without the cache (check.cache_size 0: one verify per check), same client"
	appcheck_runs uncached
	# vetting a 50 MiB APK (make-apks.sh --big: 50 MiB of incompressible
	# assets) next to apksigner verify on the same file
	if [ ! -f "$fx/big.apk" ]; then
		bash tests/fixtures/make-apks.sh "$t/apk-big" --big >/dev/null
		fx=$t/apk-big
	fi
	mib=$(awk -v b="$(stat -c %s "$fx/big.apk")" 'BEGIN { printf "%.1f", b / 1048576 }')
	echo "== flow E vetting: big.apk ($mib MiB) submitted, then analysed by appvetd (submit returns, state polled every 10 ms until vetted) vs apksigner verify"
	for i in $(seq 1 "$runs"); do
		s0=$(date +%s%N)
		bid=$(app submit "$fx/big.apk" --name "bench.big$i" --version 1.0)
		s1=$(date +%s%N)
		while [ "$(app show "$bid" --json | jget state)" != vetted ]; do sleep 0.01; done
		s2=$(date +%s%N)
		apksigner verify "$fx/big.apk" >/dev/null 2>&1 || echo "   apksigner verify refused big.apk"
		s3=$(date +%s%N)
		awk -v u=$((s1 - s0)) -v v=$((s2 - s1)) -v a=$((s3 - s2)) -v m="$mib" 'BEGIN {
			printf "   run %d: upload %.0f ms; vetting %.0f ms (%.1f ms per MiB); apksigner verify %.0f ms (%.1f ms per MiB, JVM start included)\n",
				'"$i"', u / 1e6, v / 1e6, v / 1e6 / m, a / 1e6, a / 1e6 / m }'
	done
fi

if want cluster-login; then
	cl_ticks() { # PID...: their ticks and their children's, summed
		local s=0 p
		for p in "$@"; do s=$((s + $(cpu_ticks "$p"))); done
		echo "$s"
	}
	cl_pids() { # CLUSTER_DIR: every daemon, HAProxy, the PostgreSQL server
		cat "$1"/run/*-[0-9].pid "$1/run/haproxy.pid.own"
		. "$1/pg.env"
		head -n 1 "$STB_PG_DIR/data/postmaster.pid"
	}
	# MODE LABEL PIDS ARGS...: one stb-bench run, its rate and CPU per operation
	cl_run() {
		local mode=$1 label=$2 pidl=$3 c0 c1 r n
		shift 3
		c0=$(cl_ticks $pidl)
		"$bench" "$mode" "$@" -c 16 -d 10 --json 2>"$t/cl.err" >"$t/cl.out" ||
			{ echo "   $label failed:"; cat "$t/cl.err"; }
		c1=$(cl_ticks $pidl)
		r=$(field per_s <"$t/cl.out")
		n=$(field done <"$t/cl.out")
		printf '   %-44s %8s/s, p50 %s us, p99 %s us; CPU %s us per operation\n' "$label" "$r" \
			"$(field p50_us <"$t/cl.out")" "$(field p99_us <"$t/cl.out")" "$(us_per $((c1 - c0)) "${n:-0}")"
	}
	adm=(--admin-cert "$t/pki/admin.crt" --admin-key "$t/pki/admin.key")
	echo "== issue 14: SQLite vs PostgreSQL (one instance each), 2 instances behind HAProxy"
	echo "   (CPU of every daemon process, HAProxy and PostgreSQL, over each run including"
	echo "   stb-bench login's first logins; rates were measured on this machine as it was)"
	for i in $(seq 1 "$runs"); do
		cl_run login "login, SQLite" "$capid $cppid $gwpid" -a "127.0.0.1:$gwp" --cp "127.0.0.1:$cpp" \
			"${ca[@]}" "${adm[@]}"
		cl_run issue "issue, SQLite" "$capid" -a "127.0.0.1:$cap" "${ca[@]}" \
			--cert "$t/pki/admin.crt" --key "$t/pki/admin.key"
		for n in 1 2; do
			CLUSTER_N=$n STB_BUILD=$build scripts/cluster.sh up "$t/cl$n.$i" >"$t/cl$n.$i.up" 2>&1 ||
				{ echo "   cluster.sh up failed:"; tail "$t/cl$n.$i.up"; continue; }
			eval "$(scripts/cluster.sh env "$t/cl$n.$i")"
			pidl=$(cl_pids "$t/cl$n.$i" | tr '\n' ' ')
			cp2=(--ca "$CLUSTER_PKI/ca.crt" --admin-cert "$CLUSTER_PKI/admin.crt" --admin-key "$CLUSTER_PKI/admin.key")
			if [ $n = 1 ]; then
				cl_run login "login, PostgreSQL (one instance each)" "$pidl" -a "$MEDIA_GW_1" \
					--cp "$CERT_PROXYD_1" "${cp2[@]}"
				cl_run issue "issue, PostgreSQL" "$pidl" -a "$CA_AUTHD_1" --ca "$CLUSTER_PKI/ca.crt" \
					--cert "$CLUSTER_PKI/admin.crt" --key "$CLUSTER_PKI/admin.key"
			else
				cl_run login "login, 2 instances each through HAProxy" "$pidl" -a "$MEDIA_GW" \
					--cp "$CERT_PROXYD" "${cp2[@]}"
			fi
			scripts/cluster.sh down "$t/cl$n.$i" >/dev/null 2>&1 || true
		done
	done
fi
