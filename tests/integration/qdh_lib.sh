# qdh_lib.sh: flow D end to end.  Sourced after lib.sh.  ca-authd on the CA
# pki-bootstrap made (so its OCSP responder knows every service and device
# certificate), device certificates from its "device" profile, qualifyd's
# own service certificate as the operator certificate, and the device side
# through `stb-client bootstrap`.
#
#   qdh_ca_start            ca-authd with OCSP; sets CA_ADDR, OCSP_URL
#   qdh_device NAME         $T/NAME.key, $T/NAME.pem (leaf + chain) for device NAME
#   qdh_qd_conf NAME ROLES EXTRA_JSON   a qualifyd config (listeners by role)
#   qdh_boot NAME ADDR [ARGS]  stb-client bootstrap; credentials in $T/NAME.cred,
#                           output in $OUT, exit status in $RC
#   qdh_cred NAME KEY       a field of $T/NAME.cred

[ -n "${STB_BIN_ca_authd:-}" ] || { echo "needs STB_BIN_ca_authd"; exit 1; }

qdh_ca_start() {
	# the PKI fixture (qdh.cmake) when there is one: a copy is ours to
	# change; on the PostgreSQL runs a PKI of our own, its CA's store in
	# PostgreSQL (pki_init), which the fixture's SQLite CA is not
	if [ -n "${QDH_PKI:-}" ] && [ -f "$QDH_PKI/ca.crt" ] && [ ! -e "$PKI" ] &&
		[ "${STB_TEST_STORE:-sqlite}" = sqlite ]; then
		cp -a "$QDH_PKI" "$PKI"
	fi
	pki_init
	PORT[ca-authd]=$(free_port)
	HPORT[ca-authd]=$(free_port)
	CA_ADDR=127.0.0.1:${PORT[ca-authd]}
	OCSP_URL=http://127.0.0.1:${HPORT[ca-authd]}/ocsp
	store_json ca-authd-pki
	cat >"$T/ca-authd.json" <<JSON
{
  "listen": "$CA_ADDR",
  "http_listen": "127.0.0.1:${HPORT[ca-authd]}",
  "state_dir": "$PKI/ca-authd-state", $STORE_JSON
  "kek_file": "$PKI/ca-authd.kek",
  "tls": { "cert": "$PKI/ca-authd.crt", "key": "$PKI/ca-authd.key", "ca": "$PKI/ca.crt" }
}
JSON
	start_daemon ca-authd
	# the manufacturer CA qualifyd trusts for devices: this CA's chain
	cat "$PKI/ca.crt" "$PKI/ca-issuing.crt" >"$T/mfr-ca.pem"
}

qdh_device() {
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/$1.key" 2>/dev/null
	openssl req -new -key "$T/$1.key" -subj "/CN=$1" -out "$T/$1.csr"
	ctl ca-authd ca issue --csr "$T/$1.csr" --profile device --device "$1" \
		--out "$T/$1.pem" >/dev/null
}

# qdh_listener NAME PORT MESSAGES: one device-facing listener object
qdh_listener() {
	cat <<JSON
    { "name": "$1", "listen": "127.0.0.1:$2", "client_auth": "require",
      "tls": { "ca": "$T/mfr-ca.pem" }, "roles": "device", "messages": "PING,$3" }
JSON
}

# qdh_qd_conf NAME ROLES EXTRA: $T/NAME.json for a qualifyd running ROLES
# (comma-separated), its device listeners on REG_PORT, CRED_PORT,
# PROV_PORT; EXTRA is more JSON members (peers, hss, ...)
qdh_qd_conf() {
	local n=$1 roles=$2 extra=${3:-} ls=() r
	for r in ${roles//,/ }; do
		case $r in
		registration) ls+=("$(qdh_listener registration "$REG_PORT" QD_REGISTER)") ;;
		credentialing) ls+=("$(qdh_listener credentialing "$CRED_PORT" QD_CRED_REQ)") ;;
		provisioning) ls+=("$(qdh_listener provisioning "$PROV_PORT" QD_PKG_FETCH,QD_PKG_CONFIRM)") ;;
		esac
	done
	local IFS=,
	write_config "$n" "\"listeners\": [
${ls[*]}
  ],
  \"roles\": \"$roles\",
  \"device_ca\": \"$T/mfr-ca.pem\",
  \"operator\": { \"cert\": \"$PKI/qualifyd.crt\", \"key\": \"$PKI/qualifyd.key\" },
  \"cred_address\": \"127.0.0.1:$CRED_PORT\",
  \"prov_address\": \"127.0.0.1:$PROV_PORT\",
  \"ocsp\": { \"url\": \"$OCSP_URL\" }${extra:+,
  $extra}"
	unset IFS
}

qdh_boot() {
	local n=$1 addr=$2
	shift 2
	RC=0
	OUT=$("$STB_CLIENT" --ca "$PKI/ca.crt" --cert "$T/$n.pem" --key "$T/$n.key" -a "$addr" \
		bootstrap --operator-ca "$PKI/ca.crt" --out "$T/$n.cred" "$@" 2>&1) || RC=$?
}

qdh_cred() { sed -n "s/^$2=//p" "$T/$1.cred"; }
