#!/usr/bin/env bash
# File modes (issue 9, point 12): whatever the umask (000, 022), a daemon
# creates its state_dir 0700 and its store, -wal and -shm 0600, and
# tightens a store an older version left 0644; it refuses to start on an
# existing state_dir others may enter (0755) and on a TLS key others may
# read (0644), with an operator message naming the file and its mode, as
# for the KEK.  On the PostgreSQL run (.pg) the store is no file: the
# state_dir must hold none, and the 0644-store case does not apply.
. "$STB_SRC/tests/integration/lib.sh"

pki_init
SD=$T/state-cert-proxyd
DB=$SD/cert-proxyd.db
S=000102030405060708090a0b0c0d0e0f
mode() { stat -c %a "$1" 2>/dev/null || echo missing; }
# run_with UMASK: cert-proxyd under that umask, one store write, the modes
run_with() {
	local um=$1
	rm -rf "$SD"
	umask "$um"
	start_daemon cert-proxyd '"ca": { "addr": "127.0.0.1:9" }'
	umask 077
	printf 'stb-m,%s\n' "$S" >"$T/stbs.csv"
	ctl cert-proxyd cp import "$T/stbs.csv" >/dev/null || fail "umask $um: import"
	got="dir $(mode "$SD") db $(mode "$DB") wal $(mode "$DB-wal") shm $(mode "$DB-shm")"
	if [ "${STB_TEST_STORE:-sqlite}" = postgresql ]; then
		[ "$got" = "dir 700 db missing wal missing shm missing" ] &&
			pass "umask $um: state_dir 0700, no store file in it (PostgreSQL)" ||
			fail "umask $um: $got"
	else
		[ "$got" = "dir 700 db 600 wal 600 shm 600" ] &&
			pass "umask $um: state_dir 0700, store, -wal and -shm 0600" || fail "umask $um: $got"
	fi
	stop_daemon cert-proxyd
}
run_with 000
run_with 022

# a store left 0644 (and its -wal) is made 0600 (SQLite's file only)
if [ "${STB_TEST_STORE:-sqlite}" = sqlite ]; then
	chmod 0644 "$DB"
	[ -f "$DB-wal" ] && chmod 0644 "$DB-wal"
	umask 022
	start_daemon cert-proxyd
	umask 077
	[ "$(mode "$DB")" = 600 ] && pass "a 0644 store is made 0600 at start" ||
		fail "old store: $(mode "$DB")"
	out=$(ctl cert-proxyd cp stbs) && [[ $out == *stb-m* ]] && pass "its rows are still there" ||
		fail "cp stbs: $out"
	stop_daemon cert-proxyd
fi

# refused: a state_dir others may enter, a TLS key others may read
refused() { # NAME CONFIG: cert-proxyd must exit non-zero; its stderr in $T/NAME.err
	if timeout 20 "$(bin_of cert-proxyd)" -c "$2" >"$T/$1.err" 2>&1; then
		fail "$1: cert-proxyd started"
		return 1
	fi
	return 0
}
chmod 0755 "$SD"
refused dir0755 "$T/cert-proxyd.json" &&
	grepq "$SD: state_dir must be mode 0700 (is 0755)" "$T/dir0755.err" &&
	pass "an existing 0755 state_dir is refused, with its mode" ||
	fail "state_dir 0755: $(cat "$T/dir0755.err")"
chmod 0700 "$SD"
cp "$PKI/cert-proxyd.key" "$T/open.key"
chmod 0644 "$T/open.key"
sed "s|\"$PKI/cert-proxyd.key\"|\"$T/open.key\"|" "$T/cert-proxyd.json" >"$T/openkey.json"
refused key0644 "$T/openkey.json" &&
	grepq "$T/open.key: TLS key must be mode 0600 (is 0644)" "$T/key0644.err" &&
	pass "a 0644 TLS key is refused, with its mode" ||
	fail "TLS key 0644: $(cat "$T/key0644.err")"
chmod 0640 "$T/open.key"
refused key0640 "$T/openkey.json" && grepq "(is 0640)" "$T/key0640.err" &&
	pass "a 0640 TLS key is refused too" || fail "TLS key 0640: $(cat "$T/key0640.err")"
# and with the modes right it starts and answers
chmod 0600 "$T/open.key"
cp "$T/openkey.json" "$T/cert-proxyd.json"
start_daemon cert-proxyd && ctl cert-proxyd ping >/dev/null &&
	pass "with a 0600 key and a 0700 state_dir it starts and answers" || fail "good modes"
finish
