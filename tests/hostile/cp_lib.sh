# cp_lib.sh: what the flow-A hostile tests share, on top of the
# integration harness: sqlite3 and openssl to read the state left behind,
# and a ca-authd with its own CA (CA=host:port, CADIR its state).
. "$STB_SRC/tests/integration/lib.sh"

for tool in sqlite3 openssl; do
	command -v $tool >/dev/null || { echo "SKIP: $tool not installed"; exit 77; }
done

pki_init
write_config ca-authd
"$(bin_of ca-authd)" init -c "$T/ca-authd.json" >"$T/ca-init.log" 2>&1 ||
	{ cat "$T/ca-init.log"; exit 1; }
start_daemon ca-authd
CA=127.0.0.1:${PORT[ca-authd]}
CADIR=$T/state-ca-authd
CADB=$CADIR/ca-authd.db
