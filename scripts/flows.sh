#!/usr/bin/env bash
# flows.sh: run each flow (A–E) once against a running suite, as an STB, a
# terminal, a device, a TV and the operator would, and print what they are
# answered (stbctl and stb-client from PATH).  scripts/demo.sh runs it on loopback, docker/compose.yml's demo
# service inside the compose network.  Exit status 0 only when every flow
# passed; the last lines name each flow's result.
#
#   flows.sh [FLOW...]        FLOW: A B C D E (default all)
#
# Where the suite is (host:port; defaults: demo.sh's loopback ports from 7101):
#   STB_PKI                   the PKI (pki-bootstrap.sh): ca.crt, ca-issuing.crt, admin.*,
#                             and flow C's manufacturer.* and portal.* (--reissue)
#   STB_CA STB_CP STB_GW STB_RDV STB_KM STB_QD STB_AV
#                             each daemon's default listener
#   STB_CA_HTTP               ca-authd's HTTP listener (OCSP)
#   STB_QD_REG                qualifyd's registration listener
#   STB_AV_CHECK              appvetd's check listener
#   STB_KANNEL_SMSC           bearerbox's fake SMSC (host:port): flow C also over SMS
#   STB_DEVICE_CERT/_KEY/_ID  flow D's device (a manufacturer certificate qualifyd trusts);
#                             unset: ca-authd issues one (profile device)
#   STB_WORK                  a scratch directory (default: a new one, removed at the end)
#   STB_PEER_HOST, STB_PEER_PORT
#                             flow B's two devices listen on PORT and PORT+1 (default 7411)
#   STB_FAKESMSC              tests/integration/fakesmsc.py
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
pki=${STB_PKI:?STB_PKI: the suite\'s PKI directory}
ca=${STB_CA:-127.0.0.1:7101} cp=${STB_CP:-127.0.0.1:7102} gw=${STB_GW:-127.0.0.1:7103}
rdv=${STB_RDV:-127.0.0.1:7104} km=${STB_KM:-127.0.0.1:7105} qd=${STB_QD:-127.0.0.1:7106}
av=${STB_AV:-127.0.0.1:7107} ca_http=${STB_CA_HTTP:-127.0.0.1:9101}
qd_reg=${STB_QD_REG:-127.0.0.1:7116} av_check=${STB_AV_CHECK:-127.0.0.1:7127}
peer_host=${STB_PEER_HOST:-127.0.0.1} peer_port=${STB_PEER_PORT:-7411}
fakesmsc=${STB_FAKESMSC:-$here/../tests/integration/fakesmsc.py}
flows=${*:-A B C D E}
if [ -n "${STB_WORK:-}" ]; then
	work=$STB_WORK
	mkdir -p "$work"
else
	work=$(mktemp -d)
	trap 'rm -rf "$work"' EXIT
fi

ctl() { # ADDR ARGS...: stbctl as admin
	stbctl -a "$1" --ca "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" \
		-T 10000 "${@:2}"
}
client() { stb-client --ca "$pki/ca.crt" -T 10000 "$@"; }
say() { printf '%s\n' "$*"; }
die() { say "FAILED: $*"; return 1; }

flow_A() {
	say "== flow A: certificate-proxied STB login (media-gw $gw, cert-proxyd $cp, ca-authd $ca)"
	local secret sub out tok
	secret=$(openssl rand -hex 32)
	sub=demo-stb-$RANDOM
	echo "$sub,$secret,1,$sub.media" >"$work/stbs.csv"
	echo "$sub,$sub.media" >"$work/subs.csv"
	ctl "$cp" cp import "$work/stbs.csv" || die "cp import" || return 1
	ctl "$gw" gw import "$work/subs.csv" || die "gw import" || return 1
	say "-- first login: cert-proxyd has no certificate yet, so it fetches one from ca-authd"
	STB_DEVICE_SECRET=$secret client -a "$gw" login --cp "$cp" "$sub" || die "first login" || return 1
	say "-- second login: the stored certificate is valid"
	out=$(STB_DEVICE_SECRET=$secret client -a "$gw" login --cp "$cp" "$sub") || die "second login" || return 1
	say "$out"
	tok=$(sed -n 's/.*token=\([0-9a-f]*\).*/\1/p' <<<"$out")
	[ -n "$tok" ] || die "no token in: $out" || return 1
	ctl "$gw" gw introspect "$tok" || die "introspect" || return 1
	ctl "$cp" cp certs --device "$sub" || die "cp certs" || return 1
	ctl "$cp" cp show "$sub.media" --pem >"$work/$sub.pem" || die "cp show" || return 1
	say "-- openssl verify of the STB's certificate, then its OCSP status at ca-authd:"
	openssl verify -CAfile "$pki/ca.crt" -untrusted "$pki/ca-issuing.crt" "$work/$sub.pem" ||
		die "openssl verify" || return 1
	out=$(openssl ocsp -issuer "$pki/ca-issuing.crt" -cert "$work/$sub.pem" \
		-url "http://$ca_http/ocsp" -CAfile "$pki/ca.crt" 2>&1)
	grep -v "^Response verify OK" <<<"$out" | head -3
	grep -q ": good" <<<"$out" || die "OCSP status is not good" || return 1
	say "-- a wrong device secret is refused:"
	if STB_DEVICE_SECRET=$(openssl rand -hex 32) client -a "$gw" login --cp "$cp" "$sub" 2>&1; then
		die "a wrong secret logged in"
		return 1
	fi
}

flow_B() {
	say "== flow B: two devices, a session code from rendezvousd ($rdv), a TLS 1.3 PSK link"
	local a=demo-a-$RANDOM b=demo-b-$RANDOM lpid out
	ctl "$rdv" rdv provision "$a" | tee "$work/rdv-provision.txt" || die "provision $a" || return 1
	ctl "$rdv" rdv provision "$b" | tee -a "$work/rdv-provision.txt" || die "provision $b" || return 1
	code_of() { awk -v d="$1" '$1 == d { print $2 }' "$work/rdv-provision.txt"; }
	STB_RDV_PASSWORD=password-of-b STB_RDV_ENROL_CODE=$(code_of "$b") client -a "$rdv" \
		rdv-listen "$b" user-b "$peer_host:$peer_port" >"$work/rdv-listen.log" 2>&1 &
	lpid=$!
	for _ in $(seq 1 100); do grep -q . "$work/rdv-listen.log" 2>/dev/null && break; sleep 0.1; done
	sleep 0.5
	out=$(echo "hello from $a" | STB_RDV_PASSWORD=password-of-a STB_RDV_ENROL_CODE=$(code_of "$a") \
		client -a "$rdv" rdv-connect "$a" user-a "$peer_host:$((peer_port + 1))" "$b" 2>&1)
	say "$out"
	kill "$lpid" 2>/dev/null
	wait "$lpid" 2>/dev/null
	ctl "$rdv" rdv sessions --limit 3
	grep -q "hello from $a" <<<"$out" || die "no echo over the peer link" || return 1
}

flow_C() {
	say "== flow C: key sync at keymgmtd ($km), pushed to the app platform"
	local key kid=KEY-$RANDOM mdn=86138$((10000000 + RANDOM)) out push text
	key=$(openssl rand -hex 32)
	printf '%s,%s,term-%s\n' "$kid" "$key" "$kid" >"$work/keys.csv"
	ctl "$km" --cert "$pki/manufacturer.crt" --key "$pki/manufacturer.key" keys import \
		"$work/keys.csv" || die "keys import (manufacturer)" || return 1
	ctl "$km" --cert "$pki/portal.crt" --key "$pki/portal.key" keys register "$mdn" tv.app ||
		die "keys register (portal)" || return 1
	out=$(STB_KEYSYNC_KEY=$key client -a "$km" keysync "$kid" "$mdn" 2>&1)
	say "$out"
	case $out in "keysync ok "*) ;; *) die "keysync"; return 1 ;; esac
	push=${out##*push_id=}
	say "-- the push, until the app platform acknowledged it:"
	for _ in $(seq 1 100); do
		ctl "$km" --json keys bindings --mdn "$mdn" --state delivered 2>/dev/null |
			grep -q "\"$kid\"" && break
		sleep 0.2
	done
	ctl "$km" keys bindings --mdn "$mdn"
	ctl "$km" --json keys bindings --mdn "$mdn" --state delivered | grep -q "\"$kid\"" ||
		die "push $push not delivered" || return 1
	[ -n "${STB_KANNEL_SMSC:-}" ] || return 0
	say "-- the same terminal over SMS: fake SMSC -> bearerbox -> smsbox -> keymgmtd (HTTPS)"
	# the MAC covers a timestamp in seconds: within the same second this would be the
	# TLS sync's MAC again, refused as REPLAY
	sleep 1
	text=$(STB_KEYSYNC_KEY=$key client keysync --sms "$kid" "$mdn") || die "keysync --sms" || return 1
	say "SMS from $mdn: $text"
	out=$(echo "$mdn 12345 $text" | python3 "$fakesmsc" "${STB_KANNEL_SMSC##*:}" 30 \
		"${STB_KANNEL_SMSC%:*}") || die "no reply SMS" || return 1
	say "reply SMS to $out"
	case $out in *"KS1 OK tv.app"*) ;; *) die "reply: $out" ;; esac
}

flow_D() {
	say "== flow D: credentialing bootstrap at qualifyd ($qd_reg)"
	local dev crt key out
	dev=${STB_DEVICE_ID:-demo-dev-$RANDOM}
	crt=${STB_DEVICE_CERT:-$work/$dev.crt} key=${STB_DEVICE_KEY:-$work/$dev.key}
	if [ -z "${STB_DEVICE_CERT:-}" ]; then
		openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$key" 2>/dev/null
		openssl req -new -key "$key" -subj "/CN=$dev" -out "$work/$dev.csr" 2>/dev/null
		ctl "$ca" ca issue --csr "$work/$dev.csr" --profile device --device "$dev" \
			--out "$crt" >/dev/null || die "ca issue (device certificate)" || return 1
	fi
	{
		echo "imsi,k,opc"
		for i in 1 2; do
			printf '0010100%08d,%s,%s\n' $((RANDOM * 1000 + i)) "$(openssl rand -hex 16)" \
				"$(openssl rand -hex 16)"
		done
	} >"$work/hss.csv"
	ctl "$qd" qd hss import "$work/hss.csv" || die "hss import" || return 1
	ctl "$qd" qd enrol "$dev" --routing demo || die "enrol" || return 1
	rm -f "$work/$dev.cred"
	client --cert "$crt" --key "$key" -a "$qd_reg" bootstrap --operator-ca "$pki/ca.crt" \
		--ocsp "http://$ca_http/ocsp" --out "$work/$dev.cred" || die "bootstrap" || return 1
	say "-- the credentials file (0600) the device wrote, K and OPc elided:"
	sed 's/^\(k\|opc\)=.*/\1=…/' "$work/$dev.cred"
	ctl "$qd" qd show "$dev"
	ctl "$qd" qd hss pool
}

flow_E() {
	say "== flow E: app vetting at appvetd ($av), a TV checks the QR payload ($av_check)"
	local id out payload rc verdict
	# an unsigned package: the vetter finds it UNSAFE, the TV is told DENY
	python3 - "$work/demo.apk" <<'PY' || die "making the demo package" || return 1
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w") as z:
    z.writestr("classes.dex", b"dex\n035\0" + bytes(104))
    z.writestr("res/raw/readme.txt", "stbcred compose demo\n")
PY
	out=$(ctl "$av" app submit "$work/demo.apk" --name org.stbcred.demo \
		--version "1.$RANDOM" 2>&1) || die "app submit: $out" || return 1
	say "$out"
	id=$(grep -o '[0-9a-f]\{32,\}' <<<"$out" | head -1)
	[ -n "$id" ] || die "no ID1 in: $out" || return 1
	for _ in $(seq 1 150); do
		ctl "$av" app show "$id" 2>/dev/null | grep -q "^state  *submitted" || break
		sleep 0.2
	done
	ctl "$av" app show "$id" | head -12
	ctl "$av" app findings "$id"
	verdict=$(ctl "$av" app show "$id" | awk '$1 == "flag" { print $2; exit }')
	out=$(ctl "$av" app publish "$id") || die "publish: $out" || return 1
	say "$out"
	payload=$(sed -n 's/^payload  *//p' <<<"$out")
	[ -n "$payload" ] || die "no payload in the publish answer" || return 1
	say "-- the TV checks the payload (exit 0 ALLOW, 3 DENY):"
	client -a "$av_check" app-check "$payload"
	rc=$?
	case "$verdict:$rc" in
	SAFE:0 | UNSAFE:3) say "-- the TV's answer matches the verdict ($verdict)" ;;
	*) die "verdict $verdict, app-check exit $rc" ;;
	esac
}

failed= result=()
for f in $flows; do
	if "flow_$f"; then
		result[${#result[@]}]="flow $f: ok"
	else
		result[${#result[@]}]="flow $f: FAILED"
		failed="$failed $f"
	fi
	echo
done
printf '%s\n' "${result[@]}"
[ -z "$failed" ] || { say "flows.sh: failed:$failed"; exit 1; }
say "flows.sh: every flow passed"
