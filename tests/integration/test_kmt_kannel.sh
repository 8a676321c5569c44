#!/usr/bin/env bash
# The Kannel harness on its own (kannel_lib.sh, fakesmsc.py): a message the
# scripted SMSC injects reaches an HTTPS callback through real bearerbox +
# smsbox, with the sender (%p) and text (%a) and smsbox's client
# certificate (role sms-gw), and the callback's body comes back as the
# reply SMS to the sender.  The keymgmtd callback is test_kmt_sms.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/kannel_lib.sh"
. "$(dirname "$0")/kmt_lib.sh"

kmt_pki

# the callback: HTTPS, client certificate required, echoes what it got
PORT[echo]=$(free_port)
cat > "$T/echo.py" <<PY
import http.server, ssl, urllib.parse
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        q = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        san = dict((k, v) for k, v in self.connection.getpeercert().get("subjectAltName", ()) if k == "URI")
        body = ("from=%s text=%s peer=%s" % (q["from"][0], q["text"][0], san.get("URI"))).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain("$PKI/keymgmtd.crt", "$PKI/keymgmtd.key")
ctx.verify_mode = ssl.CERT_REQUIRED
ctx.load_verify_locations("$PKI/ca.crt")
s = http.server.HTTPServer(("127.0.0.1", ${PORT[echo]}), H)
s.socket = ctx.wrap_socket(s.socket, server_side=True)
s.serve_forever()
PY
/usr/bin/python3 "$T/echo.py" >"$T/echo.log" 2>&1 &
PID[echo]=$!
kannel_wait_port "${PORT[echo]}" echo

kannel_start "https://127.0.0.1:${PORT[echo]}/sms?from=%p&text=%a" "$PKI/sms-gw.pem" "$PKI/ca.crt"

reply=$(kannel_sms 4915112345678 1234 "KS1 abc+def/x=y")
log "reply: $reply"
[ "$reply" = "from=4915112345678 text=KS1 abc+def/x=y peer=urn:stbcred:role:sms-gw" ] &&
	pass "an MO message reaches the HTTPS callback with sender, text and client certificate, the body comes back" ||
	fail "reply through Kannel: '$reply'"

# several terminals at once: each reply goes back to its own sender
out=$(printf '%s\n' "491510000001 1234 one" "491510000002 1234 two" "491510000003 1234 three" |
	kannel_sms_many 20 | sort)
want=$(printf '%s\n' "491510000001 from=491510000001 text=one peer=urn:stbcred:role:sms-gw" \
	"491510000002 from=491510000002 text=two peer=urn:stbcred:role:sms-gw" \
	"491510000003 from=491510000003 text=three peer=urn:stbcred:role:sms-gw")
[ "$out" = "$want" ] && pass "three terminals, three replies, each to its sender" ||
	fail "replies: $out"

kannel_stop
finish
