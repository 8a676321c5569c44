#!/usr/bin/env bash
# stb-bench bootstrap against ca-authd and one qualifyd (three role
# listeners): every device is certified, enrolled and bootstrapped, and the
# report names the crypto bound.  QDH_BENCH_DEVICES / QDH_BENCH_THREADS
# make it the real benchmark (default: a 12-device smoke run).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/qdh_lib.sh"

D=${QDH_BENCH_DEVICES:-12}
C=${QDH_BENCH_THREADS:-3}
qdh_ca_start
REG_PORT=$(free_port) CRED_PORT=$(free_port) PROV_PORT=$(free_port)
qdh_qd_conf qualifyd registration,credentialing,provisioning
start_daemon qualifyd

# QDH_BENCH_PERF_DIR: profile qualifyd and ca-authd while the bench runs
# (perf record; the reports land in that directory)
perfs=()
if [ -n "${QDH_BENCH_PERF_DIR:-}" ]; then
	for n in qualifyd ca-authd; do
		perf record -F 499 -g -p "${PID[$n]}" -o "$QDH_BENCH_PERF_DIR/$n.data" \
			>/dev/null 2>&1 &
		perfs+=($!)
	done
fi
# the servers' CPU goes into the report: qualifyd, ca-authd and its signer
STB_BENCH_CPU_PIDS="${PID[qualifyd]} ${PID[ca-authd]} $(pgrep -P "${PID[ca-authd]}" | tr '\n' ' ')"
export STB_BENCH_CPU_PIDS
out=$("$STB_BENCH" bootstrap -a "127.0.0.1:$REG_PORT" --admin-addr "127.0.0.1:${PORT[qualifyd]}" \
	--ca "$PKI/ca.crt" --admin-cert "$PKI/admin.crt" --admin-key "$PKI/admin.key" \
	--ca-addr "$CA_ADDR" --operator-ca "$PKI/ca.crt" --ocsp "$OCSP_URL" -D "$D" -c "$C" 2>&1) &&
	rc=0 || rc=$?
echo "$out"
for p in "${perfs[@]}"; do
	kill -INT "$p" 2>/dev/null || true
	wait "$p" 2>/dev/null || true
done
[ $rc -eq 0 ] && pass "stb-bench bootstrap exits 0" || fail "stb-bench rc=$rc"
grepq "bootstrap: $D/$D devices" <<<"$out" && pass "every device bootstrapped" ||
	fail "not every device bootstrapped"
grepq "crypto bound on" <<<"$out" && pass "the crypto bound is reported" || fail "no bound"
ctl qualifyd -j qd hss pool | grepq "\"delivered\":[[:space:]]*$D" &&
	pass "qualifyd: $D rows delivered" || fail "pool: $(ctl qualifyd -j qd hss pool)"

finish
