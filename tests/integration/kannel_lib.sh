# kannel_lib.sh: Debian's Kannel (bearerbox + smsbox) as test processes.
# Sourced after lib.sh.  bearerbox runs a fake SMSC on a free loopback
# port; fakesmsc.py (the scripted SMSC) injects mobile-originated messages
# there and reads the replies smsbox sends back.  smsbox answers every
# message through one sms-service whose get-url calls the test's callback
# with the sender (%p) and the text (%a), and sends the body back as the
# reply SMS.
#
#   kannel_start URL [CERTKEY_PEM [CA_PEM]]
#       URL: the callback, e.g. "https://127.0.0.1:PORT/sms?from=%p&text=%a";
#       CERTKEY_PEM: smsbox's client certificate and key in one PEM file
#       (ssl-client-certkey-file); CA_PEM: the anchor it checks the server
#       against (ssl-trusted-ca-file).
#   kannel_sms SENDER RECEIVER TEXT
#       sends one message and prints the reply's text ("" when none came).
#   kannel_sms_many TIMEOUT_S < "SENDER RECEIVER TEXT" lines
#       sends them all, prints "TO TEXT" per reply.
#   kannel_stop
#
# Needs: bearerbox, smsbox (Debian kannel), /usr/bin/python3.

KANNEL_DIR=$T/kannel
FAKESMSC=${STB_SRC}/tests/integration/fakesmsc.py

kannel_start() {
	local url=$1 certkey=${2:-} ca=${3:-}
	mkdir -p "$KANNEL_DIR"
	PORT[kannel_admin]=$(free_port)
	PORT[kannel_box]=$(free_port)
	PORT[kannel_smsc]=$(free_port)
	cat > "$KANNEL_DIR/kannel.conf" <<CONF
group = core
admin-port = ${PORT[kannel_admin]}
admin-interface = 127.0.0.1
admin-password = test
smsbox-port = ${PORT[kannel_box]}
box-allow-ip = 127.0.0.1
log-file = "$KANNEL_DIR/bearerbox-file.log"
log-level = 1
${certkey:+ssl-client-certkey-file = "$certkey"}
${ca:+ssl-trusted-ca-file = "$ca"}

group = smsc
smsc = fake
smsc-id = fake
port = ${PORT[kannel_smsc]}
connect-allow-ip = 127.0.0.1

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = ${PORT[kannel_box]}
log-file = "$KANNEL_DIR/smsbox-file.log"
log-level = 1

group = sms-service
keyword = default
catch-all = true
get-url = "$url"
max-messages = 1
CONF
	bearerbox "$KANNEL_DIR/kannel.conf" >"$T/bearerbox.log" 2>&1 &
	PID[bearerbox]=$!
	kannel_wait_port "${PORT[kannel_box]}" bearerbox || return 1
	smsbox "$KANNEL_DIR/kannel.conf" >"$T/smsbox.log" 2>&1 &
	PID[smsbox]=$!
	# bearerbox lists its connected boxes on the admin status page
	for _ in $(seq 1 200); do
		if http_get "127.0.0.1:${PORT[kannel_admin]}" "/status.txt?password=test" 2>/dev/null |
			grepq -E "smsbox:\(none\)|smsbox:"; then
			if http_get "127.0.0.1:${PORT[kannel_admin]}" "/status.txt?password=test" |
				grepq "on-line"; then
				return 0
			fi
		fi
		kill -0 "${PID[smsbox]}" 2>/dev/null || { echo "smsbox exited" >&2; return 1; }
		sleep 0.05
	done
	echo "smsbox did not connect to bearerbox" >&2
	return 1
}

# kannel_wait_port PORT NAME: until something accepts on 127.0.0.1:PORT
kannel_wait_port() {
	for _ in $(seq 1 200); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
			return 0
		fi
		kill -0 "${PID[$2]}" 2>/dev/null || { echo "$2 exited" >&2; return 1; }
		sleep 0.05
	done
	echo "$2 did not open port $1" >&2
	return 1
}

kannel_sms() {
	printf '%s %s %s\n' "$1" "$2" "$3" |
		/usr/bin/python3 "$FAKESMSC" "${PORT[kannel_smsc]}" 20 | cut -d' ' -f2-
}

kannel_sms_many() {
	/usr/bin/python3 "$FAKESMSC" "${PORT[kannel_smsc]}" "$1"
}

kannel_stop() {
	local n
	for n in smsbox bearerbox; do
		[ -n "${PID[$n]:-}" ] || continue
		kill -KILL "${PID[$n]}" 2>/dev/null || true
		wait "${PID[$n]}" 2>/dev/null || true
		unset "PID[$n]"
	done
}
