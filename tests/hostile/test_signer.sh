#!/usr/bin/env bash
# Keys out of the network processes (issue 9, point 14).  ca-authd's
# issuing and OCSP keys and cert-proxyd's STB keys are held by a signer
# process each daemon starts; the network process holds neither the keys
# nor (ca-authd) the KEK: keyscan reads each process's memory and counts
# where the KEK's bytes and each private scalar appear (the signer is the
# positive control).  A stopped signer makes issuance UNAVAILABLE within
# the signer deadline while PING keeps working; a killed one is restarted
# and issuance, OCSP and key info work again.
. "$STB_SRC/tests/integration/lib.sh"

for tool in sqlite3 openssl xxd ps; do
	command -v $tool >/dev/null || { echo "SKIP: $tool not installed"; exit 77; }
done
[ "$(id -u)" = 0 ] || { echo "SKIP: reading another process's memory needs root"; exit 77; }

# signer_of PID: the daemon's signer (its one child)
signer_of() { { ps -o pid= --ppid "$1" || true; } | tr -d " " | head -n1; }
# wait_new_signer PID OLD: until the daemon has a signer other than OLD (10 s)
wait_new_signer() {
	local s
	for _ in $(seq 1 200); do
		s=$(signer_of "$1")
		[ -n "$s" ] && [ "$s" != "$2" ] && { echo "$s"; return 0; }
		sleep 0.05
	done
	return 1
}
hexof() { xxd -p | tr -d '\n'; }
# ca_aad NAME CERT_PEM: pki.c's AAD of a CA key, hex
ca_aad() {
	printf '%s' "stbcred ca-authd key v1:$1" | hexof
	openssl x509 -in "$2" -outform DER | sha256sum | cut -d' ' -f1
}
scan() { "$STB_KEYSCAN" "$@"; }
kv() { sed -n "s/.*\\b$1=\\([0-9]*\\).*/\\1/p" <<<"$2"; }

# --- ca-authd ---
pki_init
write_config ca-authd
"$(bin_of ca-authd)" init -c "$T/ca-authd.json" >"$T/ca-init.log" 2>&1 ||
	{ cat "$T/ca-init.log"; exit 1; }
start_daemon ca-authd
CADIR=$T/state-ca-authd
NET=${PID[ca-authd]}
SIG=$(signer_of "$NET")
if [ -z "$SIG" ]; then
	fail "ca-authd has no signer process (keys are looked for in the daemon itself)"
	SIG=$NET
else
	pass "ca-authd $NET runs signer $SIG"
	grepq -a -- --signer-process "/proc/$SIG/cmdline" || fail "the signer's command line"
	[ "$(awk '/^Uid:/ { print $2 }' "/proc/$SIG/status")" = "$(id -u nobody)" ] &&
		pass "the signer runs as nobody" || fail "signer uid: $(grep Uid "/proc/$SIG/status")"
	others=$(for f in /proc/"$SIG"/fd/*; do
		n=${f##*/}
		[ "$n" -le 2 ] && continue
		l=$(readlink "$f")
		[[ $l == socket:* ]] || echo "$n -> $l"
	done)
	[ -z "$others" ] && pass "the signer holds only its channels past stdio" ||
		fail "signer descriptors: $others"
	for inode in $(for f in /proc/"$SIG"/fd/*; do readlink "$f"; done |
		sed -n 's/socket:\[\([0-9]*\)\]/\1/p'); do
		if grepq " $inode " /proc/net/tcp /proc/net/tcp6 /proc/net/udp /proc/net/udp6; then
			fail "the signer holds a network socket ($inode)"
		fi
	done
fi
KEYS=("$(ca_aad issuing "$CADIR/chain-issuing.pem")" "$(xxd -p "$CADIR/issuing.key.sealed" | tr -d '\n')"
	"$(ca_aad ocsp "$CADIR/ocsp.pem")" "$(xxd -p "$CADIR/ocsp.key.sealed" | tr -d '\n')")

# issue once (the CA key signs), then look
csr() {
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/$1.key" 2>/dev/null
	openssl req -new -key "$T/$1.key" -subj "/CN=ignored" -out "$T/$1.csr"
}
issue() { # issue NAME: 0 and $T/NAME.pem, or the error in $T/NAME.err
	csr "$1"
	ctl ca-authd ca issue --csr "$T/$1.csr" --profile stb-media --device "dev-$1" \
		--cert-id "cert-$1" --out "$T/$1.pem" >/dev/null 2>"$T/$1.err"
}
issue a && pass "issuance through the signer" || fail "issue a: $(cat "$T/a.err")"
openssl verify -CAfile "$CADIR/root.pem" -untrusted "$CADIR/chain-issuing.pem" "$T/a.pem" |
	grepq ": OK" || fail "a.pem verifies"
ocsp_good() { # ocsp_good PEM: openssl ocsp says good and the response verifies
	openssl ocsp -issuer "$CADIR/chain-issuing.pem" -cert "$1" -CAfile "$CADIR/root.pem" \
		-url "http://127.0.0.1:${HPORT[ca-authd]}/ocsp" -timeout 5 2>&1 | tee "$T/ocsp.out" |
		grepq ": good" && grepq "Response verify OK" "$T/ocsp.out"
}
ocsp_good "$T/a.pem" && pass "OCSP answer signed through the signer" ||
	fail "ocsp: $(cat "$T/ocsp.out")"
net=$(scan "$NET" "$PKI/ca-authd.kek" "${KEYS[@]}")
sig=$(scan "$SIG" "$PKI/ca-authd.kek" "${KEYS[@]}")
kill -0 "$NET" || { fail "ca-authd died while it was scanned"; finish; }
log "ca-authd network process: $net; signer: $sig"
[ "$(kv kek "$sig")" -ge 1 ] && [ "$(kv key "$sig")" -ge 2 ] &&
	pass "keyscan finds the KEK and both keys in the signer (positive control)" ||
	fail "keyscan in the signer: $sig"
[ "$(kv kek "$net")" = 0 ] && pass "ca-authd's network process does not hold the KEK" ||
	fail "KEK in ca-authd's network process: $net"
[ "$(kv key "$net")" = 0 ] &&
	pass "ca-authd's network process holds neither the issuing nor the OCSP key" ||
	fail "a CA private key in ca-authd's network process: $net"

# nothing to stop or kill without a signer
[ "$SIG" != "$NET" ] || finish

# a stuck signer: UNAVAILABLE within its deadline, never a hang; PING answers
kill -STOP "$SIG"
t0=$(date +%s%N)
ctl ca-authd ping >/dev/null && pass "PING while the signer is stuck" || fail "PING (stuck)"
if issue b; then
	fail "issued with a stuck signer"
else
	ms=$((($(date +%s%N) - t0) / 1000000))
	grepq UNAVAILABLE "$T/b.err" && [ "$ms" -lt 15000 ] &&
		pass "a stuck signer: issuance UNAVAILABLE after $ms ms" || fail "stuck: $(cat "$T/b.err") ($ms ms)"
fi
[ "$(sqlite3 "$CADIR/ca-authd.db" "SELECT count(*) FROM certs WHERE cert_id='cert-b'")" = 0 ] ||
	fail "a refused issuance left a row"
if SIG2=$(wait_new_signer "$NET" "$SIG"); then
	pass "the stuck signer was replaced ($SIG2)"
else
	fail "no new signer after a stuck one"
	SIG2=$SIG
fi
kill -CONT "$SIG" 2>/dev/null || true
# killed: restarted, and everything signs again
kill -KILL "$SIG2"
ctl ca-authd ping >/dev/null && pass "PING after the signer was killed" || fail "PING (killed)"
SIG3=$(wait_new_signer "$NET" "$SIG2") && pass "a killed signer is restarted ($SIG3)" ||
	fail "no signer after kill"
ok=0
for _ in $(seq 1 50); do
	issue c && { ok=1; break; }
	sleep 0.1
done
[ $ok = 1 ] && pass "issuance works again after the restart" || fail "issue c: $(cat "$T/c.err")"
ocsp_good "$T/c.pem" && pass "OCSP works again" || fail "ocsp c: $(cat "$T/ocsp.out")"
grepq "signing is UNAVAILABLE; restarting" "$T/ca-authd.log" ||
	fail "the daemon logs the signer's death"

# the daemon as PID 1 (a container without an init): its signer runs
if unshare --pid --fork --kill-child=TERM true 2>/dev/null; then
	stop_daemon ca-authd TERM
	unshare --pid --fork --kill-child=TERM "$(bin_of ca-authd)" -c "$T/ca-authd.json" \
		>>"$T/ca-authd.log" 2>&1 &
	ns=$!
	for _ in $(seq 1 200); do ctl ca-authd ping >/dev/null 2>&1 && break; sleep 0.05; done
	inner=$(signer_of "$ns") # the daemon, PID 1 inside
	one=$(signer_of "$inner")
	[ -n "$one" ] && pass "ca-authd as PID 1 of its namespace runs signer $one" ||
		fail "ca-authd as PID 1 has no signer"
	issue d && pass "issuance through the signer of a PID 1 daemon" ||
		fail "issue d (PID 1): $(cat "$T/d.err")"
	kill -TERM "$inner"
	wait "$ns" 2>/dev/null || true
	for _ in $(seq 1 100); do ctl ca-authd ping >/dev/null 2>&1 || break; sleep 0.05; done
	start_daemon ca-authd
	NET=${PID[ca-authd]}
else
	log "unshare --pid is not permitted here: the PID 1 case is not run"
fi

# --- cert-proxyd: STB keys made, sealed and unsealed by its signer, device
# secrets sealed and opened by it ---
write_config cert-proxyd "\"ca\": { \"addr\": \"127.0.0.1:${PORT[ca-authd]}\", \"timeout_ms\": 5000 }"
start_daemon cert-proxyd
CPNET=${PID[cert-proxyd]}
CPSIG=$(signer_of "$CPNET")
[ -n "$CPSIG" ] && pass "cert-proxyd $CPNET runs signer $CPSIG" ||
	{ fail "cert-proxyd has no signer process"; CPSIG=$CPNET; }

SA=000102030405060708090a0b0c0d0e0f
printf 'device_id,secret_hex,enabled,cert_ids\nstb-a,%s,1,c-a1\n' "$SA" >"$T/stbs.csv" # the cert_id it may hold
ctl cert-proxyd cp import "$T/stbs.csv" >/dev/null || fail "import"
stb() { "$STB_CP_CLIENT" "127.0.0.1:${PORT[cert-proxyd]}" "$PKI/ca.crt" stb-a $SA "$@"; }
out=$(stb auth fetch c-a1 keyinfo c-a1 || true)
[[ $(grep '^fetch' <<<"$out") == "fetch OK "*verified=yes* ]] &&
	[[ $(grep '^keyinfo' <<<"$out") == "keyinfo OK "*verified=yes* ]] &&
	pass "CERT_FETCH and KEYINFO_REQ proofs made by the signer verify" || fail "cp: $out"
CPDB=$T/state-cert-proxyd/cert-proxyd.db
row=$(sqlite3 "$CPDB" "SELECT lower(hex(serial)), hex(key_sealed) FROM certs WHERE cert_id='c-a1'")
aad=$(printf 'key:c-a1:%s' "${row%|*}" | hexof)
net=$(scan "$CPNET" "$PKI/cert-proxyd.kek" "$aad" "${row#*|}")
sig=$(scan "$CPSIG" "$PKI/cert-proxyd.kek" "$aad" "${row#*|}")
log "cert-proxyd network process: $net; signer: $sig"
[ "$(kv kek "$net")" = 0 ] && pass "cert-proxyd's network process does not hold the KEK" ||
	fail "KEK in cert-proxyd's network process: $net"
[ "$(kv key "$sig")" -ge 1 ] && pass "keyscan finds the STB key in cert-proxyd's signer" ||
	fail "STB key not in the signer: $sig"
[ "$(kv key "$net")" = 0 ] && pass "cert-proxyd's network process does not hold the STB key" ||
	fail "the STB key in cert-proxyd's network process: $net"
[ "$CPSIG" != "$CPNET" ] || finish
kill -KILL "$CPSIG"
CPSIG2=$(wait_new_signer "$CPNET" "$CPSIG") && pass "cert-proxyd's signer is restarted" ||
	fail "no cert-proxyd signer after kill"
ok=0
for _ in $(seq 1 50); do
	out=$(stb auth keyinfo c-a1 || true)
	[[ $(grep '^keyinfo' <<<"$out") == "keyinfo OK "*verified=yes* ]] && { ok=1; break; }
	sleep 0.1
done
[ $ok = 1 ] && pass "key info signed again after the restart (the key unsealed anew)" ||
	fail "keyinfo after restart: $out"
finish
