#!/usr/bin/python3
"""An independent reader of flow E's signed payloads (cbor2 + cryptography,
nothing of ours): verifies the COSE_Sign1/ES256 signature of a QR payload
text or an index snapshot file with the operator's public key and prints
the decoded content as JSON.  Exit 0 when the signature verifies, 1 when it
does not or the bytes are malformed.

  cose_reader.py --key OP.pem --payload 'STB1:...'
  cose_reader.py --key OP.pem --index FILE
"""
import argparse
import hashlib
import json
import sys

import cbor2
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

B45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"


def b45decode(s):
    """RFC 9285, written from the RFC, not from our C."""
    out = bytearray()
    if len(s) % 3 == 1:
        raise ValueError("base45 length 3k+1")
    for i in range(0, len(s), 3):
        chunk = [B45.index(c) for c in s[i:i + 3]]
        v = sum(d * 45**k for k, d in enumerate(chunk))
        if len(chunk) == 3:
            if v > 0xFFFF:
                raise ValueError("base45 group out of range")
            out += v.to_bytes(2, "big")
        else:
            if v > 0xFF:
                raise ValueError("base45 group out of range")
            out.append(v)
    return bytes(out)


def load_key(path):
    data = open(path, "rb").read()
    if b"CERTIFICATE" in data:
        return x509.load_pem_x509_certificate(data).public_key()
    return serialization.load_pem_public_key(data)


def verify_sign1(raw, key, aad):
    obj = cbor2.loads(raw)
    if isinstance(obj, cbor2.CBORTag):
        if obj.tag != 18:
            raise ValueError("tag %d is not COSE_Sign1" % obj.tag)
        obj = obj.value
    prot, unprot, payload, sig = obj
    hdr = cbor2.loads(prot)
    if hdr.get(1) != -7:
        raise ValueError("alg is not ES256")
    kid = hdr.get(4, unprot.get(4))
    spki = key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)
    if kid is not None and kid != hashlib.sha256(spki).digest()[:8]:
        raise ValueError("kid names another key")
    if len(sig) != 64:
        raise ValueError("signature is not r || s")
    tbs = cbor2.dumps(["Signature1", prot, aad, payload])
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"),
                               int.from_bytes(sig[32:], "big"))
    key.verify(der, tbs, ec.ECDSA(hashes.SHA256()))
    return cbor2.loads(payload), kid


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--key", required=True)
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--payload")
    g.add_argument("--index")
    a = ap.parse_args()
    key = load_key(a.key)
    try:
        if a.payload is not None:
            if not a.payload.startswith("STB1:"):
                raise ValueError("no STB1: prefix")
            body, kid = verify_sign1(b45decode(a.payload[5:]), key, b"STB-APPPAY-V1")
            out = {"version": body[1], "flag": body[2], "issued": body[3],
                   "expires": body[4], "ref": body[5].hex(), "key_id": body[6].hex(),
                   "nonce_len": len(body[7]), "id1_ct_len": len(body[8]),
                   "kid": kid.hex() if kid else None}
        else:
            body, kid = verify_sign1(open(a.index, "rb").read(), key, b"STB-APPINDEX-V1")
            out = {"format": body[1], "version": body[2], "issued": body[3],
                   "expires": body[4], "kid": kid.hex() if kid else None,
                   "entries": [{"ref": e[0].hex(), "flag": e[1], "issued": e[2],
                                "expires": e[3], "warning": e[4]} for e in body[5]]}
    except InvalidSignature:
        print("cose_reader: the signature does not verify", file=sys.stderr)
        return 1
    except (ValueError, KeyError, TypeError, IndexError, cbor2.CBORDecodeError) as e:
        print("cose_reader: malformed: %s" % e, file=sys.stderr)
        return 1
    print(json.dumps(out, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
