#!/usr/bin/python3
"""fakesmsc.py: a scripted SMSC for Kannel's bearerbox (`smsc = fake`).

Speaks the fake-SMSC line protocol of Kannel's test/fakesmsc.c: each
mobile-originated message is one line "SENDER RECEIVER text MESSAGE" written
to the port bearerbox listens on; each mobile-terminated message (the reply
smsbox sends back) arrives as "SENDER RECEIVER text MESSAGE" on the same
socket.

usage: fakesmsc.py PORT TIMEOUT_S [HOST] < LINES
  each input line is "SENDER RECEIVER MESSAGE"; once all are sent, it waits
  until one reply per message has arrived (or TIMEOUT_S passed) and prints
  each as "TO MESSAGE" (TO: the terminal the reply goes to).  Exit status 0
  when every message got a reply, 1 otherwise.
"""
import socket
import sys
import time


def main():
    if len(sys.argv) not in (3, 4):
        sys.stderr.write(__doc__)
        return 2
    port, timeout = int(sys.argv[1]), float(sys.argv[2])
    host = sys.argv[3] if len(sys.argv) == 4 else "127.0.0.1"  # the compose demo: bearerbox
    lines = [l.rstrip("\n") for l in sys.stdin if l.strip()]
    deadline = time.monotonic() + timeout
    s = None
    while s is None:  # bearerbox may still be opening its port
        try:
            s = socket.create_connection((host, port), timeout=1)
        except OSError:
            if time.monotonic() > deadline:
                sys.stderr.write("fakesmsc: cannot connect to %s:%d\n" % (host, port))
                return 1
            time.sleep(0.1)
    for l in lines:
        sender, receiver, text = l.split(" ", 2)
        s.sendall(("%s %s text %s\n" % (sender, receiver, text)).encode())
    got, buf = 0, b""
    while got < len(lines):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        s.settimeout(left)
        try:
            chunk = s.recv(4096)
        except socket.timeout:
            break
        if not chunk:
            break
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            parts = line.decode("utf-8", "replace").split(" ", 3)
            if len(parts) == 4 and parts[2] == "text":
                print("%s %s" % (parts[1], parts[3]), flush=True)
                got += 1
    s.close()
    if got < len(lines):
        sys.stderr.write("fakesmsc: %d of %d replies\n" % (got, len(lines)))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
