#!/usr/bin/python3
"""av_lib: the independent readers and tools test_av_*.sh use (Debian's
cbor2 and cryptography, none of appvetd's code).

  av_lib.py proxy LISTEN_PORT TARGET_PORT DROP_BYTES
      a TCP relay that cuts the connection during which the bytes from
      clients pass DROP_BYTES (a dropped upload), then relays everything
  av_lib.py verify PUBKEY.pem PAYLOAD      COSE_Sign1 check of a QR payload;
      prints "flag=N issued=N expires=N"
  av_lib.py tamper PAYLOAD                 the payload with one signature bit
      flipped (structure intact)
  av_lib.py forge PAYLOAD FLAG             the payload's body with the flag
      set to FLAG, signed by a fresh key (a forger without the operator's)
  av_lib.py index PUBKEY.pem FILE REF_OF_ID1...  verifies the snapshot; prints
      "version=N" then "ID1 flag=N" per named app (or "ID1 absent")
"""
import hashlib
import socket
import struct
import sys
import threading

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature, encode_dss_signature)

B45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
PREFIX = "STB1:"


def b45decode(s):
    out = bytearray()
    for i in range(0, len(s), 3):
        c = [B45.index(ch) for ch in s[i:i + 3]]
        if len(c) == 3:
            n = c[0] + c[1] * 45 + c[2] * 2025
            out += bytes([n >> 8, n & 0xff])
        else:
            out.append(c[0] + c[1] * 45)
    return bytes(out)


def b45encode(b):
    out = []
    for i in range(0, len(b), 2):
        if i + 1 < len(b):
            n = (b[i] << 8) | b[i + 1]
            out += [B45[n % 45], B45[(n // 45) % 45], B45[n // 2025]]
        else:
            out += [B45[b[i] % 45], B45[b[i] // 45]]
    return "".join(out)


def cose_parse(raw):
    obj = cbor2.loads(raw)
    if isinstance(obj, cbor2.CBORTag):
        assert obj.tag == 18
        obj = obj.value
    return obj


def cose_verify(pub, obj, aad):
    prot, _unprot, payload, sig = obj
    tbs = cbor2.dumps(["Signature1", prot, aad, payload])
    r = int.from_bytes(sig[:32], "big")
    s = int.from_bytes(sig[32:], "big")
    pub.verify(encode_dss_signature(r, s), tbs, ec.ECDSA(hashes.SHA256()))
    return cbor2.loads(payload)


def load_pub(path):
    with open(path, "rb") as f:
        return serialization.load_pem_public_key(f.read())


def payload_raw(text):
    assert text.startswith(PREFIX), text
    return b45decode(text[len(PREFIX):])


def cmd_verify(pem, text):
    body = cose_verify(load_pub(pem), cose_parse(payload_raw(text)), b"STB-APPPAY-V1")
    assert body[1] == 1, body
    assert body[4] > body[3], body
    print("flag=%d issued=%d expires=%d" % (body[2], body[3], body[4]))


def cmd_tamper(text):
    raw = bytearray(payload_raw(text))
    raw[-5] ^= 0x01  # inside the 64-byte signature, the last item
    print(PREFIX + b45encode(bytes(raw)))


def cmd_forge(text, flag):
    prot, unprot, payload, _sig = cose_parse(payload_raw(text))
    body = cbor2.loads(payload)
    body[2] = int(flag)
    payload = cbor2.dumps(body)
    key = ec.generate_private_key(ec.SECP256R1())
    tbs = cbor2.dumps(["Signature1", prot, b"STB-APPPAY-V1", payload])
    r, s = decode_dss_signature(key.sign(tbs, ec.ECDSA(hashes.SHA256())))
    sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    print(PREFIX + b45encode(cbor2.dumps(cbor2.CBORTag(18, [prot, unprot, payload, sig]))))


def app_ref(id1):
    tbs = b""
    for f in (b"STB-APPREF-V1", id1.encode()):
        tbs += struct.pack(">I", len(f)) + f
    return hashlib.sha256(tbs).digest()[:16]


def cmd_index(pem, path, ids):
    with open(path, "rb") as f:
        body = cose_verify(load_pub(pem), cose_parse(f.read()), b"STB-APPINDEX-V1")
    print("version=%d" % body[2])
    entries = {e[0]: e for e in body[5]}
    for id1 in ids:
        e = entries.get(app_ref(id1))
        print("%s %s" % (id1, "absent" if e is None else "flag=%d" % e[1]))


class Cut:
    """Cuts the connection during which the bytes from clients, counted over
    all connections, pass the limit; once."""

    def __init__(self, limit):
        self.left = limit
        self.lock = threading.Lock()

    def take(self, n):
        """How many of n bytes may pass; fewer than n means cut now."""
        with self.lock:
            if self.left is None:
                return n
            if n <= self.left:
                self.left -= n
                return n
            k, self.left = self.left, None
            return k


def relay(a, b, cut):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            k = cut.take(len(d)) if cut is not None else len(d)
            b.sendall(d[:k])
            if k < len(d):
                break
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()


def cmd_proxy(lport, tport, drop):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", int(lport)))
    ls.listen(8)
    cut = Cut(int(drop))
    while True:
        c, _ = ls.accept()
        try:
            t = socket.create_connection(("127.0.0.1", int(tport)))
        except OSError:
            c.close()
            continue
        threading.Thread(target=relay, args=(c, t, cut), daemon=True).start()
        threading.Thread(target=relay, args=(t, c, None), daemon=True).start()


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    try:
        if cmd == "proxy":
            cmd_proxy(*args)
        elif cmd == "verify":
            cmd_verify(*args)
        elif cmd == "tamper":
            cmd_tamper(*args)
        elif cmd == "forge":
            cmd_forge(*args)
        elif cmd == "index":
            cmd_index(args[0], args[1], args[2:])
        else:
            sys.exit("unknown command " + cmd)
    except InvalidSignature:
        print("BAD SIGNATURE")
        sys.exit(1)


main()
