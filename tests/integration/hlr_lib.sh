# hlr_lib.sh: Debian's osmo-hlr (1.5) as a test process.  Sourced after
# lib.sh (uses $T, PID, log).  osmo-hlr 1.5 has fixed ports (VTY 4258,
# CTRL 4259, GSUP 4222) but binds each to a configured address, so every
# test gets its own loopback address 127.A.B.C and tests run in parallel.
#
#   hlr_start            start it; sets HLR_ADDR, HLR_VTY (addr:port),
#                        HLR_GSUP_PORT
#   hlr_vty CMD...       run VTY commands (after "enable"), print the answers
#   hlr_aud3g IMSI       print "K OPC" of IMSI's Milenage data (empty: none)

HLR_GSUP_PORT=4222
HLR_VTY_PORT=4258

# an address of 127/8 on which none of the three ports answers
hlr_free_addr() {
	local a p busy
	while :; do
		a="127.$((100 + RANDOM % 100)).$((RANDOM % 256)).$((1 + RANDOM % 254))"
		busy=0
		for p in 4222 4258 4259; do
			if (exec 3<>"/dev/tcp/$a/$p") 2>/dev/null; then
				busy=1
			fi
		done
		[ $busy -eq 0 ] && {
			echo "$a"
			return
		}
	done
}

hlr_start() {
	HLR_ADDR=$(hlr_free_addr)
	HLR_VTY="$HLR_ADDR:$HLR_VTY_PORT"
	cat >"$T/osmo-hlr.cfg" <<CFG
log stderr
 logging filter all 1
 logging color 0
 logging print category 1
 logging level main notice
 logging level db notice
 logging level auc notice
line vty
 bind $HLR_ADDR
ctrl
 bind $HLR_ADDR
hlr
 gsup
  bind ip $HLR_ADDR
CFG
	osmo-hlr -c "$T/osmo-hlr.cfg" -l "$T/osmo-hlr.db" -s >>"$T/osmo-hlr.log" 2>&1 &
	PID[osmo-hlr]=$!
	for _ in $(seq 1 200); do
		if (exec 3<>"/dev/tcp/$HLR_ADDR/$HLR_VTY_PORT") 2>/dev/null &&
			(exec 3<>"/dev/tcp/$HLR_ADDR/$HLR_GSUP_PORT") 2>/dev/null; then
			log "osmo-hlr on $HLR_ADDR (VTY $HLR_VTY_PORT, GSUP $HLR_GSUP_PORT)"
			return 0
		fi
		if ! kill -0 "${PID[osmo-hlr]}" 2>/dev/null; then
			echo "osmo-hlr exited during start:" >&2
			tail -n 20 "$T/osmo-hlr.log" >&2
			return 1
		fi
		sleep 0.05
	done
	echo "osmo-hlr did not become ready" >&2
	return 1
}

# The VTY is telnet-like: strip the IAC negotiation, send one command per
# line, read up to the next prompt ("...# "), print what came between.
hlr_vty() {
	/usr/bin/python3 - "$HLR_ADDR" "$HLR_VTY_PORT" "$@" <<'PY'
import re, socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
buf = b""
def answer():
    global buf
    while True:
        clean = re.sub(rb"\xff[\xfb-\xfe].|\xff\xfa.*?\xff\xf0", b"", buf, flags=re.S)
        m = re.search(rb"\r?\n?[^\r\n]*[#>] $", clean)
        if m and m.start() >= 0 and clean.endswith((b"# ", b"> ")):
            buf = b""
            return clean[:m.start()].decode(errors="replace")
        d = s.recv(4096)
        if not d:
            sys.exit("osmo-hlr closed the VTY")
        buf += d
answer()
for cmd in ["enable"] + sys.argv[3:]:
    s.sendall(cmd.encode() + b"\n")
    out = answer().split("\n", 1)
    if cmd != "enable" and len(out) > 1 and out[1].strip():
        print(out[1].replace("\r", "").rstrip())
PY
}

hlr_aud3g() {
	hlr_vty "subscriber imsi $1 show" | awk '
		/K=/ { sub(/.*K=/, ""); k = $1 }
		/OPC=/ { sub(/.*OPC=/, ""); o = $1 }
		END { if (k != "" && o != "") print k, o }'
}
