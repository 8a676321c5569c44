#!/bin/sh
# The independent COSE reader (cose_reader.py: cbor2 + cryptography) verifies
# and decodes what src/core signs, and refuses it altered or under another key.
# usage: test_cose_reader.sh APPPAY_EMIT COSE_READER_PY
set -eu
emit=$1 reader=$2
py=/usr/bin/python3
dir=$(mktemp -d "${TMPDIR:-/tmp}/stb-cose-reader-XXXXXX")
trap 'rm -rf "$dir"' EXIT INT TERM
"$emit" "$dir"
payload=$(cat "$dir/payload.txt")

"$py" "$reader" --key "$dir/op.pem" --payload "$payload" >"$dir/p.json"
"$py" "$reader" --key "$dir/op.pem" --index "$dir/index.cose" >"$dir/i.json"
"$py" - "$dir" <<'PY'
import json, sys
d = sys.argv[1]
want = json.load(open(d + "/expect.json"))
p = json.load(open(d + "/p.json"))
i = json.load(open(d + "/i.json"))
assert p["version"] == 1, p
for k in ("flag", "issued", "expires", "ref", "kid"):
    assert p[k] == want[k], (k, p[k], want[k])
assert p["nonce_len"] == 12 and p["id1_ct_len"] == want["id1_len"] + 16, p
assert i["version"] == want["index_version"] and i["kid"] == want["kid"], i
assert len(i["entries"]) == 1 and i["entries"][0]["ref"] == want["ref"], i
assert i["entries"][0]["flag"] == want["flag"], i
assert i["entries"][0]["warning"] == "dangerous permission: SEND_SMS", i
PY

# another key: refused
"$py" -c '
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives import serialization
import sys
k = ec.generate_private_key(ec.SECP256R1()).public_key()
open(sys.argv[1], "wb").write(k.public_bytes(serialization.Encoding.PEM,
    serialization.PublicFormat.SubjectPublicKeyInfo))' "$dir/other.pem"
if "$py" "$reader" --key "$dir/other.pem" --payload "$payload" 2>/dev/null; then
	echo "FAIL: a payload verified under another key" >&2; exit 1
fi
# one character of the signature's base45 changed: refused
last=$(printf '%s' "$payload" | tail -c 4 | head -c 1)
if [ "$last" = "0" ]; then repl=1; else repl=0; fi
bad=$(printf '%s' "$payload" | sed "s/.\(...\)\$/$repl\1/")
[ "$bad" != "$payload" ]
if "$py" "$reader" --key "$dir/op.pem" --payload "$bad" 2>/dev/null; then
	echo "FAIL: a tampered payload verified" >&2; exit 1
fi
echo "cose_reader: payload and index verified independently; tampered and foreign refused"
