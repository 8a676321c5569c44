#!/usr/bin/env bash
# What lockout.h persists at rendezvousd: only the trust a success earns
# (a row "device source"), never a failure; an unprovisioned device ID
# leaves no row.  A state dir from before the lockouts table still migrates
# (devices.fail_count/locked_until move to lockouts), and the per-device
# locks it held no longer refuse the right password (a lock any guesser
# could keep up was the weapon of issue 9).  cert-proxyd: test_cp.sh;
# the attacks: tests/hostile/test_lockout_attack.sh.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/rdv_lib.sh"

command -v sqlite3 >/dev/null || { echo "SKIP: sqlite3 not installed"; exit 77; }

CONF='"overlay_pool": "10.78.0.0/16", "kdf": { "scrypt_n": 1024 },
  "auth": { "max_failures": 3, "lockout_s": 60 }'
start_daemon rendezvousd "$CONF"
ADDR=127.0.0.1:${PORT[rendezvousd]}
DB=$T/state-rendezvousd/rendezvousd.db
rdvc() { "$STB_RDV_CLIENT" "$ADDR" "$PKI/ca.crt" "$@"; }
provision dev-m dev-n || fail "provision"
rdvc register dev-m userm passwordm 127.0.0.1:5100 >/dev/null || fail "first register of dev-m"
rdvc register dev-n usern passwordn 127.0.0.1:5101 >/dev/null || fail "first register of dev-n"
for _ in 1 2 3; do rdvc register dev-x userx passwordx 127.0.0.1:5102 >/dev/null 2>&1 || true; done
rdvc register dev-n usern wrongpassword 127.0.0.1:5101 >/dev/null 2>&1 || true
[ "$(sqlite3 "$DB" "SELECT count(*) FROM lockouts WHERE key NOT LIKE '% %'")" = 0 ] &&
	pass "no failure is written, of a provisioned device or not" ||
	fail "rows: $(sqlite3 "$DB" 'SELECT * FROM lockouts')"
[ "$(sqlite3 "$DB" "SELECT count(*) FROM lockouts WHERE key LIKE 'dev-x %'")" = 0 ] &&
	pass "no row for an unprovisioned device ID" || fail "dev-x has a row"
rdvc register dev-n usern passwordn 127.0.0.1:5101 >/dev/null || fail "dev-n right password"
[ "$(sqlite3 "$DB" "SELECT count(*) FROM lockouts WHERE key='dev-n 127.0.0.1' AND locked_until > $(date +%s)")" = 1 ] &&
	pass "a success stores the device's trust from its address" ||
	fail "dev-n's trust: $(sqlite3 "$DB" 'SELECT * FROM lockouts')"
stop_daemon rendezvousd

# back to the schema before the lockouts table, with dev-m locked the old way
now=$(date +%s)
# (and before the cluster columns of step 4, which steps 2 and 3 lead to)
sqlite3 "$DB" "DROP TABLE lockouts; DROP TABLE rdv_instances; ALTER TABLE devices DROP COLUMN holder;
	UPDATE devices SET fail_count=4, locked_until=$((now + 600)) WHERE device_id='dev-m';"
db_set_version "$DB" 1
start_daemon rendezvousd "$CONF"
out=$(rdvc register dev-m userm passwordm 127.0.0.1:5100 || true)
[[ $out == registered* ]] && pass "an old per-device lock no longer refuses the right password" ||
	fail "dev-m after the migration: $out"
[ "$(sqlite3 "$DB" "SELECT failures, locked_until FROM lockouts WHERE key='dev-m'")" = \
	"4|$((now + 600))" ] && [ "$(sqlite3 "$DB" "SELECT max(fail_count) FROM devices")" = 0 ] &&
	pass "fail_count and locked_until moved to lockouts" ||
	fail "rows: $(sqlite3 "$DB" 'SELECT * FROM lockouts')"
rdvc register dev-n usern passwordn 127.0.0.1:5101 >/dev/null &&
	pass "an unlocked device still registers" || fail "dev-n after the migration"
stop_daemon rendezvousd
[ "$RC" -eq 0 ] && pass "clean stop" || fail "exit status $RC"
finish
