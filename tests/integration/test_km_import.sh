#!/usr/bin/env bash
# keymgmtd key import: CSV, JSON and CMS-encrypted key files through
# `stbctl keys import` as role manufacturer; keys sealed at rest (AAD
# key_id); an identical key again is unchanged, another key under a known
# key_id CONFLICT; a malformed file names its file and line and leaves no
# row; the import is audited with the file's SHA-256 and count; roles;
# keys list/show.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/kmt_lib.sh"
. "$(dirname "$0")/km_lib.sh"

kmt_pki
echo '{}' >"$T/platforms.json"
km_start
keys() { km_sql "SELECT count(*) FROM keys"; }
K1=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
K2=ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100

# --- CSV, with a header, a comment and a blank line ---
cat >"$T/keys.csv" <<CSV
key_id,key,terminal_id,app_id
# factory batch 7

t1-k1,$K1,term-1,tv.app
t1-k2, $K2 ,term-1
t2-k1,$K2
CSV
out=$(ctl_as manufacturer keys import "$T/keys.csv") &&
	[ "$out" = "imported 3 key(s), 0 already there" ] && [ "$(keys)" = 3 ] &&
	pass "CSV import as manufacturer" || fail "CSV import: $out ($(keys) rows)"
[ "$(km_sql "SELECT terminal_id || ' ' || app_hint FROM keys WHERE key_id='t1-k1'")" = "term-1 tv.app" ] &&
	pass "terminal_id and app hint stored" || fail "terminal/app hint"
blob=$(km_sql "SELECT hex(sealed) FROM keys WHERE key_id='t1-k1'")
case $blob in *"${K1^^}"* | "") fail "the key is not sealed: $blob" ;; *) pass "the key is sealed at rest" ;; esac
# the seal is bound to its row: moved to another key_id it does not open
sha=$(sha256sum "$T/keys.csv" | cut -d' ' -f1)
km_sql "SELECT detail FROM audit WHERE event='key_import'" | grepq "sha256=$sha keys=3 imported=3" &&
	pass "the import is audited with the file's SHA-256 and count" ||
	fail "audit: $(km_sql "SELECT detail FROM audit WHERE event='key_import'")"

out=$(ctl_as manufacturer keys import "$T/keys.csv") &&
	[ "$out" = "imported 0 key(s), 3 already there" ] && [ "$(keys)" = 3 ] &&
	pass "re-importing identical keys is idempotent" || fail "re-import: $out"

printf 'new-1,%s\nt1-k1,%s\n' "$K1" "$K2" >"$T/conflict.csv"
if out=$(ctl_as manufacturer keys import "$T/conflict.csv" 2>&1); then
	fail "a different key under a known key_id was accepted: $out"
else
	[[ $out == *"CONFLICT"*"t1-k1"* ]] && [ "$(keys)" = 3 ] &&
		[ "$(km_sql "SELECT count(*) FROM keys WHERE key_id='new-1'")" = 0 ] &&
		pass "another key under a known key_id is CONFLICT and imports nothing of the batch" ||
		fail "conflict: $out ($(keys) rows)"
fi

# --- malformed: line 3 of the file, nothing of it stored ---
printf 'key_id,key\nbad-1,%s\nbad-2,0011\nbad-3,%s\n' "$K1" "$K2" >"$T/bad.csv"
if out=$(ctl_as manufacturer keys import "$T/bad.csv" 2>&1); then
	fail "a malformed file imported: $out"
else
	[[ $out == *"BAD_REQUEST"*"bad.csv:3"* ]] && [ "$(keys)" = 3 ] &&
		pass "a malformed line is BAD_REQUEST with file and line, and leaves no row" ||
		fail "malformed: $out ($(keys) rows)"
fi
printf 'x,%s\n' "$K1" | sed 's/^x/bad id!/' >"$T/badid.csv"
out=$(ctl_as manufacturer keys import "$T/badid.csv" 2>&1) && fail "bad key_id imported" ||
	{ [[ $out == *"badid.csv:1: key_id is not an identifier"* ]] && pass "a bad key_id names its line" ||
		fail "bad key_id: $out"; }

# --- JSON ---
cat >"$T/keys.json" <<JSON
[{"key_id": "j-1", "key": "$K1", "terminal_id": "term-9"},
 {"key_id": "j-2", "key": "$K2", "app_id": "tv.app"}]
JSON
out=$(ctl_as manufacturer keys import "$T/keys.json") &&
	[ "$out" = "imported 2 key(s), 0 already there" ] && [ "$(keys)" = 5 ] &&
	pass "JSON import" || fail "JSON import: $out"
printf '[{"key_id": "j-3", "key": "%s"}, {"key_id": "j-4", "key": "%s", "colour": "red"}]' \
	"$K1" "$K2" >"$T/bad.json"
out=$(ctl_as manufacturer keys import "$T/bad.json" 2>&1) && fail "bad JSON imported" ||
	{ [[ $out == *"bad.json: entry 2: unknown field 'colour'"* ]] && [ "$(keys)" = 5 ] &&
		pass "a bad JSON entry names its entry and leaves no row" || fail "bad JSON: $out"; }

# --- CMS EnvelopedData to keymgmtd's import certificate ---
printf 'c-1,%s,term-c\nc-2,%s,term-c\n' "$K1" "$K2" >"$T/plain.csv"
openssl cms -encrypt -binary -aes-256-cbc -recip "$PKI/keymgmtd.crt" -in "$T/plain.csv" \
	-outform DER -out "$T/keys.cms" 2>>"$T/openssl.log"
openssl cms -encrypt -binary -aes-256-cbc -recip "$PKI/keymgmtd.crt" -in "$T/plain.csv" \
	-outform PEM -out "$T/keys.pem" 2>>"$T/openssl.log"
rm -f "$T/plain.csv"
out=$(ctl_as manufacturer keys import "$T/keys.cms") &&
	[ "$out" = "imported 2 key(s), 0 already there" ] && [ "$(keys)" = 7 ] &&
	pass "CMS-encrypted CSV import (DER)" || fail "CMS import: $out"
out=$(ctl_as manufacturer keys import "$T/keys.pem") &&
	[ "$out" = "imported 0 key(s), 2 already there" ] &&
	pass "CMS-encrypted import (PEM), idempotent" || fail "CMS PEM import: $out"
printf 'c-3,%s\n' "$K1" | openssl cms -encrypt -binary -aes-256-cbc -recip "$PKI/app-platform.crt" \
	-outform DER -out "$T/other.cms" 2>>"$T/openssl.log"
out=$(ctl_as manufacturer keys import "$T/other.cms" 2>&1) && fail "CMS to another recipient imported" ||
	{ [ "$(keys)" = 7 ] && pass "CMS to another certificate is refused: $out" || fail "other CMS: $out"; }

# --- roles ---
out=$(ctl_as portal keys import "$T/keys.json" 2>&1) && fail "portal imported keys" ||
	{ [[ $out == *FORBIDDEN* ]] && pass "a portal may not import keys" || fail "portal import: $out"; }
out=$(ctl_as manufacturer keys list 2>&1) && fail "manufacturer listed keys" ||
	{ [[ $out == *FORBIDDEN* ]] && pass "keys list is admin only" || fail "manufacturer list: $out"; }

# --- list / show ---
list=$(ctl keymgmtd keys list --json)
[ "$(jq length <<<"$list")" = 7 ] &&
	[ "$(jq -r '.[] | select(.key_id=="j-1") | .terminal_id' <<<"$list")" = term-9 ] &&
	[[ $(jq -r '.[0].imported_at' <<<"$list") =~ ^20[0-9-]+T[0-9:]+Z$ ]] &&
	! grepq -i "$K1" <<<"$list" &&
	pass "keys list --json: every key, ISO-8601 times, no key material" || fail "keys list: $list"
[ "$(ctl keymgmtd keys list --terminal term-c --json | jq length)" = 2 ] &&
	pass "keys list --terminal" || fail "keys list --terminal"
ctl keymgmtd keys list | grepq '^t1-k1 *term-1 *tv.app' && pass "keys list table" ||
	fail "keys list table: $(ctl keymgmtd keys list)"
ctl keymgmtd keys show t1-k1 | grepq '^terminal_id: *term-1' && pass "keys show" ||
	fail "keys show: $(ctl keymgmtd keys show t1-k1 2>&1)"
out=$(ctl keymgmtd keys show nope 2>&1) && fail "show of a missing key" ||
	{ [[ $out == *NOT_FOUND* ]] && pass "keys show of a missing key is NOT_FOUND" || fail "show nope: $out"; }
out=$(ctl keymgmtd audit verify 2>&1) && pass "audit chain verifies: $out" || fail "audit verify: $out"
finish
