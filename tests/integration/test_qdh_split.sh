#!/usr/bin/env bash
# Flow D end to end with qualifyd's roles in three processes: registration,
# credentialing and provisioning each run alone and reach the others as
# peers (mutual TLS, role qualifyd).  A device bootstraps through the
# three, the credentialing process (the only one with the HSS) records the
# delivery once the provisioning process saw the confirmation, and the
# registration process hands out nonces only for enrolled devices.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/qdh_lib.sh"

qdh_ca_start
REG_PORT=$(free_port) CRED_PORT=$(free_port) PROV_PORT=$(free_port)
for n in qd-reg qd-cred qd-prov; do
	export "STB_BIN_${n//-/_}=$STB_BIN_qualifyd"
	cp "$PKI/qualifyd.crt" "$PKI/$n.crt"
	cp "$PKI/qualifyd.key" "$PKI/$n.key"
	(umask 077 && openssl rand -hex 32 >"$PKI/$n.kek")
	PORT[$n]=$(free_port)
	HPORT[$n]=$(free_port)
done
peers() { echo "\"peers\": { $1 }"; }
qdh_qd_conf qd-reg registration \
	"$(peers "\"credentialing\": \"127.0.0.1:${PORT[qd-cred]}\"")"
qdh_qd_conf qd-prov provisioning \
	"$(peers "\"credentialing\": \"127.0.0.1:${PORT[qd-cred]}\"")"
qdh_qd_conf qd-cred credentialing \
	"$(peers "\"registration\": \"127.0.0.1:${PORT[qd-reg]}\", \"provisioning\": \"127.0.0.1:${PORT[qd-prov]}\"")"
for n in qd-reg qd-prov qd-cred; do
	start_daemon $n
done

K=0396eb317b6d1c36f19c1c84cd6ffd16 OPC=53c15671c60a4b731c55b4a441c0bde2
echo "001010000000201,$K,$OPC" >"$T/pool.csv"
ctl qd-cred qd hss import "$T/pool.csv" >/dev/null || fail "hss import"
qdh_device dev-s
qdh_device dev-x

# not enrolled yet: the registration process has no nonce for it
qdh_boot dev-s "127.0.0.1:$REG_PORT" --ocsp "$OCSP_URL"
[ $RC -ne 0 ] && grepq "NOT_FOUND: registration" <<<"$OUT" &&
	pass "unenrolled device: ${OUT##*bootstrap: }" || fail "unenrolled: rc=$RC $OUT"

ctl qd-cred qd enrol dev-s >/dev/null || fail "enrol dev-s"
qdh_boot dev-s "127.0.0.1:$REG_PORT" --ocsp "$OCSP_URL"
[ $RC -eq 0 ] && pass "bootstrap across three processes: $OUT" || fail "bootstrap rc=$RC: $OUT"
[ "$(qdh_cred dev-s imsi) $(qdh_cred dev-s k) $(qdh_cred dev-s opc)" = "001010000000201 $K $OPC" ] &&
	pass "delivered the pool row" || fail "credentials: $(cat "$T/dev-s.cred" 2>&1)"
# the delivery reaches the credentialing process (QD_PKG_DONE from the
# provisioning process, through its outbox): wait for it, bounded
for _ in $(seq 1 100); do
	ctl qd-cred -j qd hss pool | grepq '"delivered":[[:space:]]*1' && break
	sleep 0.1
done
ctl qd-cred -j qd hss pool | grepq '"delivered":[[:space:]]*1' &&
	pass "credentialing process: the row is delivered" ||
	fail "pool: $(ctl qd-cred -j qd hss pool)"
ctl qd-cred qd show dev-s | grepq -i delivered && pass "qd show dev-s: delivered" ||
	fail "qd show: $(ctl qd-cred qd show dev-s 2>&1)"

# the pool is empty now: an enrolled second device is refused (UNAVAILABLE)
# at the credentialing step, and nothing was consumed
ctl qd-cred qd enrol dev-x >/dev/null || fail "enrol dev-x"
qdh_boot dev-x "127.0.0.1:$REG_PORT" --ocsp "$OCSP_URL"
[ $RC -ne 0 ] && grepq "UNAVAILABLE: credential request" <<<"$OUT" &&
	pass "empty pool: ${OUT##*bootstrap: }" || fail "empty pool: rc=$RC $OUT"

finish
